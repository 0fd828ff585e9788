// Remembers recent decisions by review content. A Deployment scaling up sends
// one identical pod per replica (generateName, no name yet), so a burst of 100
// replicas is one decision computed and 99 recalled. A body that is the text
// of a remembered one with only the uid changed is recalled before it is even
// parsed: its parse and validation would come out the same.
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

/** A review, with its uid and the request body's text when there is one (the cheapest key). */
export type ReviewWithBody = PodReview & { uid?: string; text?: string };

export type Decide = (review: PodReview, context: ReviewContext) => Decision | Promise<Decision>;

/**
 * A body laid out as kube-apiserver writes it begins
 * {"kind":…,"apiVersion":…,"request":{"uid":"…". Its key is the text after
 * that uid, and an entry also holds the text before it (`prefix`), so two
 * bodies that share both differ only in the text of that one string: the
 * first member of the top-level request, its uid (or a duplicate that
 * JSON.parse overrides), which no decision reads. (Kept in two parts, the key
 * is a slice of the body rather than a copy: one pass less over it per review.)
 * Only uids of characters that need no escaping qualify, so the other body is
 * valid JSON exactly when this one is and validates the same (the schema asks
 * a uid for a string of 1 to 128 characters). Bodies laid out otherwise get
 * no key of this kind.
 */
const UID_PREFIX = /^\{(?:"(?:kind|apiVersion)":"[^"\\]*",){0,2}"request":\{"uid":"/;
const PLAIN_UID = /^[\w.:-]{1,128}$/;

export function bodyKey(text: string): { key: string; prefix: string; uid: string } | undefined {
  const prefix = UID_PREFIX.exec(text);
  if (prefix === null) return undefined;
  const start = prefix[0].length;
  const end = text.indexOf('"', start);
  const uid = end < 0 ? '' : text.slice(start, end);
  if (!PLAIN_UID.test(uid)) return undefined;
  return { key: text.slice(end), prefix: text.slice(0, start), uid };
}

type NadRef = { namespace: string; name: string };

interface Remembered<S> {
  /** a body key's text before the uid ('' for a pod key) */
  prefix: string;
  /** what the caller asked to keep with the decision (its log fields) */
  kept: S;
  decision: Decision;
  settings: ReviewContext['settings'];
  switches: ReviewContext['switches'];
  /** what the decision asked the NAD source, and what it got back (null: no lookup made) */
  refs: ReadonlyArray<NadRef> | null;
  nads: ReadonlyArray<Nad>;
}

/** A remembered decision, what was kept of the review it was made for, and the uid of the body that recalled it. */
export interface Recalled<S> {
  recalled: true;
  kept: S;
  uid: string;
  decision: Decision;
}

/** Why recall found nothing, handed to decide() so that it neither keys nor looks up twice. */
export interface Miss {
  recalled: false;
  key?: string;
  prefix?: string;
  /** the uid cut out of the body to make `key` */
  uid?: string;
  /** the lookup made to confirm a remembered decision that turned out stale */
  confirming?: { refs: ReadonlyArray<NadRef>; answered: ReturnType<NadLookup> };
}

export interface DecisionMemoOptions {
  /** decisions kept, least recently used dropped first */
  capacity?: number;
  /**
   * reviews whose key would be longer than this are decided every time: bounds
   * memory (capacity × this), and stays under V8's 16,383 characters past which
   * a string's hash is its length alone
   */
  maxKeyChars?: number;
  /** how often a key is seen before its decision is kept (default 2: see remember()) */
  sightings?: 1 | 2;
  /** told each time a remembered decision answers a review (a metric) */
  onRecall?: () => void;
}

export interface DecisionMemo<S> {
  /** A remembered decision for a body, before it is parsed; else what decide() needs to know. */
  recall(text: string, context: ReviewContext): Recalled<S> | Miss;
  /**
   * The decision, remembered when it may be together with keep(decision),
   * something small (not the review: entries live long enough to reach V8's
   * old space). `miss` is what recall() said, if it was asked.
   */
  decide(review: ReviewWithBody, context: ReviewContext, keep: (decision: Decision) => S, miss?: Miss): Decision | Promise<Decision>;
  /** decisions held now */
  size(): number;
}

export function memoizeDecisions<S>(decide: Decide, options: DecisionMemoOptions = {}): DecisionMemo<S> {
  const { capacity = 256, maxKeyChars = 16000, sightings = 2, onRecall } = options;
  const remembered = new Map<string, Remembered<S>>();
  const seenOnce = new Set<string>();

  const keyOfBody = (text: string) => (text.length <= maxKeyChars ? bodyKey(text) : undefined);

  /** A body key, or else a pod key (which starts "pod:", where a body key starts with a quote). */
  const keyOf = (review: ReviewWithBody): { key: string; prefix: string } | undefined => {
    if (review.text !== undefined) {
      const fromBody = keyOfBody(review.text);
      // The uid cut out must be the one JSON.parse saw (a body repeating "request"
      // or "uid" would otherwise be recalled with another uid than it answers with).
      if (fromBody !== undefined && fromBody.uid === review.uid) return fromBody;
    }
    let pod: string;
    try {
      pod = JSON.stringify(review.pod);
    } catch {
      return undefined; // nested too deep for JSON.stringify's recursion: decide without the memo
    }
    return pod.length > maxKeyChars ? undefined : { key: `pod:${review.operation ?? ''}\n${review.namespace ?? ''}\n${pod}`, prefix: '' };
  };

  /** The entry for a key if it still holds; else the lookup made to find out (one per review). */
  function confirm(key: string, prefix: string, context: ReviewContext): Remembered<S> | Miss {
    const entry = remembered.get(key);
    if (!entry || entry.prefix !== prefix || entry.settings !== context.settings || entry.switches !== context.switches) return { recalled: false, key, prefix };
    if (entry.refs === null) return touch(key, entry);
    const answered = context.lookupNads(entry.refs);
    if (!(answered instanceof Promise) && sameNads(entry, answered)) return touch(key, entry);
    return { recalled: false, key, prefix, confirming: { refs: entry.refs, answered } };
  }

  return {
    size: () => remembered.size,

    recall(text, context) {
      const fromBody = keyOfBody(text);
      if (fromBody === undefined) return { recalled: false };
      const found = confirm(fromBody.key, fromBody.prefix, context);
      if ('recalled' in found) return { ...found, uid: fromBody.uid };
      return { recalled: true, kept: found.kept, uid: fromBody.uid, decision: found.decision };
    },

    decide(review, context, keep, miss) {
      // recall()'s key stands when the uid it cut out is the one JSON.parse saw
      // (a body repeating "request" or "uid" gets its key from the pod instead).
      const fromRecall = miss?.key !== undefined && miss.uid === review.uid;
      const keyed = fromRecall ? { key: miss.key!, prefix: miss.prefix ?? '' } : keyOf(review);
      if (keyed === undefined) return decide(review, context);
      const { key, prefix } = keyed;
      let confirming: Miss['confirming'];
      if (fromRecall) {
        confirming = miss!.confirming; // recall() has looked already
      } else {
        const found = confirm(key, prefix, context);
        if (!('recalled' in found)) return found.decision;
        confirming = found.confirming;
      }

      let refs: ReadonlyArray<NadRef> | null = null;
      let found: Map<string, NadLookupOutcome> | undefined;
      const lookupNads: NadLookup = (asked) => {
        const outcomes = confirming !== undefined && sameRefs(asked, confirming.refs) ? confirming.answered : context.lookupNads(asked);
        refs = asked;
        if (!(outcomes instanceof Promise)) found = outcomes;
        return outcomes;
      };
      const decided = decide(review, { ...context, lookupNads });
      if (decided instanceof Promise || decided.type === 'denied') return decided;
      if (refs !== null && found === undefined) return decided;
      const nads = refs === null ? [] : nadsIn(refs, found!);
      if (nads === undefined) return decided;
      remember(key, () => ({ prefix, kept: keep(decided), decision: decided, settings: context.settings, switches: context.switches, refs, nads }));
      return decided;
    },
  };

  /** A confirmed entry: now the most recently used. */
  function touch(key: string, entry: Remembered<S>): Remembered<S> {
    remembered.delete(key); // re-inserted last: Map order is the recency order
    remembered.set(key, entry);
    onRecall?.();
    return entry;
  }

  /**
   * A decision is kept the second time its key is seen: a key seen once is
   * only noted, among the last `capacity / 8`. Pods that never repeat (a
   * StatefulSet's, each named) then cost no entries, which would otherwise
   * outlive V8's young generation and keep its old-space collector busy.
   * `entry` is made only when it is kept.
   */
  function remember(key: string, entry: () => Remembered<S>): void {
    if (sightings === 2 && !seenOnce.delete(key)) {
      seenOnce.add(key);
      if (seenOnce.size > Math.max(1, capacity >> 3)) seenOnce.delete(seenOnce.values().next().value!);
      return;
    }
    remembered.set(key, entry());
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

function sameNads(entry: Remembered<unknown>, found: Map<string, NadLookupOutcome>): boolean {
  const now = nadsIn(entry.refs!, found);
  return now !== undefined && now.every((nad, index) => nad === entry.nads[index]);
}

function sameRefs(a: ReadonlyArray<NadRef>, b: ReadonlyArray<NadRef>): boolean {
  return a.length === b.length && a.every((ref, index) => ref.namespace === b[index]!.namespace && ref.name === b[index]!.name);
}
