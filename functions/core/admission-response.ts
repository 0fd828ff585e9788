// Small helpers that build the AdmissionReview we answer with, so each
// decision reads in one line: allowed(uid), denied(uid, why), patched(uid, patch).
import type { Operation } from 'fast-json-patch';
import type { Decision } from './review.js';

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

const envelope = (response: AdmissionResponseReview['response']): AdmissionResponseReview => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response,
});

export const allowed = (uid: string): AdmissionResponseReview => envelope({ uid, allowed: true });

export const denied = (uid: string, message: string, code = 403): AdmissionResponseReview =>
  envelope({ uid, allowed: false, status: { code, message, reason: code >= 500 ? 'InternalError' : 'Forbidden' } });

export const encodePatch = (ops: readonly Operation[]): string => Buffer.from(JSON.stringify(ops)).toString('base64');

export const patched = (uid: string, patch: string): AdmissionResponseReview => envelope({ uid, allowed: true, patchType: 'JSONPatch', patch });

export function respond(uid: string, decision: Decision): AdmissionResponseReview {
  switch (decision.type) {
    case 'allowed':
      return allowed(uid);
    case 'patched':
      return patched(uid, decision.patch);
    case 'denied':
      return denied(uid, decision.message, decision.kind === 'internal' ? 500 : 403);
  }
}

/**
 * respond() as JSON text. A patched answer is mostly its base64 patch, which
 * JSON.stringify would scan for characters to escape on every review; base64
 * has none, and a decision carries its patch encoded, so it is spliced in.
 */
export function respondJson(uid: string, decision: Decision): string {
  if (decision.type !== 'patched') return JSON.stringify(respond(uid, decision));
  return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)},"allowed":true,"patchType":"JSONPatch","patch":"${decision.patch}"}}`;
}
