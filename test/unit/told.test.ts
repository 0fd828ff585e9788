// What nri tells besides its decision: admission warnings (one per cause, never
// for a plain injection), audit annotations on every change or denial, and the
// opt-outs of a pod and of a NAD.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { respond } from '../../functions/adapters/http/admission-response.js';
import { nad, patchedPod, pod, sriovNad, verdictOf } from '../support/fixtures.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const INJECT = 'nri.k8s.cni.cncf.io/inject';
const SELECTOR = 'k8s.v1.cni.cncf.io/nodeSelector';
const foo = sriovNad('default', 'foo-network', 'example.com/foo');
const macvlan = nad('default', 'macvlan');

describe('warnings and audit annotations', () => {
  it('a plain injection: no warning; the audit log gets the networks and the resources', () => {
    const verdict = verdictOf(pod({ [NETWORKS]: 'foo-network, foo-network' }), { nads: [foo] });
    assert.deepEqual(verdict.facts.warnings, []);
    const { response } = respond('u', verdict.decision, verdict.facts);
    assert.equal(response.warnings, undefined);
    assert.deepEqual(response.auditAnnotations, { networks: 'default/foo-network', resources: 'example.com/foo=2' });
  });

  it('a NAD that names no resource: one warning naming it', () => {
    const verdict = verdictOf(pod({ [NETWORKS]: 'macvlan, macvlan, foo-network' }), { nads: [foo, macvlan] });
    assert.deepEqual(verdict.facts.warnings, [
      'NetworkAttachmentDefinition default/macvlan names no resource (k8s.v1.cni.cncf.io/resourceName): none added for it',
    ]);
  });

  it('a resource left as a container sets it (not in honour mode): a warning naming the resource and the container', () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      { containers: [{ name: 'app', resources: { limits: { 'example.com/foo': '4' } } }] },
    );
    const verdict = verdictOf(target, { nads: [foo] });
    assert.equal(verdict.decision.type, 'allowed');
    assert.deepEqual(verdict.facts.warnings, [
      'example.com/foo is left as container "app" sets it: 1 not added (honour mode would add)',
    ]);
    assert.deepEqual(respond('u', verdict.decision, verdict.facts).response.warnings, verdict.facts.warnings);
    assert.deepEqual(verdictOf(target, { nads: [foo], switches: { honorExistingResources: true } }).facts.warnings, []);
  });

  it("a user-defined injection that replaced the pod's own annotation: a warning with both values", () => {
    const target = pod({ [NETWORKS]: 'mine' }, {}, { labels: { 'feature.pod.kubernetes.io/sriov-network': 'true' } });
    const switches = {
      userDefinedInjections: new Map([['feature.pod.kubernetes.io/sriov-network', { [NETWORKS]: 'foo-network' }]]),
    };
    const verdict = verdictOf(target, { nads: [foo], switches });
    assert.equal(verdict.decision.type, 'patched');
    assert.deepEqual(verdict.facts.warnings, [
      `annotation ${NETWORKS} was replaced by a user-defined injection ("mine" -> "foo-network")`,
    ]);
  });

  it('a denial: audit annotations name what was selected, nothing injected', () => {
    const verdict = verdictOf(pod({ [NETWORKS]: 'foo-network, ghost' }), { nads: [foo] });
    assert.equal(verdict.decision.type, 'denied');
    assert.deepEqual(respond('u', verdict.decision, verdict.facts).response.auditAnnotations, {
      networks: 'default/foo-network,default/ghost',
      resources: '',
    });
  });
});

describe('opt-outs', () => {
  it(`a pod with ${INJECT}: "false" is left untouched, with a warning and a reason of its own`, () => {
    const verdict = verdictOf(pod({ [NETWORKS]: 'foo-network', [INJECT]: 'false' }), { nads: [foo] });
    assert.deepEqual(verdict.decision, { type: 'allowed', reason: 'opted_out' });
    assert.deepEqual(verdict.facts.warnings, [`the pod opts out (${INJECT}: "false"): nri changed nothing`]);
    assert.equal(
      verdictOf(pod({ [NETWORKS]: 'foo-network', [INJECT]: 'true' }), { nads: [foo] }).decision.type,
      'patched',
    );
  });

  it(`a NAD with ${INJECT}: "false" adds no resource (its devices come from DRA claims), but its node selector applies`, () => {
    const dra = sriovNad('default', 'dra-net', 'example.com/dra', { [INJECT]: 'false', [SELECTOR]: 'dra=true' });
    const target = pod({ [NETWORKS]: 'dra-net, foo-network' });
    const verdict = verdictOf(target, { nads: [dra, foo] });
    const result = patchedPod(target, verdict.decision);
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { 'example.com/foo': '1' },
      limits: { 'example.com/foo': '1' },
    });
    assert.deepEqual(result.spec.nodeSelector, { dra: 'true' });
    assert.deepEqual(verdict.facts.warnings, [
      `NetworkAttachmentDefinition default/dra-net opts out (${INJECT}: "false"): no resource added for it`,
    ]);
  });

  it('any other value than "true" or "false" is a denial naming the annotation, on a pod or a NAD', () => {
    const onPod = verdictOf(pod({ [NETWORKS]: 'foo-network', [INJECT]: 'no' }), { nads: [foo] }).decision;
    assert.equal(onPod.type, 'denied');
    assert.match(
      onPod.type === 'denied' ? onPod.message : '',
      /annotation "nri\.k8s\.cni\.cncf\.io\/inject" value "no" must be "true" or "false"/,
    );
    const odd = sriovNad('default', 'odd', 'example.com/odd', { [INJECT]: 'off' });
    const onNad = verdictOf(pod({ [NETWORKS]: 'odd' }), { nads: [odd] }).decision;
    assert.match(
      onNad.type === 'denied' ? onNad.message : '',
      /NetworkAttachmentDefinition default\/odd annotation "nri\.k8s\.cni\.cncf\.io\/inject" value "off" must be "true" or "false"/,
    );
  });
});
