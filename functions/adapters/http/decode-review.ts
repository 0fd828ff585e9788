// Request body -> validated AdmissionReview, or the 4xx answer explaining why
// not. Kept apart from the decision, as controller-runtime keeps its decoder.
import { describeFirstError, validateAdmissionReview } from '../../validation/validators.js';
import type { Pod } from '../../core/types.js';

export interface DecodedReview {
  uid: string;
  namespace?: string;
  operation?: string;
  dryRun: boolean;
  /** null only for an operation other than CREATE (a DELETE carries object: null) */
  pod: Pod | null;
  /** the body as received, when it came as text */
  text?: string;
}

export class BadRequest extends Error {
  constructor(readonly status: 400 | 413, message: string, readonly reason = 'bad_request') {
    super(message);
  }
}

// No depth limit: V8's JSON.parse is iterative, so no nesting can overflow the
// stack while parsing, and nothing of ours walks a pod's arbitrary fields
// recursively (the schema checks fixed paths; the decision memo skips pods it
// cannot serialise). A limit would cost a scan of every body for nothing.
/** The parsed body, and its text when it arrived as text (the decision memo keys on it). */
function parseJsonBody(body: unknown): { document: unknown; text?: string } {
  if (body !== null && typeof body === 'object' && !Buffer.isBuffer(body)) return { document: body }; // already parsed upstream
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  if (text.trim() === '') throw new BadRequest(400, 'the request body is empty; expected an AdmissionReview', 'empty_body');
  try {
    return { document: JSON.parse(text), text };
  } catch (error) {
    throw new BadRequest(400, `the request body is not valid JSON: ${(error as Error).message}`, 'invalid_json');
  }
}

export function decodeReview(body: unknown): DecodedReview {
  const { document, text } = parseJsonBody(body);
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new BadRequest(400, 'the request body must be a JSON object (an AdmissionReview)', 'not_an_object');
  }
  if (!validateAdmissionReview(document)) {
    throw new BadRequest(400, describeFirstError(validateAdmissionReview, 'AdmissionReview'), 'invalid_review');
  }
  const request = (document as { request: { uid: string; namespace?: string; operation?: string; dryRun?: boolean | null; object?: Pod | null } }).request;
  const decoded: DecodedReview = { uid: request.uid, dryRun: request.dryRun === true, pod: request.object ?? null };
  if (request.namespace) decoded.namespace = request.namespace;
  if (request.operation) decoded.operation = request.operation;
  if (text !== undefined) decoded.text = text;
  return decoded;
}
