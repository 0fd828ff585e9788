// One code path for every transport: body in, HTTP status and JSON out.
// The functions-framework handler and the HTTPS listener both call this.
import { respond } from '../../core/admission-response.js';
import type { Decision, ReviewContext } from '../../core/review.js';
import type { Decide } from '../decision-memo.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, ReviewOutcome } from '../observability/metrics.js';
import { BadRequest, decodeReview, type DecodedReview } from './decode-review.js';

export interface ReviewRuntime {
  /** the core's inputs as they are right now (switches may change at run time) */
  context(): ReviewContext;
  /** the core's reviewPod, usually behind a memo of recent decisions */
  decide: Decide;
  metrics: Metrics;
  logger: Logger;
}

export interface HttpAnswer {
  status: number;
  body: object;
}

export type Transport = 'http' | 'https';

export function badRequestAnswer(error: BadRequest): HttpAnswer {
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

function logDecision(logger: Logger, review: DecodedReview, decision: Decision, seconds: number, transport: Transport): void {
  const meta = review.pod.metadata;
  const line = {
    uid: review.uid,
    namespace: meta?.namespace || review.namespace,
    podName: meta?.name || (meta?.generateName ? `${meta.generateName}*` : undefined),
    networks: decision.networks.map((ref) => `${ref.namespace}/${ref.name}${ref.interface ? `@${ref.interface}` : ''}`),
    resources: Object.fromEntries(decision.injected),
    decision: decision.type,
    reason: decision.type === 'denied' ? decision.message : decision.type === 'allowed' ? decision.reason : undefined,
    dryRun: review.dryRun || undefined,
    durationMs: Math.round(seconds * 1e6) / 1e3,
    transport,
  };
  if (decision.type === 'denied') logger.warn(line, 'review denied');
  else logger.info(line, decision.type === 'patched' ? 'review patched' : 'review allowed');
}

/**
 * The answer to one request body. Synchronous when every NAD is in memory (the
 * steady state): no promise per review, which matters most once
 * functions-framework's domains have turned on async hooks for the process.
 */
export function answerReview(body: unknown, runtime: ReviewRuntime, transport: Transport): HttpAnswer | Promise<HttpAnswer> {
  const started = process.hrtime.bigint();
  const { metrics, logger } = runtime;
  let review: DecodedReview;
  try {
    review = decodeReview(body);
  } catch (error) {
    if (!(error instanceof BadRequest)) throw error;
    metrics.reviews.inc({ outcome: 'bad_request', reason: error.reason });
    logger.warn({ reason: error.reason, message: error.message, transport }, 'bad review request');
    return badRequestAnswer(error);
  }
  const finish = (decision: Decision): HttpAnswer => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const [outcome, reason] = outcomeOf(decision);
    metrics.reviews.inc({ outcome, reason });
    metrics.reviewDuration.observe({ transport }, seconds);
    logDecision(logger, review, decision, seconds, transport);
    return { status: 200, body: respond(review.uid, decision) };
  };
  // A bug of ours: deny with a clear message rather than crash or hand back garbage.
  const failed = (error: unknown): HttpAnswer => {
    logger.error({ uid: review.uid, err: error }, 'review failed unexpectedly');
    return finish({ type: 'denied', kind: 'internal', message: `internal error in the network resources injector: ${(error as Error).message}`, networks: [], injected: new Map() });
  };
  let decided: Decision | Promise<Decision>;
  try {
    decided = runtime.decide(review, runtime.context());
  } catch (error) {
    return failed(error);
  }
  if (!(decided instanceof Promise)) return finish(decided);
  metrics.inFlight.inc(); // reviews waiting on the API server
  return decided.then(finish, failed).finally(() => metrics.inFlight.dec());
}
