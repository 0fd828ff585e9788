// The wire form of a decision: the AdmissionReview kube-apiserver reads back.
// Small helpers so each answer reads in one line, as controller-runtime's do.
import type { Decision } from '../../core/decision.js';

export interface AdmissionResponseReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string; reason?: string };
    patchType?: 'JSONPatch';
    patch?: string;
  };
}

const envelope = (response: AdmissionResponseReview['response']): AdmissionResponseReview => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });

export const allowed = (uid: string): AdmissionResponseReview => envelope({ uid, allowed: true });

export const denied = (uid: string, message: string, code = 403): AdmissionResponseReview =>
  envelope({ uid, allowed: false, status: { code, message, reason: code >= 500 ? 'InternalError' : 'Forbidden' } });

/** The base64 of a JSONPatch, as AdmissionResponse.patch carries it. */
const encodePatch = (ops: readonly object[]): string => Buffer.from(JSON.stringify(ops)).toString('base64');

/** The patched answer around a patch already encoded; patch is its last member. */
const patchedWith = (uid: string, patch: string): AdmissionResponseReview => envelope({ uid, allowed: true, patchType: 'JSONPatch', patch });

/** A JSONPatch travels as base64 of its JSON. */
export const patched = (uid: string, ops: readonly object[]): AdmissionResponseReview => patchedWith(uid, encodePatch(ops));

export function respond(uid: string, decision: Decision): AdmissionResponseReview {
  switch (decision.type) {
    case 'allowed':
      return allowed(uid);
    case 'patched':
      return patched(uid, decision.ops);
    case 'denied':
      return denied(uid, decision.message, decision.kind === 'internal' ? 500 : 403);
  }
}

/** What ends a serialised patched answer whose patch is empty: the closing quote of the patch and two braces. */
const PATCH_END = '"}}';

/**
 * The answer's JSON text: JSON.stringify(respond(uid, decision)), character for
 * character. A patched answer is serialised with an empty patch and the base64
 * put in its place: its alphabet (A-Z a-z 0-9 + / =) never needs escaping, but
 * JSON.stringify would still check each of its characters, the costliest step
 * of encoding a patched answer (about 45,000 instructions of 1.9 KB, measured on Node 20).
 */
export function encodeResponse(uid: string, decision: Decision): string {
  if (decision.type !== 'patched') return JSON.stringify(respond(uid, decision));
  const shell = JSON.stringify(patchedWith(uid, ''));
  return `${shell.slice(0, -PATCH_END.length)}${encodePatch(decision.ops)}${PATCH_END}`;
}
