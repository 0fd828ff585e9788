// The port through which a review's NADs are resolved (step 2 of a review,
// core/review.ts). Two adapters implement it: the cluster's watch cache
// (kube/nad-cache.ts) and files (offline-nads.ts).
import type { NadLookupOutcome, NadRef } from '../core/types.js';

export interface NadSource {
  /** Every ref answered from memory (keys "namespace/name"), or undefined when one must be read from the API. */
  fromMemory(refs: readonly NadRef[]): Map<string, NadLookupOutcome> | undefined;
  /** Every ref answered, reading from the API what memory lacks. */
  read(refs: readonly NadRef[]): Promise<Map<string, NadLookupOutcome>>;
  /** null when reviews can be decided, else why not */
  readiness(): string | null;
  start(): void;
  stop(): Promise<void>;
  describe(): Record<string, unknown>;
}
