// What the core decides about one pod, and the helpers that make each decision
// read in one line: allow(reason), deny(kind, message), patch(ops). How a
// decision is encoded for kube-apiserver is the wire layer's business
// (adapters/http/admission-response.ts).
import type { Operation } from 'fast-json-patch';
import type { NetworkRef } from './types.js';

export type AllowReason = 'not_create' | 'excluded_namespace' | 'opted_out' | 'no_networks' | 'unchanged';
export type DenialKind =
  | 'invalid_annotation'
  | 'nad_not_found'
  | 'nad_lookup_failed'
  | 'invalid_nad'
  | 'conflict'
  | 'unknown_container'
  | 'invalid_quantity'
  | 'internal';

export type Decision =
  | { type: 'allowed'; reason: AllowReason }
  | { type: 'denied'; kind: DenialKind; message: string }
  | { type: 'patched'; ops: Operation[] };

export const allow = (reason: AllowReason): Decision => ({ type: 'allowed', reason });
export const deny = (kind: DenialKind, message: string): Decision => ({ type: 'denied', kind, message });
export const patch = (ops: Operation[]): Decision => ({ type: 'patched', ops });

/** What the review's log line and metrics say, beside its decision. */
export interface ReviewFacts {
  networks: readonly NetworkRef[];
  /** units injected per resource */
  injected: ReadonlyMap<string, number>;
  /** short sentences for the user (admission warnings), one per cause; none for a plain injection */
  warnings: readonly string[];
}

export interface Verdict {
  decision: Decision;
  facts: ReviewFacts;
}

export const NO_FACTS: ReviewFacts = { networks: [], injected: new Map(), warnings: [] };
