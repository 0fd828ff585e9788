// One code path for every transport: body in, HTTP status and JSON out.
// The request listener (both ports) and the functions-framework function call it.
// Steps 1, 3 and 4 are the core's (core/review.ts); step 2, resolving the NADs,
// waits only when the NAD source must ask the API server.
import { deny, NO_FACTS, type Decision, type Verdict } from '../../core/decision.js';
import { refLabel } from '../../core/nad.js';
import { decide, select, type Pending, type ReviewContext } from '../../core/review.js';
import { podNamespace } from '../../core/selection.js';
import { NO_CLAIM_SOURCE, type ClaimSource } from '../claim-source.js';
import type { NadSource } from '../nad-source.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, ReviewOutcome } from '../observability/metrics.js';
import { encodeResponse } from './admission-response.js';
import { BadRequest } from './bad-request.js';
import { decodeReview, type DecodedReview } from './decode-review.js';

export interface ReviewRuntime {
  /** the core's inputs as they are right now (switches may change at run time) */
  context(): ReviewContext;
  nads: NadSource;
  /** what pods' own ResourceClaims provide (DRA); absent: nothing */
  claims?: ClaimSource;
  metrics: Metrics;
  logger: Logger;
}

export interface HttpAnswer {
  status: number;
  /** JSON to send: an object, or text already serialised */
  body: object | string;
}

export type Transport = 'http' | 'https';

/** A request refused before any decision: counted, logged once, and answered with its status and reason. */
export function refuse(
  runtime: Pick<ReviewRuntime, 'metrics' | 'logger'>,
  error: BadRequest,
  transport: Transport,
): HttpAnswer {
  runtime.metrics.reviews.inc({ outcome: 'bad_request', reason: error.reason });
  runtime.logger.warn({ reason: error.reason, message: error.message, transport }, 'bad review request');
  return { status: error.status, body: { error: error.reason, message: error.message } };
}

function outcomeOf(decision: Decision): [ReviewOutcome, string] {
  switch (decision.type) {
    case 'patched':
      return ['patched', 'injected'];
    case 'allowed':
      return ['allowed_unchanged', decision.reason];
    case 'denied':
      return decision.kind === 'internal' ? ['error', 'internal'] : ['denied', decision.kind];
  }
}

/** The review's log line: one summary, never the pod. pino leaves out fields without a value. */
function logFields(review: DecodedReview, { decision, facts }: Verdict, durationMs: number, transport: Transport) {
  const meta = review.pod?.metadata;
  return {
    uid: review.uid,
    namespace: meta?.namespace || review.namespace,
    podName: meta?.name || (meta?.generateName ? `${meta.generateName}*` : undefined),
    networks: facts.networks.map(refLabel),
    resources: Object.fromEntries(facts.injected),
    warnings: facts.warnings.length > 0 ? facts.warnings : undefined,
    decision: decision.type,
    reason: decision.type === 'denied' ? decision.message : decision.type === 'allowed' ? decision.reason : undefined,
    dryRun: review.dryRun || undefined,
    durationMs,
    transport,
  };
}

export type Reply = (answer: HttpAnswer) => void;

/** Answers one request body through `reply`, at once when every NAD is in memory (the steady state). */
export function answerReview(body: unknown, runtime: ReviewRuntime, transport: Transport, reply: Reply): void {
  const started = process.hrtime.bigint();
  const { metrics, logger } = runtime;
  let review: DecodedReview;
  try {
    review = decodeReview(body);
  } catch (error) {
    if (!(error instanceof BadRequest)) throw error;
    return reply(refuse(runtime, error, transport));
  }
  const finish = (verdict: Verdict): void => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { decision } = verdict;
    const [outcome, reason] = outcomeOf(decision);
    metrics.reviews.inc({ outcome, reason });
    metrics.reviewDuration.observe({ transport }, seconds);
    const fields = logFields(review, verdict, Math.round(seconds * 1e6) / 1e3, transport);
    if (decision.type === 'denied') logger.warn(fields, 'review denied');
    else logger.info(fields, decision.type === 'patched' ? 'review patched' : 'review allowed');
    reply({ status: 200, body: encodeResponse(review.uid, decision, verdict.facts) });
  };
  // A bug of ours: deny with a clear message rather than crash or hand back garbage.
  const failed = (error: unknown): void => {
    logger.error({ uid: review.uid, err: error }, 'review failed unexpectedly');
    finish({
      decision: deny('internal', `internal error in the network resources injector: ${(error as Error).message}`),
      facts: NO_FACTS,
    });
  };
  const context = runtime.context();
  const claimSource = runtime.claims ?? NO_CLAIM_SOURCE;
  // Only the decision is guarded here: a failure in answering (the log, the
  // metrics, the reply) is not a bug of the core and is not answered twice.
  let settled: Verdict | Pending;
  try {
    const selected = select(review, context);
    if ('verdict' in selected) settled = selected.verdict;
    else {
      const known = runtime.nads.fromMemory(selected.pending.refs);
      const claims = claimSource.fromMemory(selected.pending.pod);
      settled = known && claims ? decide(selected.pending, known, context, claims) : selected.pending;
    }
  } catch (error) {
    return failed(error);
  }
  if ('decision' in settled) return finish(settled);
  const pending = settled;
  metrics.inFlight.inc(); // reviews waiting on the API server
  const namespace = podNamespace(pending.pod, review.namespace);
  Promise.all([runtime.nads.read(pending.refs), claimSource.read(pending.pod, namespace)])
    .then(([resolved, claims]) => decide(pending, resolved, context, claims))
    .then(finish, failed)
    .finally(() => metrics.inFlight.dec());
}
