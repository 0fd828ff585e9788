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

/** A JSONPatch travels as base64 of its JSON. */
export const patched = (uid: string, ops: readonly object[]): AdmissionResponseReview =>
  envelope({ uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') });

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
