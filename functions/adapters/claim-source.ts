// The port through which a review learns what the pod's own ResourceClaims provide
// (core/dra.ts): the cluster's DeviceClass index (kube/dra-index.ts), or nothing at all
// (files, nri explain offline), where no claim can be read.
import { NO_CLAIMS, type ClaimsFound } from '../core/dra.js';
import type { Pod } from '../core/types.js';

export interface ClaimSource {
  /** The answer at once when nothing must be read (the pod claims nothing, or no DeviceClass maps a resource). */
  fromMemory(pod: Pod): ClaimsFound | undefined;
  /** Reads the pod's claims and templates; never rejects: what cannot be read is a warning. */
  read(pod: Pod, namespace: string): Promise<ClaimsFound>;
  start(): void;
  stop(): Promise<void>;
  describe(): Record<string, unknown>;
}

/** Where no cluster is read: no claim provides anything. */
export const NO_CLAIM_SOURCE: ClaimSource = {
  fromMemory: () => NO_CLAIMS,
  read: async () => NO_CLAIMS,
  start: () => undefined,
  stop: async () => undefined,
  describe: () => ({ dra: 'off (no cluster)' }),
};
