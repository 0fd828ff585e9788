// Property-based tests (fast-check): the parser and the whole decision never
// throw, always answer a valid AdmissionReview whose patch applies, are
// idempotent in the default mode, and agree with a small reference model.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import jsonPatch, { type Operation } from 'fast-json-patch';
import { encodeResponse, respond } from '../../functions/adapters/http/admission-response.js';
import type { Decision } from '../../functions/core/decision.js';
import { patchProblem } from '../../functions/core/patch.js';
import { parseNetworkSelection } from '../../functions/core/network-selection.js';
import { reviewPod } from '../../functions/core/review.js';
import type { Container, Nad, Pod } from '../../functions/core/types.js';
import { decodeReview } from '../../functions/adapters/http/decode-review.js';
import { defaultSettings, defaultSwitches, lookupFrom, nad } from '../support/fixtures.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const RUNS = { numRuns: 400 };

const NADS: Nad[] = [
  nad('default', 'a', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/a' }),
  nad('default', 'b', {
    'k8s.v1.cni.cncf.io/resourceName': 'example.com/b',
    'k8s.v1.cni.cncf.io/nodeSelector': 'nic=b',
  }),
  nad('default', 'c'),
  nad('other', 'a', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/c' }),
];
const RESOURCE_OF: Record<string, string | undefined> = {
  'default/a': 'example.com/a',
  'default/b': 'example.com/b',
  'default/c': undefined,
  'other/a': 'example.com/c',
};

// A network reference as the generator means it; the annotation is written from it (as CSV with
// optional spaces around ',', '/' and '@', which Multus trims, or as JSON), so the reference
// model below knows the intended NADs without running the parser under test.
const reference = fc.record({
  ns: fc.constantFrom(undefined, 'default', 'other'),
  name: fc.constantFrom('a', 'b', 'c', 'a', 'b'),
  iface: fc.option(fc.constantFrom('net1', 'eth9'), { nil: undefined }),
});
const space = fc.constantFrom('', '', ' ', '  ');
const resourceList = fc.dictionary(
  fc.constantFrom('example.com/a', 'example.com/b', 'cpu', 'hugepages-1Gi'),
  fc.constantFrom('1', '2', '0', '3'),
  { maxKeys: 2 },
);
const container = (name: string) =>
  fc.record(
    {
      name: fc.constant(name),
      resources: fc.option(
        fc.record(
          {
            requests: fc.option(resourceList, { nil: undefined }),
            limits: fc.option(resourceList, { nil: undefined }),
          },
          { requiredKeys: [] },
        ),
        { nil: undefined },
      ),
      volumeMounts: fc.option(
        fc.array(
          fc.record({
            name: fc.constantFrom('data', 'podnetinfo'),
            mountPath: fc.constantFrom('/data', '/etc/podnetinfo', '/x'),
          }),
          { maxLength: 2 },
        ),
        { nil: undefined },
      ),
    },
    { requiredKeys: ['name'] },
  );
/** A pod and the NADs ("namespace/name", in order) its annotation is meant to select. */
interface GeneratedPod {
  pod: Pod;
  keys: string[];
}
const podArbitrary: fc.Arbitrary<GeneratedPod> = fc
  .record({
    refs: fc.array(fc.tuple(reference, fc.array(space, { minLength: 6, maxLength: 6 })), { maxLength: 5 }),
    json: fc.boolean(),
    containers: fc
      .integer({ min: 1, max: 3 })
      .chain((count) => fc.tuple(...Array.from({ length: count }, (_, i) => container(`c${i}`)))),
    volumes: fc.option(fc.array(fc.record({ name: fc.constantFrom('data', 'podnetinfo') }), { maxLength: 2 }), {
      nil: undefined,
    }),
    labels: fc.option(fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('x', 'y')), { nil: undefined }),
    nodeSelector: fc.option(fc.dictionary(fc.constantFrom('zone', 'nic'), fc.constantFrom('b', 'z')), {
      nil: undefined,
    }),
  })
  .map(({ refs, json, containers, volumes, labels, nodeSelector }): GeneratedPod => {
    const value = json
      ? JSON.stringify(
          refs.map(([r]) => ({
            name: r.name,
            ...(r.ns ? { namespace: r.ns } : {}),
            ...(r.iface ? { interface: r.iface } : {}),
          })),
        )
      : refs
          .map(
            ([r, [s0, s1, s2, s3, s4, s5]]) =>
              `${s0}${r.ns ? `${r.ns}${s1}/${s2}` : ''}${r.name}${r.iface ? `${s3}@${s4}${r.iface}` : ''}${s5}`,
          )
          .join(',');
    const spec: Pod['spec'] = { containers: containers.map((c) => JSON.parse(JSON.stringify(c)) as Container) };
    if (volumes) spec.volumes = volumes;
    if (nodeSelector) spec.nodeSelector = nodeSelector;
    const pod = {
      metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: value }, ...(labels ? { labels } : {}) },
      spec,
    };
    return { pod, keys: refs.map(([r]) => `${r.ns ?? 'default'}/${r.name}`) };
  });

const decide = (pod: Pod) =>
  reviewPod({ pod, namespace: 'default' }, { settings: defaultSettings, switches: defaultSwitches }, lookupFrom(NADS))
    .decision;

/** The reference model: what the rules say should happen, computed the simple way. */
function expectedOutcome({ pod, keys }: GeneratedPod): {
  deny?: 'missing' | 'conflict';
  counts: Map<string, number>;
  usesB: boolean;
} {
  const counts = new Map<string, number>();
  const usesB = keys.includes('default/b');
  if (keys.some((key) => !(key in RESOURCE_OF))) return { deny: 'missing', counts, usesB };
  const nic = pod.spec.nodeSelector?.nic;
  if (usesB && nic !== undefined && nic !== 'b') return { deny: 'conflict', counts, usesB };
  for (const key of keys) {
    const resource = RESOURCE_OF[key];
    if (resource) counts.set(resource, (counts.get(resource) ?? 0) + 1);
  }
  const userSet = (resource: string) =>
    pod.spec.containers.some(
      (c) => Object.hasOwn(c.resources?.requests ?? {}, resource) || Object.hasOwn(c.resources?.limits ?? {}, resource),
    );
  for (const resource of [...counts.keys()]) if (userSet(resource)) counts.delete(resource);
  return { counts, usesB };
}

describe('properties of the annotation parser', () => {
  it('never throws, and everything it accepts is a valid reference', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.stringMatching(/^[a-z/@, .{}[\]"]{0,40}$/)), (value) => {
        const result = parseNetworkSelection(value, 'ns', 'networks');
        if (!result.ok) return typeof result.error === 'string' && result.error.length > 0;
        return result.value.every(
          (ref) =>
            /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ref.name) && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ref.namespace),
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe('properties of the whole decision', () => {
  it('answers a valid AdmissionReview whose patch applies, and matches the reference model', async () => {
    await fc.assert(
      fc.asyncProperty(podArbitrary, async (generated) => {
        const { pod } = generated;
        const decision = await decide(pod);
        const review = respond('uid', decision);
        assert.equal(review.apiVersion, 'admission.k8s.io/v1');
        assert.equal(review.response.uid, 'uid');
        const model = expectedOutcome(generated);
        if (model.deny) {
          assert.equal(decision.type, 'denied');
          assert.equal(
            decision.type === 'denied' && decision.kind,
            model.deny === 'missing' ? 'nad_not_found' : 'conflict',
          );
          assert.equal(review.response.allowed, false);
          return;
        }
        assert.notEqual(decision.type, 'denied', decision.type === 'denied' ? decision.message : '');
        const ops = decision.type === 'patched' ? decision.ops : [];
        assert.equal(jsonPatch.validate(ops, pod), undefined, 'the patch applies');
        const after = jsonPatch.applyPatch(pod, ops, true, false).newDocument;
        const expected = model.counts;
        if (model.usesB) assert.equal(after.spec.nodeSelector?.nic, 'b', 'network b brings its node selector');
        for (const [resource, count] of expected) {
          assert.equal(after.spec.containers[0]!.resources?.requests?.[resource], String(count));
          assert.equal(after.spec.containers[0]!.resources?.limits?.[resource], String(count));
        }
        const volumes = (after.spec.volumes ?? []).filter((v) => v.name === 'podnetinfo').length;
        assert.equal(
          volumes,
          expected.size > 0 || pod.spec.volumes?.some((v) => v.name === 'podnetinfo')
            ? Math.max(1, (pod.spec.volumes ?? []).filter((v) => v.name === 'podnetinfo').length)
            : 0,
        );
        for (const c of after.spec.containers) {
          const before = pod.spec.containers.find((x) => x.name === c.name)!;
          const added = (c.volumeMounts?.length ?? 0) - (before.volumeMounts?.length ?? 0);
          assert.ok(added === 0 || added === 1);
          if (added === 1)
            assert.ok(
              !(before.volumeMounts ?? []).some((m) => m.name === 'podnetinfo' || m.mountPath === '/etc/podnetinfo'),
            );
        }
        // Idempotent: the function applied to its own output changes nothing.
        const again = await decide(after);
        assert.equal(again.type, 'allowed', `second pass: ${JSON.stringify(again)}`);
      }),
      RUNS,
    );
  });

  it('never throws on arbitrary JSON bodies: a review or a 4xx reason', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          fc.string(),
          fc
            .jsonValue()
            .map((v) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: v })),
        ),
        (body) => {
          try {
            decodeReview(Buffer.from(body));
          } catch (error) {
            assert.equal((error as { status?: number }).status, 400, String(error));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('encodes an answer as JSON.stringify of its review would, character for character, whatever the uid, patch, warnings and audit facts', () => {
    const decision: fc.Arbitrary<Decision> = fc.oneof(
      fc
        .array(
          fc.record({
            op: fc.constant('add' as const),
            path: fc.string({ unit: 'grapheme' }).map((path) => `/${path}`),
            value: fc.jsonValue(),
          }),
          { maxLength: 4 },
        )
        .map((ops) => ({ type: 'patched' as const, ops })),
      fc.constant({ type: 'allowed' as const, reason: 'no_networks' as const }),
      fc
        .string({ unit: 'grapheme' })
        .map((message) => ({ type: 'denied' as const, kind: 'nad_not_found' as const, message })),
    );
    const text = fc.string({ unit: 'grapheme', maxLength: 20 });
    const facts = fc.record({
      networks: fc.array(fc.record({ namespace: text, name: text, source: fc.constant('networks' as const) }), {
        maxLength: 3,
      }),
      injected: fc.array(fc.tuple(text, fc.nat()), { maxLength: 3 }).map((pairs) => new Map(pairs)),
      warnings: fc.array(fc.string({ unit: 'binary' }), { maxLength: 10 }),
    });
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), decision, facts, (uid, answer, told) => {
        assert.equal(encodeResponse(uid, answer, told), JSON.stringify(respond(uid, answer, told)));
        assert.equal(encodeResponse(uid, answer), JSON.stringify(respond(uid, answer)));
      }),
      { numRuns: 2000 },
    );
  });

  it('proves patches the way fast-json-patch applies them: the proof and the library agree on any add sequence', () => {
    const token = fc.constantFrom(
      'spec',
      'containers',
      '0',
      '1',
      '2',
      '-',
      'volumes',
      'resources',
      'requests',
      'x~1y',
      'metadata',
      'labels',
      'z',
    );
    const opArbitrary = fc.record({
      op: fc.constant('add' as const),
      path: fc.array(token, { minLength: 1, maxLength: 5 }).map((tokens) => `/${tokens.join('/')}`),
      value: fc.oneof(fc.constant('v'), fc.constant({}), fc.constant([]), fc.constant({ requests: {} })),
    });
    const document = {
      metadata: { labels: { a: 'b' } },
      spec: { containers: [{ name: 'c', resources: {} }], volumes: [{ name: 'v' }] },
    };
    fc.assert(
      fc.property(fc.array(opArbitrary, { maxLength: 6 }), (generated) => {
        // fast-check hands out one instance per constant, and the library writes into
        // the values it adds: shared between operations, they could become a cycle
        const ops: Operation[] = JSON.parse(JSON.stringify(generated));
        const before = JSON.stringify(document);
        const problem = patchProblem(document, ops);
        assert.equal(JSON.stringify(document), before, 'the proof writes nothing');
        let applies = true;
        try {
          // the library inserts the operations' values into its copy and writes into them later: its own copy of them
          jsonPatch.applyPatch(document, structuredClone(ops), true, false);
        } catch {
          applies = false;
        }
        // nri appends to arrays only, so an insertion the library would accept is refused here;
        // anything the proof accepts the library applies.
        if (problem === undefined)
          assert.ok(applies, `proof accepted what fast-json-patch refuses: ${JSON.stringify(ops)}`);
        else if (applies) assert.match(problem, /nri appends to arrays/, JSON.stringify(ops));
      }),
      { numRuns: 3000 },
    );
  });
});
