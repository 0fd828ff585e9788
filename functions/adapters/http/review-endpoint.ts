// One code path for every transport: body in, HTTP status and JSON out.
// The functions-framework handler and the HTTPS listener both call this.
import { respondJson } from '../../core/admission-response.js';
import type { Decision, ReviewContext } from '../../core/review.js';
import type { DecisionMemo } from '../decision-memo.js';
import type { LineLevel, Logger } from '../observability/logger.js';
import type { Metrics, ReviewOutcome } from '../observability/metrics.js';
import { BadRequest, decodeReview, type DecodedReview } from './decode-review.js';

export interface ReviewRuntime {
  /** the core's inputs as they are right now (switches may change at run time) */
  context(): ReviewContext;
  /** the core's reviewPod behind a memo of recent decisions, which keeps each one's log fields */
  memo: DecisionMemo<string>;
  metrics: Metrics;
  logger: Logger;
  /** the per-review line, pre-serialised (observability/logger.ts) */
  writeLine: (level: LineLevel, fields: string, msg: string) => void;
}

export interface HttpAnswer {
  status: number;
  /** JSON to send: an object, or text already serialised */
  body: object | string;
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

const quoted = JSON.stringify;

/** What the log line says about the review itself, its uid aside. */
interface ReviewSummary {
  namespace?: string;
  /** the name, or generateName followed by "*" */
  podName?: string;
  dryRun: boolean;
}

function summarize(review: DecodedReview): ReviewSummary {
  const meta = review.pod?.metadata;
  return {
    namespace: meta?.namespace || review.namespace,
    podName: meta?.name || (meta?.generateName ? `${meta.generateName}*` : undefined),
    dryRun: review.dryRun,
  };
}

/**
 * The review's log fields between its uid and its duration, as JSON: the same
 * for every review a remembered decision answers, so the memo keeps them
 * serialised. Fields without a value are left out, as pino does.
 */
function decisionFields(review: ReviewSummary, decision: Decision): string {
  const networks = decision.networks.map((ref) => quoted(`${ref.namespace}/${ref.name}${ref.interface ? `@${ref.interface}` : ''}`));
  const resources = [...decision.injected].map(([name, count]) => `${quoted(name)}:${count}`);
  const reason = decision.type === 'denied' ? decision.message : decision.type === 'allowed' ? decision.reason : undefined;
  return (
    (review.namespace ? `,"namespace":${quoted(review.namespace)}` : '') +
    (review.podName === undefined ? '' : `,"podName":${quoted(review.podName)}`) +
    `,"networks":[${networks.join(',')}],"resources":{${resources.join(',')}},"decision":"${decision.type}"` +
    (reason === undefined ? '' : `,"reason":${quoted(reason)}`) +
    (review.dryRun ? ',"dryRun":true' : '')
  );
}

/**
 * The answer to one request body. Synchronous when every NAD is in memory (the
 * steady state): no promise per review, which matters most once
 * functions-framework's domains have turned on async hooks for the process.
 */
export function answerReview(body: unknown, runtime: ReviewRuntime, transport: Transport): HttpAnswer | Promise<HttpAnswer> {
  const started = process.hrtime.bigint();
  const { metrics, logger, memo } = runtime;
  const context = runtime.context();
  /** `fields`: decisionFields() of this review, made now or kept by the memo. */
  const finish = (uid: string, fields: string, decision: Decision): HttpAnswer => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const [outcome, reason] = outcomeOf(decision);
    metrics.reviews.inc({ outcome, reason });
    metrics.reviewDuration.observe({ transport }, seconds);
    const line = `"uid":${quoted(uid)}${fields},"durationMs":${Math.round(seconds * 1e6) / 1e3},"transport":"${transport}"`;
    if (decision.type === 'denied') runtime.writeLine('warn', line, 'review denied');
    else runtime.writeLine('info', line, decision.type === 'patched' ? 'review patched' : 'review allowed');
    return { status: 200, body: respondJson(uid, decision) };
  };

  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
  const recall = text === undefined ? undefined : memo.recall(text, context);
  if (recall?.recalled) return finish(recall.uid, recall.kept, recall.decision);

  let review: DecodedReview;
  try {
    review = decodeReview(text ?? body);
  } catch (error) {
    if (!(error instanceof BadRequest)) throw error;
    metrics.reviews.inc({ outcome: 'bad_request', reason: error.reason });
    logger.warn({ reason: error.reason, message: error.message, transport }, 'bad review request');
    return badRequestAnswer(error);
  }
  const summary = summarize(review);
  const answer = (decision: Decision) => finish(review.uid, decisionFields(summary, decision), decision);
  // A bug of ours: deny with a clear message rather than crash or hand back garbage.
  const failed = (error: unknown): HttpAnswer => {
    logger.error({ uid: review.uid, err: error }, 'review failed unexpectedly');
    return answer({ type: 'denied', kind: 'internal', message: `internal error in the network resources injector: ${(error as Error).message}`, networks: [], injected: new Map() });
  };
  let decided: Decision | Promise<Decision>;
  try {
    decided = memo.decide(review, context, (decision) => decisionFields(summary, decision), recall);
  } catch (error) {
    return failed(error);
  }
  if (!(decided instanceof Promise)) return answer(decided);
  metrics.inFlight.inc(); // reviews waiting on the API server
  return decided.then(answer, failed).finally(() => metrics.inFlight.dec());
}
