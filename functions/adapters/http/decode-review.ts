// Request body -> validated AdmissionReview, or the 4xx answer explaining why
// not. Kept apart from the decision, as controller-runtime keeps its decoder.
import { describeFirstError, validateAdmissionReview } from '../../validation/validators.js';
import type { Pod } from '../../core/types.js';

/** Real pods nest about a dozen levels; anything far deeper is an attack or a bug. */
export const MAX_JSON_DEPTH = 64;

export interface DecodedReview {
  uid: string;
  namespace?: string;
  operation?: string;
  dryRun: boolean;
  pod: Pod;
}

export class BadRequest extends Error {
  constructor(readonly status: 400 | 413, message: string, readonly reason = 'bad_request') {
    super(message);
  }
}

/** Deepest nesting of objects and arrays in JSON text, stopping once past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index++; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      if (++depth > limit) return true;
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
  return false;
}

export function parseJsonBody(body: unknown): unknown {
  if (body !== null && typeof body === 'object' && !Buffer.isBuffer(body)) return body; // already parsed upstream
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  if (text.trim() === '') throw new BadRequest(400, 'the request body is empty; expected an AdmissionReview', 'empty_body');
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) throw new BadRequest(400, `the request body nests deeper than ${MAX_JSON_DEPTH} levels`, 'too_deep');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequest(400, `the request body is not valid JSON: ${(error as Error).message}`, 'invalid_json');
  }
}

export function decodeReview(body: unknown): DecodedReview {
  const document = parseJsonBody(body);
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new BadRequest(400, 'the request body must be a JSON object (an AdmissionReview)', 'not_an_object');
  }
  if (!validateAdmissionReview(document)) {
    throw new BadRequest(400, describeFirstError(validateAdmissionReview, 'AdmissionReview'), 'invalid_review');
  }
  const request = (document as { request: { uid: string; namespace?: string; operation?: string; dryRun?: boolean | null; object: Pod } }).request;
  const decoded: DecodedReview = { uid: request.uid, dryRun: request.dryRun === true, pod: request.object };
  if (request.namespace) decoded.namespace = request.namespace;
  if (request.operation) decoded.operation = request.operation;
  return decoded;
}
