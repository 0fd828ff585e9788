// The function as production runs it: over real HTTP, reading NADs and the
// control-switch ConfigMap from a fake API server over real HTTPS through a kubeconfig.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { realisticReview } from '../support/fixtures.js';
import {
  admissionReview,
  decodePatch,
  eventually,
  send,
  startFunction,
  type RunningFunction,
} from '../support/function-process.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';

describe('injector against a fake API server', () => {
  const pki = createPki();
  const api = new FakeApiServer(pki);
  let fn: RunningFunction;

  const podWith = (networks: string, extra: Record<string, unknown> = {}) => ({
    metadata: {
      name: 'p',
      namespace: 'default',
      annotations: { [NETWORKS]: networks },
      labels: { app: 'x' },
      ...extra,
    },
    spec: { containers: [{ name: 'app', image: 'busybox', resources: {} }] },
  });
  const review = (object: unknown, extra: Record<string, unknown> = {}) =>
    send(`${fn.url}/mutate`, { body: admissionReview(object, extra) });

  before(async () => {
    await api.start();
    api.upsertNad('telco', 'sriov-a', { [RESOURCE]: 'intel.com/sriov_a' });
    api.upsertNad('infra', 'sriov-b', {
      [RESOURCE]: 'intel.com/sriov_b',
      'k8s.v1.cni.cncf.io/nodeSelector': 'sriov=true',
    });
    api.upsertNad('default', 'foo-network', { [RESOURCE]: 'example.com/foo' });
    fn = await startFunction({
      KUBECONFIG: api.kubeconfigPath,
      NRI_NAMESPACE: 'nri',
      NRI_INJECT_HUGEPAGE_DOWN_API: 'false',
    });
    await fn.waitForLog(/NAD watch cache synced/);
  });

  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  it('patches the pod the API server really sends', async () => {
    const sample = realisticReview();
    const result = await send(`${fn.url}/mutate`, { body: JSON.stringify(sample) });
    assert.equal(result.status, 200);
    assert.equal(result.json.response.uid, sample.request.uid);
    assert.equal(result.json.response.allowed, true);
    const ops = decodePatch(result);
    assert.deepEqual(
      ops.filter((op) => op.path.includes('/resources/')),
      [
        { op: 'add', path: '/spec/containers/0/resources/requests/intel.com~1sriov_a', value: '1' },
        { op: 'add', path: '/spec/containers/0/resources/requests/intel.com~1sriov_b', value: '1' },
        { op: 'add', path: '/spec/containers/0/resources/limits/intel.com~1sriov_a', value: '1' },
        { op: 'add', path: '/spec/containers/0/resources/limits/intel.com~1sriov_b', value: '1' },
      ],
    );
    assert.ok(ops.some((op) => op.path === '/spec/nodeSelector' && op.value.sriov === 'true'));
    assert.ok(ops.some((op) => op.path === '/spec/volumes/-' && op.value.name === 'podnetinfo'));
  });

  it('serves lookups from the watch cache: no GET per review once synced', async () => {
    const before = api.counts.nadGet;
    for (let i = 0; i < 20; i++) assert.equal((await review(podWith('foo-network'))).json.response.allowed, true);
    assert.equal(api.counts.nadGet, before);
  });

  it('answers a burst of identical pods (a Deployment scaling up) each with its own uid and the same patch', async () => {
    const replica = {
      metadata: {
        generateName: 'web-7c9f-',
        namespace: 'default',
        annotations: { [NETWORKS]: 'foo-network' },
        labels: { app: 'web' },
      },
      spec: { containers: [{ name: 'app' }] },
    };
    const bodies = Array.from({ length: 20 }, () => admissionReview(replica));
    const results = await Promise.all(bodies.map((body) => send(`${fn.url}/mutate`, { body })));
    for (const [index, result] of results.entries())
      assert.equal(result.json.response.uid, JSON.parse(bodies[index]!).request.uid);
    const patches = new Set(results.map((result) => result.json.response.patch));
    assert.equal(patches.size, 1);
    assert.ok(decodePatch(results[0]!).some((op) => JSON.stringify(op).includes('example.com/foo')));
  });

  it('answers the same for a dry run', async () => {
    const normal = decodePatch(await review(podWith('foo-network')));
    const dry = decodePatch(await review(podWith('foo-network'), { dryRun: true }));
    assert.deepEqual(dry, normal);
  });

  it('denies a missing NAD naming it', async () => {
    const result = await review(podWith('foo-network, ghost'));
    assert.equal(result.json.response.allowed, false);
    assert.match(result.json.response.status.message, /NetworkAttachmentDefinition not found: default\/ghost/);
  });

  it('sees NADs created, changed and deleted while it runs', async () => {
    api.upsertNad('default', 'fresh', { [RESOURCE]: 'example.com/one' });
    // Right away: a miss falls back to GET, so a NAD created a moment ago works.
    const ops = decodePatch(await review(podWith('fresh')));
    assert.ok(ops.some((op) => JSON.stringify(op).includes('example.com/one')));

    api.upsertNad('default', 'fresh', { [RESOURCE]: 'example.com/two' });
    await eventually(
      async () => JSON.stringify(decodePatch(await review(podWith('fresh')))),
      (text) => text.includes('example.com/two'),
      2000,
    );

    api.deleteNad('default', 'fresh');
    const denied = await eventually(
      () => review(podWith('fresh')),
      (result) => result.json.response.allowed === false,
      2000,
    );
    assert.match(denied.json.response.status.message, /default\/fresh/);
  });

  it('follows the control-switch ConfigMap: apply, ignore malformed, revert on delete', async () => {
    const honorPod = {
      metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: 'foo-network' } },
      spec: {
        containers: [
          { name: 'app', resources: { requests: { 'example.com/foo': '2' }, limits: { 'example.com/foo': '2' } } },
        ],
      },
    };
    assert.deepEqual(decodePatch(await review(honorPod)), [], 'env default: the user value stands');

    api.upsertConfigMap('nri', 'nri-control-switches', {
      'config.json': JSON.stringify({ features: { enableHonorExistingResources: true } }),
    });
    await eventually(
      async () => decodePatch(await review(honorPod)),
      (ops) => ops.some((op) => op.value === '3'),
      5000,
    );

    api.upsertConfigMap('nri', 'nri-control-switches', {
      'config.json': '{"features": {"enableHonorExistingResources": "yes"}}',
    });
    await eventually(
      async () => decodePatch(await review(honorPod)),
      (ops) => ops.length === 0,
      5000,
    );
    await fn.waitForLog(/ignored, environment values in force/);

    api.upsertConfigMap('nri', 'nri-control-switches', {
      'config.json': JSON.stringify({ features: { enableHonorExistingResources: true } }),
    });
    await eventually(
      async () => decodePatch(await review(honorPod)),
      (ops) => ops.length > 0,
      5000,
    );
    api.deleteConfigMap('nri', 'nri-control-switches');
    await eventually(
      async () => decodePatch(await review(honorPod)),
      (ops) => ops.length === 0,
      5000,
    );
  });

  it('applies user-defined injections from the ConfigMap', async () => {
    api.upsertConfigMap('nri', 'nri-control-switches', {
      'config.json': JSON.stringify({
        'user-defined-injections': {
          'feature.pod.kubernetes.io/sriov-network': {
            op: 'add',
            path: '/metadata/annotations',
            value: { [NETWORKS]: 'foo-network' },
          },
        },
      }),
    });
    const labelled = {
      metadata: { name: 'p', namespace: 'default', labels: { 'feature.pod.kubernetes.io/sriov-network': 'True' } },
      spec: { containers: [{ name: 'app' }] },
    };
    const ops = await eventually(
      async () => decodePatch(await review(labelled)),
      (list) => list.length > 0,
      5000,
    );
    assert.deepEqual(ops[0], { op: 'add', path: '/metadata/annotations', value: { [NETWORKS]: 'foo-network' } });
    assert.ok(ops.some((op) => op.path === '/spec/containers/0/resources'));
    api.deleteConfigMap('nri', 'nri-control-switches');
  });

  it('answers malformed requests with a 4xx JSON reason and keeps serving', async () => {
    const notJson = await send(`${fn.url}/mutate`, { body: '{"apiVersion":' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.error, 'invalid_json');
    const notPod = await send(`${fn.url}/mutate`, {
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, object: {} },
      }),
    });
    assert.equal(notPod.status, 400);
    assert.equal(notPod.json.error, 'not_a_pod');
    assert.match(
      notPod.json.message,
      /^nri reviews Pods only; this review is for a apps\/v1 Deployment: check the webhook's rules/,
    );
    const noUid = await send(`${fn.url}/mutate`, {
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { kind: { kind: 'Pod' }, object: { spec: { containers: [{ name: 'a' }] } } },
      }),
    });
    assert.equal(noUid.status, 400);
    assert.match(noUid.json.message, /"uid"/);
    // Declared too large: answered from the headers, before any body is read.
    const big = await send(`${fn.url}/mutate`, { body: '{}', headers: { 'content-length': 5 * 1024 * 1024 } });
    assert.equal(big.status, 413);
    assert.equal(big.json.error, 'too_large');
    assert.equal((await review(podWith('foo-network'))).status, 200);
  });

  it('answers health and readiness', async () => {
    assert.equal((await send(`${fn.url}/healthz`)).status, 200);
    assert.equal((await send(`${fn.url}/readyz`)).status, 200);
  });
});
