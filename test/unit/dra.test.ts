// DRA (KEP-5004) without double booking: what a pod's own ResourceClaims provide, read from
// objects shaped as kube-apiserver 1.36 serves them, and the plan that then leaves the resource out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  claimedResources,
  deviceClassResource,
  podClaimRefs,
  requestedDeviceClasses,
  type ClaimsFound,
} from '../../functions/core/dra.js';
import { patchedPod, pod, run, sriovNad, verdictOf } from '../support/fixtures.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const vf = sriovNad('default', 'dra-vf', 'example.com/dra-vf');
const other = sriovNad('default', 'foo-network', 'example.com/foo');

const template = {
  apiVersion: 'resource.k8s.io/v1',
  kind: 'ResourceClaimTemplate',
  metadata: { name: 'one-vf', namespace: 'default' },
  spec: { spec: { devices: { requests: [{ name: 'vf', exactly: { deviceClassName: 'sriov-vf.example.com' } }] } } },
};
const claim = {
  apiVersion: 'resource.k8s.io/v1',
  kind: 'ResourceClaim',
  metadata: { name: 'shared-vf', namespace: 'default' },
  spec: {
    devices: {
      requests: [
        { name: 'gpu', exactly: { deviceClassName: 'gpu.example.com' } },
        {
          name: 'nic',
          firstAvailable: [{ deviceClassName: 'fast-vf.example.com' }, { deviceClassName: 'sriov-vf.example.com' }],
        },
      ],
    },
  },
};
const deviceClass = (name: string, resource?: string) => ({
  apiVersion: 'resource.k8s.io/v1',
  kind: 'DeviceClass',
  metadata: { name },
  spec: { ...(resource ? { extendedResourceName: resource } : {}), selectors: [] },
});

describe('DRA: what a pod claims itself', () => {
  it("reads the pod's claim entries, claims and templates alike, and skips names that cannot be object names", () => {
    const target = pod({}, {
      resourceClaims: [
        { name: 'a', resourceClaimTemplateName: 'one-vf' },
        { name: 'b', resourceClaimName: 'shared-vf' },
        { name: 'c', resourceClaimName: '../../secrets/x' },
        { name: 'd' },
      ],
    } as never);
    assert.deepEqual(podClaimRefs(target), [
      { name: 'a', kind: 'ResourceClaimTemplate', object: 'one-vf' },
      { name: 'b', kind: 'ResourceClaim', object: 'shared-vf' },
    ]);
    assert.deepEqual(podClaimRefs(pod()), []);
  });

  it('reads the DeviceClasses a template or a claim asks for, every firstAvailable alternative included', () => {
    assert.deepEqual(requestedDeviceClasses(template), ['sriov-vf.example.com']);
    assert.deepEqual(requestedDeviceClasses(claim), ['gpu.example.com', 'fast-vf.example.com', 'sriov-vf.example.com']);
    assert.deepEqual(requestedDeviceClasses({ kind: 'ResourceClaim', spec: { devices: { requests: 'x' } } }), []);
    assert.deepEqual(requestedDeviceClasses(null), []);
  });

  it('maps a DeviceClass to its extendedResourceName, and ignores one without', () => {
    assert.deepEqual(deviceClassResource(deviceClass('sriov-vf.example.com', 'example.com/dra-vf')), {
      name: 'sriov-vf.example.com',
      resource: 'example.com/dra-vf',
    });
    assert.equal(deviceClassResource(deviceClass('gpu.example.com')), undefined);
  });

  it('says which claim and which class provide a resource', () => {
    const provided = claimedResources(
      [
        {
          ref: { name: 'a', kind: 'ResourceClaimTemplate', object: 'one-vf' },
          classes: requestedDeviceClasses(template),
        },
      ],
      new Map([['sriov-vf.example.com', 'example.com/dra-vf']]),
    );
    assert.deepEqual(
      [...provided],
      [['example.com/dra-vf', 'ResourceClaimTemplate one-vf (pod claim "a", DeviceClass sriov-vf.example.com)']],
    );
  });
});

describe('DRA: the plan', () => {
  const claims: ClaimsFound = {
    provided: new Map([
      ['example.com/dra-vf', 'ResourceClaimTemplate one-vf (pod claim "a", DeviceClass sriov-vf.example.com)'],
    ]),
    warnings: [],
  };

  it('adds no resource a claim of the pod provides, keeps the podnetinfo volume and the node selector, and says why', async () => {
    const target = pod({ [NETWORKS]: 'dra-vf' });
    const selecting = sriovNad('default', 'dra-vf', 'example.com/dra-vf', {
      'k8s.v1.cni.cncf.io/nodeSelector': 'sriov=true',
    });
    const verdict = verdictOf(target, { nads: [selecting], claims });
    const result = patchedPod(target, verdict.decision);
    assert.equal(result.spec.containers[0]!.resources, undefined);
    assert.deepEqual(result.spec.nodeSelector, { sriov: 'true' });
    assert.ok(result.spec.volumes?.some((volume) => volume.name === 'podnetinfo'));
    assert.deepEqual([...verdict.facts.injected], []);
    assert.ok(
      verdict.facts.warnings.includes(
        'example.com/dra-vf is provided by the pod\'s ResourceClaimTemplate one-vf (pod claim "a", DeviceClass sriov-vf.example.com): 1 not added, so no second device is booked',
      ),
      verdict.facts.warnings.join('; '),
    );
  });

  it('still adds the resources no claim provides', async () => {
    const target = pod({ [NETWORKS]: 'dra-vf, foo-network' });
    const result = patchedPod(target, await run(target, { nads: [vf, other], claims }));
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { 'example.com/foo': '1' },
      limits: { 'example.com/foo': '1' },
    });
  });

  it('without claims, adds the resource as before (the scheduler then satisfies it from DRA devices)', async () => {
    const target = pod({ [NETWORKS]: 'dra-vf' });
    const result = patchedPod(target, await run(target, { nads: [vf] }));
    assert.deepEqual(result.spec.containers[0]!.resources?.limits, { 'example.com/dra-vf': '1' });
  });

  it('passes on what could not be read as a warning, and adds the resource', async () => {
    const target = pod({ [NETWORKS]: 'dra-vf' });
    const verdict = verdictOf(target, {
      nads: [vf],
      claims: { provided: new Map(), warnings: ['ResourceClaimTemplate default/one-vf could not be read (timeout)'] },
    });
    assert.deepEqual(patchedPod(target, verdict.decision).spec.containers[0]!.resources?.limits, {
      'example.com/dra-vf': '1',
    });
    assert.ok(verdict.facts.warnings.some((warning) => warning.includes('could not be read')));
  });
});
