// Request body -> validated AdmissionReview, or the 4xx answer explaining why
// not. Kept apart from the decision, as controller-runtime keeps its decoder.
import type { PodReview } from '../../core/review.js';
import type { Pod } from '../../core/types.js';
import { describeFirstError, validateAdmissionReview } from '../../validation/validators.js';
import { BadRequest } from './bad-request.js';

/** What the core reviews, with what only the wire and the log need. */
export interface DecodedReview extends PodReview {
  uid: string;
  dryRun: boolean;
}

// No depth limit: V8's JSON.parse is iterative, so no nesting can overflow the
// stack while parsing, and nothing of ours walks a pod's arbitrary fields
// recursively (the schema checks fixed paths).
function parseJsonBody(body: unknown): unknown {
  if (body !== null && typeof body === 'object' && !Buffer.isBuffer(body)) return body; // parsed already (functions-framework's body parser)
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  if (text.trim() === '')
    throw new BadRequest(400, 'the request body is empty; expected an AdmissionReview', 'empty_body');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequest(400, `the request body is not valid JSON: ${(error as Error).message}`, 'invalid_json');
  }
}

/** "apps/v1 Deployment" when the review says it is about something other than a core Pod; undefined otherwise. */
function reviewedKind(document: object): string | undefined {
  const kind = (document as { request?: { kind?: { group?: unknown; version?: unknown; kind?: unknown } } }).request
    ?.kind;
  if (!kind || typeof kind !== 'object' || typeof kind.kind !== 'string') return undefined; // the schema names what is missing
  const group = typeof kind.group === 'string' ? kind.group : '';
  if (group === '' && kind.kind === 'Pod') return undefined;
  return `${group === '' ? '' : `${group}/`}${typeof kind.version === 'string' ? kind.version : '?'} ${kind.kind}`.slice(
    0,
    200,
  );
}

export function decodeReview(body: unknown): DecodedReview {
  const document = parseJsonBody(body);
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new BadRequest(400, 'the request body must be a JSON object (an AdmissionReview)', 'not_an_object');
  }
  const notAPod = reviewedKind(document);
  if (notAPod) {
    throw new BadRequest(
      400,
      `nri reviews Pods only; this review is for a ${notAPod}: check the webhook's rules (resources: ["pods"], operations: ["CREATE"])`,
      'not_a_pod',
    );
  }
  if (!validateAdmissionReview(document)) {
    throw new BadRequest(400, describeFirstError(validateAdmissionReview, 'AdmissionReview'), 'invalid_review');
  }
  const request = (
    document as {
      request: { uid: string; namespace?: string; operation?: string; dryRun?: boolean | null; object?: Pod | null };
    }
  ).request;
  const decoded: DecodedReview = { uid: request.uid, dryRun: request.dryRun === true, pod: request.object ?? null };
  if (request.namespace) decoded.namespace = request.namespace;
  if (request.operation) decoded.operation = request.operation;
  return decoded;
}
