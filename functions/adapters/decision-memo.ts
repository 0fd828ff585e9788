// Remembers recent decisions by review content. A Deployment scaling up sends
// one identical pod per replica (generateName, no name yet), so a burst of 100
// replicas is one decision computed and 99 looked up.
//
// A remembered decision is reused only while everything it was made from is
// unchanged: the same settings and switch objects, and a lookup of the same
// NADs that returns the very same objects (the watch cache replaces an object
// when it changes and forgets it when it is deleted). Only decisions made
// synchronously from memory are kept, and never a denial: a missing NAD may
// exist a moment later, and a lookup that had to ask the API server is not
// proof of what the cache holds.
import type { Decision, NadLookup, NadLookupOutcome, PodReview, ReviewContext } from '../core/review.js';
import { nadKey } from '../core/plan.js';
import type { Nad } from '../core/types.js';

/** A review, with the request body's text when there is one (the cheapest key). */
export type ReviewWithBody = PodReview & { text?: string };

export type Decide = (review: ReviewWithBody, context: ReviewContext) => Decision | Promise<Decision>;

/**
 * The key for a body laid out as kube-apiserver writes it, which begins
 * {"kind":…,"apiVersion":…,"request":{"uid":"…". The uid differs in every
 * review and is all that is cut out, so two bodies with the same key differ
 * only in the text of that one string: the first member of the top-level
 * request, which is its uid (or a duplicate that JSON.parse overrides).
 * Nothing a decision reads. Bodies laid out otherwise get no key of this kind.
 */
const UID_PREFIX = /^\{(?:"(?:kind|apiVersion)":"[^"\\]*",){0,2}"request":\{"uid":"/;

export function bodyWithoutUid(text: string): string | undefined {
  const prefix = UID_PREFIX.exec(text);
  if (prefix === null) return undefined;
  const start = prefix[0].length;
  const end = text.indexOf('"', start);
  if (end < 0 || text.slice(start, end).includes('\\')) return undefined; // an escape: the string may end later
  return text.slice(0, start) + text.slice(end);
}

type NadRef = { namespace: string; name: string };

interface Remembered {
  decision: Decision;
  settings: ReviewContext['settings'];
  switches: ReviewContext['switches'];
  /** what the decision asked the NAD source, and what it got back (null: no lookup made) */
  refs: ReadonlyArray<NadRef> | null;
  nads: ReadonlyArray<Nad>;
}

export interface DecisionMemoOptions {
  /** decisions kept, least recently used dropped first */
  capacity?: number;
  /** reviews whose key would be longer than this are decided every time (bounds memory: capacity × this) */
  maxKeyChars?: number;
}

export interface DecisionMemo {
  decide: Decide;
  /** decisions held now */
  size(): number;
}

export function memoizeDecisions(decide: Decide, options: DecisionMemoOptions = {}): DecisionMemo {
  const { capacity = 256, maxKeyChars = 16384 } = options;
  const remembered = new Map<string, Remembered>();

  const keyOf = (review: ReviewWithBody): string | undefined => {
    if (review.text !== undefined) {
      const body = review.text.length > maxKeyChars ? undefined : bodyWithoutUid(review.text);
      if (body !== undefined) return `body:${body}`;
    }
    let pod: string;
    try {
      pod = JSON.stringify(review.pod);
    } catch {
      return undefined; // nested too deep for JSON.stringify's recursion: decide without the memo
    }
    return pod.length > maxKeyChars ? undefined : `pod:${review.operation ?? ''}\n${review.namespace ?? ''}\n${pod}`;
  };

  return {
    size: () => remembered.size,
    decide(review, context) {
      const key = keyOf(review);
      if (key === undefined) return decide(review, context);
      const entry = remembered.get(key);
      // The one lookup this review makes: to confirm a remembered decision, or
      // handed on to the decision below so the NADs are not looked up twice.
      let answered: ReturnType<NadLookup> | undefined;
      if (entry && entry.settings === context.settings && entry.switches === context.switches) {
        if (entry.refs === null) return touch(key, entry);
        answered = context.lookupNads(entry.refs);
        if (!(answered instanceof Promise) && sameNads(entry, answered)) return touch(key, entry);
      }

      let refs: ReadonlyArray<NadRef> | null = null;
      let found: Map<string, NadLookupOutcome> | undefined;
      const lookupNads: NadLookup = (asked) => {
        const outcomes = answered !== undefined && sameRefs(asked, entry!.refs!) ? answered : context.lookupNads(asked);
        refs = asked;
        if (!(outcomes instanceof Promise)) found = outcomes;
        return outcomes;
      };
      const decided = decide(review, { ...context, lookupNads });
      if (decided instanceof Promise || decided.type === 'denied') return decided;
      if (refs !== null && found === undefined) return decided;
      const nads = refs === null ? [] : nadsIn(refs, found!);
      if (nads === undefined) return decided;
      remember(key, { decision: decided, settings: context.settings, switches: context.switches, refs, nads });
      return decided;
    },
  };

  function touch(key: string, entry: Remembered): Decision {
    remembered.delete(key); // re-inserted last: Map order is the recency order
    remembered.set(key, entry);
    return entry.decision;
  }

  function remember(key: string, entry: Remembered): void {
    remembered.delete(key);
    remembered.set(key, entry);
    if (remembered.size > capacity) remembered.delete(remembered.keys().next().value!);
  }
}

/** The found NADs in the order asked; undefined if any was not found. */
function nadsIn(refs: ReadonlyArray<NadRef>, found: Map<string, NadLookupOutcome>): Nad[] | undefined {
  const nads: Nad[] = [];
  for (const ref of refs) {
    const outcome = found.get(nadKey(ref.namespace, ref.name));
    if (outcome?.status !== 'found') return undefined;
    nads.push(outcome.nad);
  }
  return nads;
}

function sameNads(entry: Remembered, found: Map<string, NadLookupOutcome>): boolean {
  const now = nadsIn(entry.refs!, found);
  return now !== undefined && now.every((nad, index) => nad === entry.nads[index]);
}

function sameRefs(a: ReadonlyArray<NadRef>, b: ReadonlyArray<NadRef>): boolean {
  return a.length === b.length && a.every((ref, index) => ref.namespace === b[index]!.namespace && ref.name === b[index]!.name);
}
