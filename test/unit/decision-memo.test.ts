// The decision memo: reuses a decision only while its inputs are the same
// objects, never remembers denials or decisions that waited on the API, and
// makes exactly one NAD lookup per review either way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyKey, memoizeDecisions, type Decide } from '../../functions/adapters/decision-memo.js';
import { reviewPod, type Decision, type NadLookup, type NadLookupOutcome, type PodReview, type ReviewContext } from '../../functions/core/review.js';
import type { Nad } from '../../functions/core/types.js';
import { defaultSettings, defaultSwitches, pod, sriovNad } from '../support/fixtures.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';

/** A NAD store the tests change between reviews, answering from memory (or not, when `slow`). */
function store(...initial: Nad[]) {
  const nads = new Map(initial.map((item) => [`${item.namespace}/${item.name}`, item]));
  const state = { lookups: 0, slow: false };
  const lookupNads: NadLookup = (refs) => {
    state.lookups++;
    const out = new Map<string, NadLookupOutcome>();
    for (const { namespace, name } of refs) {
      const found = nads.get(`${namespace}/${name}`);
      out.set(`${namespace}/${name}`, found ? { status: 'found', nad: found } : { status: 'missing' });
    }
    return state.slow ? Promise.resolve(out) : out;
  };
  return { nads, state, lookupNads, put: (item: Nad) => nads.set(`${item.namespace}/${item.name}`, item) };
}

/** reviewPod, counting how often it really runs */
function counted(): { decide: Decide; runs: () => number } {
  let runs = 0;
  return { decide: (review, context) => (runs++, reviewPod(review, context)), runs: () => runs };
}

/** As a ReplicaSet's pods arrive: no name and no namespace of their own, only the request's. */
const review = (networks = 'foo-network', namespace = 'default'): PodReview => ({ pod: pod({ [NETWORKS]: networks }, {}, { name: undefined, namespace: undefined, generateName: 'p-' }), namespace, operation: 'CREATE' });
const contextOf = (lookupNads: NadLookup, switches = defaultSwitches): ReviewContext => ({ settings: defaultSettings, switches, lookupNads });
const sync = (decision: Decision | Promise<Decision>): Decision => {
  assert.ok(!(decision instanceof Promise), 'expected an answer from memory');
  return decision;
};

describe('decision memo', () => {
  it('answers an identical pod with the remembered decision, one lookup per review', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    const first = sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    const second = sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(first.type, 'patched');
    assert.equal(second, first);
    assert.equal(core.runs(), 1);
    assert.equal(nads.state.lookups, 2);
    assert.equal(memo.size(), 1);
  });

  it('decides again when a NAD used was changed or deleted', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    nads.put(sriovNad('default', 'foo-network', 'example.com/bar'));
    const changed = sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    assert.deepEqual([...changed.injected.keys()], ['example.com/bar']);
    assert.equal(core.runs(), 2);
    assert.equal(nads.state.lookups, 2, 'the confirming lookup is handed on, not repeated');
    nads.nads.clear();
    const gone = sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(gone.type, 'denied');
    assert.equal(nads.state.lookups, 3);
  });

  it('decides again when the switches or settings change', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    sync(memo.decide(review(), contextOf(nads.lookupNads, { ...defaultSwitches, hugePageDownApi: true }), () => 'kept'));
    sync(memo.decide(review(), { ...contextOf(nads.lookupNads), settings: { ...defaultSettings } }, () => 'kept'));
    assert.equal(core.runs(), 3);
  });

  it('never remembers a denial: a NAD created a moment later is used', () => {
    const nads = store();
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    assert.equal(sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept')).type, 'denied');
    assert.equal(memo.size(), 0);
    nads.put(sriovNad('default', 'foo-network', 'example.com/foo'));
    assert.equal(sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept')).type, 'patched');
  });

  it('does not remember a decision that waited on the API server', async () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    nads.state.slow = true;
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    assert.equal((await memo.decide(review(), contextOf(nads.lookupNads), () => 'kept')).type, 'patched');
    assert.equal(memo.size(), 0);
    nads.state.slow = false;
    sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(memo.size(), 1);
    nads.state.slow = true; // the cache lost its sync: the remembered decision is not proof enough
    assert.ok(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept') instanceof Promise);
    assert.equal(core.runs(), 3);
    assert.equal(nads.state.lookups, 3);
  });

  it('keys on namespace, operation and the whole pod', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'), sriovNad('team', 'foo-network', 'example.com/team'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    const inDefault = sync(memo.decide(review('foo-network', 'default'), contextOf(nads.lookupNads), () => 'kept'));
    const inTeam = sync(memo.decide(review('foo-network', 'team'), contextOf(nads.lookupNads), () => 'kept'));
    assert.notDeepEqual([...inDefault.injected.keys()], [...inTeam.injected.keys()]);
    const update = sync(memo.decide({ ...review(), operation: 'UPDATE' }, contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(update.type, 'allowed');
    const labelled = review();
    labelled.pod!.metadata!.labels = { app: 'x' };
    sync(memo.decide(labelled, contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(core.runs(), 4);
  });

  it('remembers pods without networks too, with no lookup at all', () => {
    const nads = store();
    const core = counted();
    const memo = memoizeDecisions(core.decide, { sightings: 1 });
    const plain: PodReview = { pod: pod(), namespace: 'default', operation: 'CREATE' };
    assert.equal(sync(memo.decide(plain, contextOf(nads.lookupNads), () => 'kept')).type, 'allowed');
    assert.equal(sync(memo.decide(plain, contextOf(nads.lookupNads), () => 'kept')).type, 'allowed');
    assert.equal(core.runs(), 1);
    assert.equal(nads.state.lookups, 0);
  });

  it('holds at most `capacity` decisions, dropping the least recently used', () => {
    const nads = store(sriovNad('default', 'a', 'example.com/a'), sriovNad('default', 'b', 'example.com/b'), sriovNad('default', 'c', 'example.com/c'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { capacity: 2, sightings: 1 });
    for (const name of ['a', 'b', 'a', 'c', 'a', 'b']) sync(memo.decide(review(name), contextOf(nads.lookupNads), () => 'kept'));
    // a, b decided; a remembered; c decided (drops b); a remembered; b decided again
    assert.equal(core.runs(), 4);
    assert.equal(memo.size(), 2);
  });

  it('by default keeps a decision only once its key is seen a second time', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { capacity: 16 });
    // pods that never repeat (named, as a StatefulSet's): no entry, however many
    for (let index = 0; index < 50; index++) {
      const named = review();
      named.pod!.metadata!.name = `db-${index}`;
      sync(memo.decide(named, contextOf(nads.lookupNads), () => 'kept'));
    }
    assert.equal(memo.size(), 0);
    // a burst of one template: decided twice, then recalled
    for (let index = 0; index < 10; index++) sync(memo.decide(review(), contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(core.runs(), 52);
    assert.equal(memo.size(), 1);
  });

  it('decides pods too large or too deep to key every time', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions(core.decide, { maxKeyChars: 1000, sightings: 1 });
    const large = review();
    large.pod!.metadata!.labels = { big: 'x'.repeat(1000) };
    const deep = review();
    deep.pod!.spec.containers[0]!.args = JSON.parse('['.repeat(20000) + ']'.repeat(20000));
    for (const target of [large, large, deep, deep]) assert.equal(sync(memo.decide(target, contextOf(nads.lookupNads), () => 'kept')).type, 'patched');
    assert.equal(core.runs(), 4);
    assert.equal(memo.size(), 0);
  });
});

describe('memo key from the request body, and recall before parsing', () => {
  const pod0 = pod({ [NETWORKS]: 'foo-network' }, {}, { name: undefined, namespace: undefined, generateName: 'web-' });
  const body = (uid: string, target: object = pod0, head = '"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1",') =>
    `{${head}"request":{"uid":${JSON.stringify(uid)},"namespace":"default","operation":"CREATE","object":${JSON.stringify(target)}}}`;
  const keyOf = (text: string) => { const found = bodyKey(text); return found && [found.prefix, found.key]; };
  const joined = (text: string) => { const found = bodyKey(text); return found && found.prefix + found.key; };
  const reviewOf = (text: string) => {
    const parsed = JSON.parse(text).request;
    return { pod: parsed.object, namespace: parsed.namespace, operation: parsed.operation, uid: parsed.uid as string, text };
  };

  it('cuts out only the uid of a body laid out as kube-apiserver lays it out', () => {
    assert.deepEqual(keyOf(body('a-1')), keyOf(body('b-2')));
    assert.equal(joined(body('a-1')), body(''));
    for (const uid of ['705ab4f5-6393-11e8-b7cc-42010a800002', 'Ab_9.z:x-1']) assert.equal(bodyKey(body(uid))?.uid, uid);
    const apiVersionFirst = '"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",';
    assert.equal(joined(body('a-1', pod0, apiVersionFirst)), body('', pod0, apiVersionFirst));
    assert.notDeepEqual(keyOf(body('a-1', pod0, apiVersionFirst)), keyOf(body('a-1')), 'the text before the uid counts too');
    assert.notDeepEqual(keyOf(body('a-1')), keyOf(body('a-1', pod({ [NETWORKS]: 'bar-network' }))));
  });

  it('gives no key when the uid is not where kube-apiserver puts it, or is not plain', () => {
    for (const text of [
      body('a\\"b'),
      body('a b'),
      body('a\nb'),
      body(''),
      body('x'.repeat(129)),
      body('a-1', pod0, '"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","extra":{"x":1},'),
      ` ${body('a-1')}`,
      `{"request":{"namespace":"default","uid":"a-1"}}`,
      `{"kind":"AdmissionReview","request":{"uid":"unterminated`,
    ]) {
      assert.equal(bodyKey(text), undefined, text);
    }
  });

  it('recalls a body that differs from a remembered one only in uid, without a second decision', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions<string>(core.decide, { sightings: 1 });
    const first = body('u-1');
    const miss = memo.recall(first, contextOf(nads.lookupNads));
    assert.equal(miss.recalled, false);
    const decision = sync(memo.decide(reviewOf(first), contextOf(nads.lookupNads), () => 'kept', miss.recalled ? undefined : miss));
    const again = memo.recall(body('u-2'), contextOf(nads.lookupNads));
    assert.ok(again.recalled);
    assert.equal(again.decision, decision);
    assert.equal(again.uid, 'u-2');
    assert.equal(again.kept, 'kept', 'what keep() made when the decision was kept');
    assert.equal(core.runs(), 1);
    assert.equal(nads.state.lookups, 2);
    assert.equal(memo.recall(body('u-3', pod({ [NETWORKS]: 'bar-network' })), contextOf(nads.lookupNads)).recalled, false);
  });

  it('recalls nothing for a body that differs before the uid (kind or apiVersion), which validation might refuse', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const memo = memoizeDecisions<string>(counted().decide, { sightings: 1 });
    sync(memo.decide(reviewOf(body('u-1')), contextOf(nads.lookupNads), () => 'kept'));
    assert.ok(memo.recall(body('u-2'), contextOf(nads.lookupNads)).recalled);
    assert.equal(memo.recall(body('u-3', pod0, '"kind":"Nope","apiVersion":"admission.k8s.io/v1",'), contextOf(nads.lookupNads)).recalled, false);
  });

  it('hands a stale recall to decide: one lookup for the review, a new decision remembered', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions<string>(core.decide, { sightings: 1 });
    sync(memo.decide(reviewOf(body('u-1')), contextOf(nads.lookupNads), () => 'kept'));
    nads.put(sriovNad('default', 'foo-network', 'example.com/bar'));
    const stale = memo.recall(body('u-2'), contextOf(nads.lookupNads));
    assert.equal(stale.recalled, false);
    assert.equal(nads.state.lookups, 2);
    const decision = sync(memo.decide(reviewOf(body('u-2')), contextOf(nads.lookupNads), () => 'kept', stale.recalled ? undefined : stale));
    assert.deepEqual([...decision.injected.keys()], ['example.com/bar']);
    assert.equal(nads.state.lookups, 2, 'the confirming lookup is reused');
    assert.equal(core.runs(), 2);
    assert.ok(memo.recall(body('u-3'), contextOf(nads.lookupNads)).recalled);
  });

  it('keeps no body key when the uid cut out is not the one JSON.parse sees (a repeated member)', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions<string>(core.decide, { sightings: 1 });
    const repeated = (uid: string) => body(uid).replace(`"uid":"${uid}",`, `"uid":"${uid}","uid":"last",`);
    const review0 = reviewOf(repeated('first-1'));
    assert.equal(review0.uid, 'last');
    sync(memo.decide(review0, contextOf(nads.lookupNads), () => 'kept'));
    assert.equal(memo.recall(repeated('first-2'), contextOf(nads.lookupNads)).recalled, false);
  });

  it('decides bodies laid out otherwise, keyed by pod, with no recall', () => {
    const nads = store(sriovNad('default', 'foo-network', 'example.com/foo'));
    const core = counted();
    const memo = memoizeDecisions<string>(core.decide, { sightings: 1 });
    const spaced = (uid: string) => ` ${body(uid)}`;
    for (const uid of ['u-1', 'u-2']) {
      const miss = memo.recall(spaced(uid), contextOf(nads.lookupNads));
      assert.equal(miss.recalled, false);
      sync(memo.decide(reviewOf(spaced(uid)), contextOf(nads.lookupNads), () => 'kept', miss.recalled ? undefined : miss));
    }
    assert.equal(core.runs(), 1, 'the pod key still finds the first decision');
  });
});
