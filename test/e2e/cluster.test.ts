// nri against a real control plane (kube-apiserver 1.36 + etcd +
// controller-manager + scheduler + a kwok node), deployed from the rendered
// knative/ kustomization, running as its container would. Every assertion is
// on what the apiserver stored or answered, or on nri's own metrics.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { missingUpstream, startUpstream } from '../../bench/upstream.js';
import { repoRoot } from '../support/fixtures.js';
import { metricValue } from '../support/metrics.js';
import { readmeCommand, writeInstallOverlay } from '../support/readme.js';
import { freePort, send, startFunction, type RunningFunction } from '../support/function-process.js';
import { ControlPlane, missingControlPlane } from './support/control-plane.js';
import {
  AS_ROOT,
  deployWithCertificate,
  find,
  issueServingSecret,
  knativeRefusal,
  render,
  startNri,
  syncVolume,
  type Deployment,
  type KubeObject,
} from './support/deploy.js';

const missing = missingControlPlane();
if (missing && process.env.CI === 'true')
  throw new Error(`e2e: the control plane is required under CI=true; ${missing}`);

const NODE = 'kwok-node-0';

describe('nri on a real control plane', { skip: missing ? `e2e skipped: ${missing}` : false }, () => {
  const cp = new ControlPlane();
  let objects: KubeObject[];
  let deployment: Deployment;
  let nri: RunningFunction;
  let nriStartFailure: string | undefined;
  let stopCainjector = () => {};

  const metrics = async () => (await send(`${nri.url}/metrics`)).text;
  const reviewsSeen = async () => {
    const text = await metrics();
    return text
      .split('\n')
      .filter((line) => line.startsWith('nri_admission_reviews_total{'))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  };
  const apply = (object: unknown) => cp.must(['apply', '--server-side', '-f', '-'], JSON.stringify(object));
  const create = (object: unknown, extra: string[] = []) =>
    cp.kubectl(['create', '-f', '-', ...extra], JSON.stringify(object));
  const getPod = (name: string, namespace = 'default') => cp.getJson(['pod', name, '-n', namespace]);
  const nadObject = (name: string, annotations: Record<string, string>, namespace = 'default') => ({
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: { name, namespace, annotations },
    spec: { config: JSON.stringify({ cniVersion: '0.3.1', name, type: 'macvlan' }) },
  });
  const podObject = (
    name: string,
    annotations: Record<string, string>,
    spec: Record<string, unknown> = {},
    metadata: Record<string, unknown> = {},
  ) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', annotations, ...metadata },
    spec: { containers: [{ name: 'app', image: 'busybox' }], ...spec },
  });
  const waitRunning = (name: string, namespace = 'default') =>
    cp.waitFor(
      `pod ${namespace}/${name} Running`,
      async () => (await getPod(name, namespace)).status?.phase === 'Running',
      60000,
    );
  const deleteNow = (...args: string[]) => cp.must(['delete', ...args, '--ignore-not-found', '--wait=false']);

  before(async () => {
    const started = Date.now();
    await cp.start();
    ({ objects, deployment, stopCainjector } = await deployWithCertificate(cp));
    // A node kwok runs pods on. kube-apiserver taints a new node not-ready and
    // nothing here (no node lifecycle controller) would lift it.
    await apply({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: NODE,
        annotations: { 'kwok.x-k8s.io/node': 'fake' },
        labels: { type: 'kwok', 'kubernetes.io/hostname': NODE, 'example.com/nic': 'eno3' },
      },
      spec: {},
    });
    await cp.waitFor(
      'the kwok node to be Ready',
      async () =>
        (await cp.getJson(['node', NODE])).status?.conditions?.some(
          (c: any) => c.type === 'Ready' && c.status === 'True',
        ),
      60000,
    );
    await cp.must(['taint', 'node', NODE, 'node.kubernetes.io/not-ready-']).catch(() => '');
    try {
      nri = await startNri(cp, deployment);
      await cp.waitFor('nri ready', async () => (await send(`${nri.url}/readyz`)).status === 200, 30000);
    } catch (error) {
      nriStartFailure = (error as Error).message; // the next test reports it
    }
    process.stderr.write(`# e2e control plane and nri up in ${Date.now() - started} ms\n`);
  });

  after(async () => {
    stopCainjector();
    await nri?.stop();
    await cp.stop();
  });

  it('the whole kustomization is accepted: apiserver server-side dry run, Knative Serving validation, cainjector', async () => {
    // deploy() already applied the render with --dry-run=server and for real; here what only Knative and cert-manager check.
    assert.equal(knativeRefusal(find(objects, 'Service', 'nri')), undefined);
    const webhook = await cp.getJson([
      'mutatingwebhookconfiguration',
      find(objects, 'MutatingWebhookConfiguration').metadata.name,
    ]);
    assert.equal(Buffer.from(webhook.webhooks[0].clientConfig.caBundle, 'base64').toString(), cp.pki.caPem);
  });

  it('runs as the container does (uid/gid, Secret volume mode) and is ready with its certificate', async (t) => {
    if (!AS_ROOT)
      t.diagnostic(
        'not root: nri runs as the current user and Secret files are not root-owned, so the uid/gid and file-mode checks are weaker here (CI runs as root)',
      );
    // The kubelet writes Secret files owned by root with the volume's defaultMode; Knative refuses
    // fsGroup. A mode without "other" read leaves the non-root container unable to start.
    assert.equal(nriStartFailure, undefined);
    const ready = await send(`${nri.url}/readyz`);
    assert.equal(ready.status, 200, ready.text);
    assert.equal(nri.child.exitCode, null);
  });

  it("upstream README walkthrough: node capacity, NAD, pod with 'foo-network, foo-network', Running, cleanup", async () => {
    await cp.must([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=json',
      '-p',
      '[{"op": "add", "path": "/status/capacity/example.com~1foo", "value": "4"}]',
    ]);
    // What a kubelet does next: allocatable follows capacity for extended resources.
    await cp.must([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=json',
      '-p',
      '[{"op": "add", "path": "/status/allocatable/example.com~1foo", "value": "4"}]',
    ]);
    await cp.must(
      ['create', '-f', '-'],
      `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  annotations:
    k8s.v1.cni.cncf.io/resourceName: example.com/foo
  name: foo-network
  namespace: default
spec:
  config: |
    {
      "cniVersion": "0.3.0",
      "name": "foo-network",
      "type": "bridge",
      "bridge": "br0",
      "isGateway": true,
      "ipam":
      {
        "type": "host-local",
        "subnet": "172.36.0.0/24",
        "dataDir": "/mnt/cluster-ipam"
      }
    }
`,
    );
    await cp.must(
      ['create', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata:
  name: webhook-demo
  annotations:
    k8s.v1.cni.cncf.io/networks: foo-network, foo-network
spec:
  containers:
  - image: busybox
    resources:
    command: ["tail", "-f", "/dev/null"]
    imagePullPolicy: IfNotPresent
    name: busybox
  restartPolicy: Always
`,
    );
    const stored = await getPod('webhook-demo');
    assert.deepEqual(stored.spec.containers[0].resources, {
      limits: { 'example.com/foo': '2' },
      requests: { 'example.com/foo': '2' },
    });
    await waitRunning('webhook-demo');
    assert.equal((await getPod('webhook-demo')).spec.nodeName, NODE);

    await cp.must([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=json',
      '-p',
      '[{"op": "remove", "path": "/status/capacity/example.com~1foo"}]',
    ]);
    await cp.must(['delete', 'net-attach-def', 'foo-network']);
    await cp.must(['delete', 'pod', 'webhook-demo', '--wait=false']);
    await cp.waitFor(
      'webhook-demo gone',
      async () => (await cp.kubectl(['get', 'pod', 'webhook-demo'])).code !== 0,
      60000,
    );
  });

  it("README's Verify block, as written, against this cluster", async () => {
    const output = execFileSync('bash', ['-e', '-o', 'pipefail', '-c', readmeCommand('verify')], {
      cwd: fileURLToPath(repoRoot),
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: cp.adminKubeconfig, NODE },
    });
    assert.ok(
      output.trimEnd().endsWith('{"limits":{"example.com/foo":"2"},"requests":{"example.com/foo":"2"}}'),
      output,
    );
    await cp.must(['delete', 'pod', 'webhook-demo', '--wait=false']);
    await cp.must(['delete', '-f', join(fileURLToPath(repoRoot), 'examples/nads/foo-network.yaml')]);
    await cp.must([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=json',
      '-p',
      '[{"op": "remove", "path": "/status/capacity/example.com~1foo"}]',
    ]);
    await cp.waitFor(
      'webhook-demo gone',
      async () => (await cp.kubectl(['get', 'pod', 'webhook-demo'])).code !== 0,
      60000,
    );
  });

  it('What it does: JSON selection, default network in the Multus namespace, node selector, podnetinfo, target container', async () => {
    await cp.must([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=json',
      '-p',
      JSON.stringify(
        ['capacity', 'allocatable'].map((field) => ({
          op: 'add',
          path: `/status/${field}/intel.com~1sriov_a`,
          value: '8',
        })),
      ),
    ]);
    await apply(
      nadObject('sriov-a', {
        'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov_a',
        'k8s.v1.cni.cncf.io/nodeSelector': 'example.com/nic=eno3',
      }),
    );
    await apply(nadObject('cluster-default', {}, 'kube-system'));
    const created = await create(
      podObject(
        'features',
        {
          'k8s.v1.cni.cncf.io/networks':
            '[{"name":"sriov-a","interface":"net1"},{"name":"sriov-a","namespace":"default","interface":"net2"}]',
          'v1.multus-cni.io/default-network': 'cluster-default',
          'nri.k8s.cni.cncf.io/resources-container': 'dpdk',
        },
        {
          containers: [
            { name: 'sidecar', image: 'busybox' },
            { name: 'dpdk', image: 'busybox' },
          ],
        },
        { labels: { app: 'features' } },
      ),
    );
    assert.equal(created.code, 0, created.stderr);
    const pod = await getPod('features');
    assert.deepEqual(pod.spec.containers[1].resources, {
      requests: { 'intel.com/sriov_a': '2' },
      limits: { 'intel.com/sriov_a': '2' },
    });
    assert.deepEqual(pod.spec.containers[0].resources, {});
    assert.equal(pod.spec.nodeSelector['example.com/nic'], 'eno3');
    const volume = pod.spec.volumes.find((v: any) => v.name === 'podnetinfo');
    assert.deepEqual(
      volume.downwardAPI.items.map((item: any) => item.path),
      ['labels', 'annotations'],
    );
    for (const container of pod.spec.containers) {
      assert.ok(
        container.volumeMounts.some(
          (m: any) => m.name === 'podnetinfo' && m.mountPath === '/etc/podnetinfo' && m.readOnly,
        ),
        container.name,
      );
      assert.ok(
        container.volumeMounts.some((m: any) => m.name.startsWith('kube-api-access-')),
        'the service account volume stays',
      );
    }
    await waitRunning('features');
    await deleteNow('pod', 'features');
  });

  it("What it does: a missing NAD and a bad annotation are refused by the apiserver with nri's message", async () => {
    const missingNad = await create(podObject('missing-nad', { 'k8s.v1.cni.cncf.io/networks': 'fooo-network' }));
    assert.notEqual(missingNad.code, 0);
    assert.match(
      missingNad.stderr,
      /admission webhook "network-resources-injector\.k8s\.cni\.cncf\.io" denied the request: NetworkAttachmentDefinition not found: default\/fooo-network/,
    );
    assert.match(
      missingNad.stderr,
      /could not get Network Attachment Definition default\/fooo-network/,
      "upstream's phrase, for runbooks built on it",
    );
    const bad = await create(podObject('bad-annotation', { 'k8s.v1.cni.cncf.io/networks': 'a,,b' }));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /denied the request: .*item 2 is empty/);
  });

  it('tells through kube-apiserver: warnings as kubectl prints them, audit annotations in the audit log, opt-outs', async () => {
    // A NAD with no resource, and a pod that names it: kubectl prints nri's warning.
    await apply(nadObject('plain-macvlan', {}));
    const warned = await create(podObject('warned', { 'k8s.v1.cni.cncf.io/networks': 'plain-macvlan, sriov-a' }));
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /^Warning: NetworkAttachmentDefinition default\/plain-macvlan names no resource/m);
    // The audit event of that creation carries nri's annotations, prefixed with the webhook's name.
    await cp.waitFor(
      'the audit event of pod warned',
      async () => readFileSync(cp.auditLog, 'utf8').includes('"name":"warned"'),
      10000,
    );
    const event = readFileSync(cp.auditLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .find((e) => e.objectRef?.name === 'warned' && e.stage === 'ResponseComplete');
    assert.equal(
      event.annotations['network-resources-injector.k8s.cni.cncf.io/networks'],
      'default/plain-macvlan,default/sriov-a',
    );
    assert.equal(event.annotations['network-resources-injector.k8s.cni.cncf.io/resources'], 'intel.com/sriov_a=1');
    // A pod that opts out: admitted untouched, with a warning.
    const optedOut = await create(
      podObject('opted-out', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a', 'nri.k8s.cni.cncf.io/inject': 'false' }),
    );
    assert.match(
      optedOut.stderr,
      /^Warning: the pod opts out \(nri\.k8s\.cni\.cncf\.io\/inject: "false"\): nri changed nothing$/m,
    );
    assert.equal((await getPod('opted-out')).spec.containers[0].resources.limits, undefined);
    // A NAD that opts out (its devices come from DRA claims): no resource, its node selector still applies.
    await apply(
      nadObject('dra-backed', {
        'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov_a',
        'k8s.v1.cni.cncf.io/nodeSelector': 'example.com/nic=eno3',
        'nri.k8s.cni.cncf.io/inject': 'false',
      }),
    );
    const dra = await create(podObject('dra-pod', { 'k8s.v1.cni.cncf.io/networks': 'dra-backed' }));
    assert.match(dra.stderr, /^Warning: NetworkAttachmentDefinition default\/dra-backed opts out/m);
    const stored = await getPod('dra-pod');
    assert.equal(stored.spec.containers[0].resources.limits, undefined);
    assert.equal(stored.spec.nodeSelector['example.com/nic'], 'eno3');
    await deleteNow('pod', 'warned', 'opted-out', 'dra-pod');
    await deleteNow('net-attach-def', 'plain-macvlan', 'dra-backed');
  });

  it('dry-run create is answered with the same patch and stores nothing', async () => {
    const result = await create(podObject('dry', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' }), [
      '--dry-run=server',
      '-o',
      'json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout).spec.containers[0].resources.requests, { 'intel.com/sriov_a': '1' });
    assert.notEqual((await cp.kubectl(['get', 'pod', 'dry'])).code, 0);
    await nri.waitForLog(/"podName":"dry".*"dryRun":true/); // log lines are flushed within 500 ms
  });

  it("pods that must never reach nri: no annotation, excluded namespaces, nri's own", async () => {
    const before = await reviewsSeen();
    assert.equal((await create(podObject('plain', {}))).code, 0);
    const system = podObject('system', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' });
    system.metadata.namespace = 'kube-system';
    assert.equal((await create(system)).code, 0);
    const own = podObject(
      'own',
      { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' },
      {},
      { labels: { 'app.kubernetes.io/name': 'nri' } },
    );
    assert.equal((await create(own)).code, 0);
    assert.equal(await reviewsSeen(), before, 'nri was called for a pod it must not see');
    assert.equal((await getPod('system', 'kube-system')).spec.containers[0].resources.requests, undefined);
    await deleteNow('pod', 'plain', 'own');
    await deleteNow('pod', 'system', '-n', 'kube-system');
  });

  it('Deployment and StatefulSet scale-ups through controller-manager: every replica injected and Running', async () => {
    const template = {
      metadata: { labels: { app: 'scale' }, annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' } },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    };
    await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'scale', namespace: 'default' },
      spec: { replicas: 3, selector: { matchLabels: { app: 'scale' } }, template },
    });
    await apply({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'sts', namespace: 'default' },
      spec: {
        replicas: 2,
        serviceName: 'sts',
        selector: { matchLabels: { app: 'sts' } },
        template: { ...template, metadata: { ...template.metadata, labels: { app: 'sts' } } },
      },
    });
    await cp.waitFor(
      '5 replicas Running',
      async () => {
        const pods = (await cp.getJson(['pods', '-n', 'default', '-l', 'app in (scale,sts)'])).items;
        return pods.length === 5 && pods.every((pod: any) => pod.status?.phase === 'Running');
      },
      90000,
    );
    const pods = (await cp.getJson(['pods', '-n', 'default', '-l', 'app in (scale,sts)'])).items;
    for (const pod of pods)
      assert.deepEqual(pod.spec.containers[0].resources.limits, { 'intel.com/sriov_a': '1' }, pod.metadata.name);
    await deleteNow('deployment', 'scale');
    await deleteNow('statefulset', 'sts');
  });

  it("DRA extended resources (KEP-5004): the resource nri injects is satisfied from a DRA driver's devices, the pod scheduled and Running", async () => {
    // A DeviceClass that maps the NAD's resource name to the devices a ResourceSlice publishes for the
    // node: the node itself offers no such extended resource, so only DRA can satisfy the request.
    await apply({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: { name: 'sriov-vf.example.com' },
      spec: {
        extendedResourceName: 'example.com/dra-vf',
        selectors: [{ cel: { expression: 'device.driver == "sriov.example.com"' } }],
      },
    });
    await apply({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceSlice',
      metadata: { name: `${NODE}-sriov` },
      spec: {
        driver: 'sriov.example.com',
        nodeName: NODE,
        pool: { name: NODE, generation: 1, resourceSliceCount: 1 },
        devices: [{ name: 'vf-0' }, { name: 'vf-1' }],
      },
    });
    await apply(nadObject('dra-vf', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/dra-vf' }));
    const created = await create(podObject('dra-consumer', { 'k8s.v1.cni.cncf.io/networks': 'dra-vf' }));
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(
      (await getPod('dra-consumer')).spec.containers[0].resources.limits,
      { 'example.com/dra-vf': '1' },
      'injected by nri',
    );
    await waitRunning('dra-consumer');
    const pod = await getPod('dra-consumer');
    assert.equal(pod.spec.nodeName, NODE);
    const mapping = pod.status.extendedResourceClaimStatus;
    assert.ok(mapping?.resourceClaimName, `the scheduler records the claim it made: ${JSON.stringify(pod.status)}`);
    const claim = await cp.getJson(['resourceclaim', mapping.resourceClaimName]);
    assert.equal(claim.status.allocation.devices.results[0].driver, 'sriov.example.com');
    await deleteNow('pod', 'dra-consumer');
    await deleteNow('net-attach-def', 'dra-vf');
  });

  it('DRA without double booking: a pod that claims the DeviceClass itself gets no second device from the resource nri would add', async () => {
    // Four devices, so that a second booking would succeed and show itself rather than leave the pod Pending.
    await apply({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceSlice',
      metadata: { name: `${NODE}-sriov` },
      spec: {
        driver: 'sriov.example.com',
        nodeName: NODE,
        pool: { name: NODE, generation: 2, resourceSliceCount: 1 },
        devices: [{ name: 'vf-0' }, { name: 'vf-1' }, { name: 'vf-2' }, { name: 'vf-3' }],
      },
    });
    await apply(nadObject('dra-vf', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/dra-vf' }));
    await apply({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaimTemplate',
      metadata: { name: 'one-vf', namespace: 'default' },
      spec: { spec: { devices: { requests: [{ name: 'vf', exactly: { deviceClassName: 'sriov-vf.example.com' } }] } } },
    });
    const claiming = (name: string, annotations: Record<string, string>, limits?: Record<string, string>) =>
      podObject(name, annotations, {
        resourceClaims: [{ name: 'vf', resourceClaimTemplateName: 'one-vf' }],
        containers: [
          { name: 'app', image: 'busybox', resources: { claims: [{ name: 'vf' }], ...(limits ? { limits } : {}) } },
        ],
      });
    const claimsOf = async (pod: string) =>
      (await cp.getJson(['resourceclaims', '-n', 'default'])).items.filter((claim: any) =>
        (claim.metadata.ownerReferences ?? []).some((owner: any) => owner.kind === 'Pod' && owner.name === pod),
      );
    const allocatedDevices = async (pod: string) =>
      (await claimsOf(pod)).flatMap((claim: any) => claim.status?.allocation?.devices?.results ?? []).length;

    // nri reads DeviceClasses through a watch: wait until a dry run shows the rule in force.
    await cp.waitFor(
      'nri sees the DeviceClass that maps example.com/dra-vf',
      async () => {
        const dry = await create(claiming('dra-claimer', { 'k8s.v1.cni.cncf.io/networks': 'dra-vf' }), [
          '--dry-run=server',
          '-o',
          'json',
        ]);
        return dry.code === 0 && JSON.parse(dry.stdout).spec.containers[0].resources.limits === undefined;
      },
      15000,
    );

    // The same run, the pod as it would be without the rule: the extended resource set besides its claim.
    const doubled = await create(claiming('dra-doubled', {}, { 'example.com/dra-vf': '1' }));
    assert.equal(doubled.code, 0, doubled.stderr);
    await waitRunning('dra-doubled');
    await cp.waitFor(
      'two claims allocated for dra-doubled',
      async () => (await allocatedDevices('dra-doubled')) === 2,
      30000,
    );

    const created = await create(claiming('dra-claimer', { 'k8s.v1.cni.cncf.io/networks': 'dra-vf' }));
    assert.equal(created.code, 0, created.stderr);
    assert.match(
      created.stderr,
      /Warning: example\.com\/dra-vf is provided by the pod's ResourceClaimTemplate one-vf \(pod claim "vf", DeviceClass sriov-vf\.example\.com\): 1 not added, so no second device is booked/,
    );
    const pod = await getPod('dra-claimer');
    assert.equal(pod.spec.containers[0].resources.limits, undefined, 'nri added no extended resource');
    assert.ok(
      pod.spec.volumes.some((volume: any) => volume.name === 'podnetinfo'),
      'the network still gets its Downward-API volume',
    );
    await waitRunning('dra-claimer');
    assert.equal((await getPod('dra-claimer')).status.extendedResourceClaimStatus, undefined);
    assert.equal((await claimsOf('dra-claimer')).length, 1);
    assert.equal(await allocatedDevices('dra-claimer'), 1, 'one device for the one claim');
    process.stdout.write(
      `# DRA: a claiming pod with the resource added as today: ${await allocatedDevices('dra-doubled')} devices; with nri's rule: ${await allocatedDevices('dra-claimer')}\n`,
    );
    await deleteNow('pod', 'dra-claimer', 'dra-doubled');
    await deleteNow('resourceclaimtemplate', 'one-vf');
    await deleteNow('net-attach-def', 'dra-vf');
  });

  it('beside the upstream injector on the same pods, in either order, reinvoked: resources counted once, one podnetinfo volume', {
    skip: missingUpstream() ?? false,
  }, async () => {
    const nriName = find(objects, 'MutatingWebhookConfiguration').metadata.name;
    const upstream = await startUpstream(cp, {
      cert: join(deployment.volume.dir, 'tls.crt'),
      key: join(deployment.volume.dir, 'tls.key'),
    });
    const original = await cp.getJson(['mutatingwebhookconfiguration', nriName]);
    const strip = (object: any) => {
      const {
        resourceVersion: _rv,
        uid: _uid,
        creationTimestamp: _ct,
        managedFields: _mf,
        generation: _g,
        ...metadata
      } = object.metadata;
      return { ...object, metadata };
    };
    const reinvoked = (object: any, name: string, url?: string) => ({
      ...strip(object),
      metadata: { ...strip(object).metadata, name },
      webhooks: object.webhooks.map((webhook: any) => ({
        ...webhook,
        reinvocationPolicy: 'IfNeeded',
        ...(url
          ? { name: 'upstream.network-resources-injector.example.com', clientConfig: { ...webhook.clientConfig, url } }
          : {}),
      })),
    });
    try {
      await cp.must(['replace', '-f', '-'], JSON.stringify(reinvoked(original, nriName)));
      // kube-apiserver calls mutating webhooks in the order of their configurations' names.
      for (const name of ['a-upstream-injector', 'z-upstream-injector']) {
        await cp.must(['create', '-f', '-'], JSON.stringify(reinvoked(original, name, upstream.url)));
        await new Promise((resolve) => setTimeout(resolve, 3000)); // the apiserver's webhook informer
        const pod = `coexist-${name[0]}`;
        const created = await create(podObject(pod, { 'k8s.v1.cni.cncf.io/networks': 'sriov-a, sriov-a' }));
        assert.equal(created.code, 0, created.stderr);
        const spec = (await getPod(pod)).spec;
        assert.deepEqual(spec.containers[0].resources.limits, { 'intel.com/sriov_a': '2' }, `${name}: counted once`);
        assert.deepEqual(spec.containers[0].resources.requests, { 'intel.com/sriov_a': '2' }, name);
        assert.equal(spec.volumes.filter((volume: any) => volume.name === 'podnetinfo').length, 1, name);
        assert.equal(
          spec.containers[0].volumeMounts.filter((mount: any) => mount.name === 'podnetinfo').length,
          1,
          name,
        );
        await deleteNow('pod', pod);
        await cp.must(['delete', 'mutatingwebhookconfiguration', name]);
      }
    } finally {
      await cp.kubectl([
        'delete',
        'mutatingwebhookconfiguration',
        'a-upstream-injector',
        'z-upstream-injector',
        '--ignore-not-found',
      ]);
      await cp.must(['replace', '-f', '-'], JSON.stringify(strip(original)));
      await upstream.stop();
    }
  });

  it('a KubeVirt virt-launcher-shaped pod: resources go to the compute container, listed first', async () => {
    const launcher = podObject(
      'virt-launcher-vmi-abcde',
      {
        'k8s.v1.cni.cncf.io/networks':
          '[{"interface":"pod16367aacb67","mac":"02:00:00:00:00:01","name":"sriov-a","namespace":"default"}]',
        'kubevirt.io/domain': 'vmi',
        'kubectl.kubernetes.io/default-container': 'compute',
      },
      {
        containers: [
          {
            name: 'compute',
            image: 'quay.io/kubevirt/virt-launcher',
            resources: { requests: { cpu: '100m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } },
          },
          { name: 'volumecontainerdisk', image: 'quay.io/containerdisks/fedora' },
        ],
        automountServiceAccountToken: false,
      },
      { labels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': 'vmi' } },
    );
    assert.equal((await create(launcher)).code, 0);
    const pod = await getPod('virt-launcher-vmi-abcde');
    assert.deepEqual(pod.spec.containers[0].resources.requests, {
      cpu: '100m',
      memory: '1Gi',
      'intel.com/sriov_a': '1',
    });
    assert.equal(pod.spec.containers[1].resources.requests, undefined);
    await waitRunning('virt-launcher-vmi-abcde');
    await deleteNow('pod', 'virt-launcher-vmi-abcde');
  });

  it('the control-switch ConfigMap is read through RBAC limited to its name: hugepages, CONTAINER_NAME, user-defined injections, honour mode', async () => {
    const sa = `system:serviceaccount:${deployment.namespace}:nri`;
    assert.equal(
      (await cp.kubectl(['auth', 'can-i', 'list', 'configmaps', '-n', deployment.namespace, '--as', sa])).stdout.trim(),
      'no',
    );
    await apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'nri-control-switches', namespace: deployment.namespace },
      data: {
        // Shaped as upstream's own e2e suite writes it: keys nri does not know are ignored.
        'config.json': JSON.stringify({
          networkResourceNameKeys: ['k8s.v1.cni.cncf.io/resourceName'],
          features: { enableHugePageDownApi: true, enableCustomizedInjection: true, enableResourceName: true },
          'user-defined-injections': {
            'feature.pod.kubernetes.io/sriov-network': {
              op: 'add',
              path: '/metadata/annotations',
              value: { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' },
            },
          },
        }),
      },
    });
    await cp.waitFor(
      'switches applied',
      async () => metricValue(await metrics(), 'nri_control_switches_configmap_applied') === 1,
    );
    const huge = podObject(
      'huge',
      { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' },
      {
        containers: [
          {
            name: 'dpdk',
            image: 'busybox',
            resources: {
              requests: { 'hugepages-1Gi': '2Gi', memory: '1Gi', cpu: '1' },
              limits: { 'hugepages-1Gi': '2Gi', memory: '1Gi', cpu: '1' },
            },
          },
        ],
      },
    );
    assert.equal((await create(huge)).code, 0);
    const stored = await getPod('huge');
    const items = stored.spec.volumes.find((v: any) => v.name === 'podnetinfo').downwardAPI.items;
    assert.ok(
      items.some(
        (item: any) =>
          item.path === 'hugepages_1G_request_dpdk' && item.resourceFieldRef.resource === 'requests.hugepages-1Gi',
      ),
    );
    assert.deepEqual(stored.spec.containers[0].env, [{ name: 'CONTAINER_NAME', value: 'dpdk' }]);

    await nri.waitForLog(
      /ignored keys nri does not know: networkResourceNameKeys, features\.enableCustomizedInjection, features\.enableResourceName/,
    );
    // As upstream: the configured value replaces the pod's own (here a NAD that does not even exist).
    const labelled = podObject(
      'labelled',
      { 'k8s.v1.cni.cncf.io/networks': 'foo-network' },
      {},
      { labels: { 'feature.pod.kubernetes.io/sriov-network': 'true' } },
    );
    const admitted = await create(labelled);
    assert.equal(admitted.code, 0, admitted.stderr);
    const injected = await getPod('labelled');
    assert.equal(injected.metadata.annotations['k8s.v1.cni.cncf.io/networks'], 'sriov-a');
    assert.deepEqual(injected.spec.containers[0].resources.requests, { 'intel.com/sriov_a': '1' });

    // A resource the user set stands as set (default mode); honour mode adds to it instead.
    const own = podObject(
      'own-resource',
      { 'k8s.v1.cni.cncf.io/networks': 'sriov-a, sriov-a' },
      {
        containers: [
          {
            name: 'app',
            image: 'busybox',
            resources: { requests: { 'intel.com/sriov_a': '1' }, limits: { 'intel.com/sriov_a': '1' } },
          },
        ],
      },
    );
    assert.equal((await create(own)).code, 0);
    assert.deepEqual((await getPod('own-resource')).spec.containers[0].resources.limits, { 'intel.com/sriov_a': '1' });
    await apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'nri-control-switches', namespace: deployment.namespace },
      data: { 'config.json': JSON.stringify({ features: { enableHonorExistingResources: true } }) },
    });
    await nri.waitForLog(/"honorExistingResources":true.*nri-control-switches applied/);
    const honoured = { ...own, metadata: { ...own.metadata, name: 'honoured' } };
    assert.equal((await create(honoured)).code, 0);
    assert.deepEqual((await getPod('honoured')).spec.containers[0].resources.limits, { 'intel.com/sriov_a': '3' });

    await cp.must(['delete', 'configmap', 'nri-control-switches', '-n', deployment.namespace]);
    await cp.waitFor(
      'switches reverted',
      async () => metricValue(await metrics(), 'nri_control_switches_configmap_applied') === 0,
    );
    await deleteNow('pod', 'huge', 'labelled', 'own-resource', 'honoured');
  });

  it('a ~/.kube/config, even one for a reachable cluster, is not used unless KUBECONFIG names it', async () => {
    const home = mkdtempSync(join(tmpdir(), 'nri-e2e-home-'));
    mkdirSync(join(home, '.kube'));
    copyFileSync(cp.adminKubeconfig, join(home, '.kube', 'config'));
    const local = await startFunction({ HOME: home });
    try {
      assert.match(await local.waitForLog(/nri starting/), /without a cluster: NADs come from files/);
      assert.equal((await send(`${local.url}/readyz`)).status, 200);
    } finally {
      await local.stop();
    }
  });

  it('a replica whose NAD cache cannot sync (no RBAC) is not ready, and says why', async () => {
    const unbound = await startNri(
      cp,
      deployment,
      { NRI_TLS_PORT: String(await freePort()) },
      { serviceAccount: 'default' },
    );
    try {
      await unbound.waitForLog(/cannot list\/watch NetworkAttachmentDefinitions|NAD watch restarting/, 20000);
      const ready = await send(`${unbound.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.json.message, /has not synced yet.*403/);
    } finally {
      await unbound.stop();
    }
  });

  it('an overlay with namespace: and follow-namespace installs consistently: its service account may read what nri reads', async () => {
    const overlay = render('examples/overlays/webhooks');
    const namespace = find(overlay, 'ServiceAccount').metadata.namespace!;
    const cluster = ['ClusterRole', 'ClusterRoleBinding'];
    try {
      // A namespace that exists before nri: the overlay ships no Namespace object to take it over.
      assert.equal(
        overlay.find((object) => object.kind === 'Namespace'),
        undefined,
      );
      await cp.must(['create', 'namespace', namespace]);
      // Everything, as the apiserver validates it (the webhook under another name: the installed
      // one carries the suite's URL); for real what RBAC needs (not a second webhook).
      const hook = find(overlay, 'MutatingWebhookConfiguration');
      await cp.must(
        ['apply', '--server-side', '--dry-run=server', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: overlay.filter((o) => o !== hook && !cluster.includes(o.kind)),
        }),
      );
      await cp.must(
        ['create', '--dry-run=server', '-f', '-'],
        JSON.stringify({ ...hook, metadata: { ...hook.metadata, name: `${hook.metadata.name}-dry-run` } }),
      );
      await apply({
        apiVersion: 'v1',
        kind: 'List',
        items: overlay.filter((o) => ['ServiceAccount', 'Role', 'RoleBinding', ...cluster].includes(o.kind)),
      });
      const as = `system:serviceaccount:${namespace}:nri`;
      const can = async (...args: string[]) => (await cp.kubectl(['auth', 'can-i', ...args, '--as', as])).stdout.trim();
      assert.equal(await can('watch', 'network-attachment-definitions.k8s.cni.cncf.io', '--all-namespaces'), 'yes');
      assert.equal(await can('get', 'configmaps/nri-control-switches', '-n', namespace), 'yes');
      assert.equal(await can('get', 'secrets', '-n', namespace), 'no');
    } finally {
      // The ClusterRoleBinding has one name for every install: give it back to the base's service account.
      await apply({ apiVersion: 'v1', kind: 'List', items: objects.filter((o) => cluster.includes(o.kind)) });
      await deleteNow('namespace', namespace);
    }
  });

  it('API errors through real RBAC: without its ClusterRoleBinding nri denies with the 403, and recovers', async () => {
    const binding = find(objects, 'ClusterRoleBinding', 'nri-network-attachment-definition-reader');
    await cp.must(['delete', 'clusterrolebinding', binding.metadata.name]);
    const denied = await create(podObject('forbidden', { 'k8s.v1.cni.cncf.io/networks': 'not-cached-yet' }));
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /default\/not-cached-yet could not be read: the API server answered 403/);
    assert.ok(
      metricValue(await metrics(), 'nri_kubernetes_api_errors_total', 'operation="get_nad",kind="forbidden"') >= 1,
      await metrics(),
    );
    await apply(binding);
    await apply(nadObject('not-cached-yet', { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov_a' }));
    await cp.waitFor(
      'the NAD to be admitted',
      async () =>
        (await create(podObject('forbidden', { 'k8s.v1.cni.cncf.io/networks': 'not-cached-yet' }))).code === 0,
    );
    await deleteNow('pod', 'forbidden');
  });

  it('kube-apiserver restarted under nri: the watch comes back through a real 410 and new NADs are seen', async () => {
    const restarts = (text: string, cause: string) =>
      metricValue(text, 'nri_watch_restarts_total', `resource="network-attachment-definitions",cause="${cause}"`);
    const gone = restarts(await metrics(), 'gone');
    // A write nri does not watch moves etcd past the resourceVersion nri last saw; the restarted
    // apiserver's watch cache starts after it, so nri's re-watch is answered 410 Gone and it re-lists.
    await apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'advance-resource-version', namespace: 'default' },
      data: { at: String(Date.now()) },
    });
    await cp.stopProcess('kube-apiserver');
    await cp.startApiServer();
    await apply(nadObject('after-restart', { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov_a' }));
    const readsBefore = metricValue(await metrics(), 'nri_nad_api_reads_total');
    await cp.waitFor(
      'nri to re-list after a 410 and see the new NAD through its watch',
      async () => {
        const text = await metrics();
        return (
          restarts(text, 'gone') > gone &&
          metricValue(text, 'nri_nad_cache_synced') === 1 &&
          metricValue(text, 'nri_nad_cache_objects') >= 4
        );
      },
      60000,
    );
    assert.equal(
      (await create(podObject('after-restart', { 'k8s.v1.cni.cncf.io/networks': 'after-restart' }))).code,
      0,
    );
    assert.deepEqual((await getPod('after-restart')).spec.containers[0].resources.limits, { 'intel.com/sriov_a': '1' });
    assert.equal(
      metricValue(await metrics(), 'nri_nad_api_reads_total'),
      readsBefore,
      'the pod was decided from the watch cache',
    );
    await deleteNow('pod', 'after-restart');
    await deleteNow('configmap', 'advance-resource-version');
  });

  it('certificate renewal is live: the kubelet swaps ..data and nri serves the new certificate without a restart', async () => {
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(
          { host: '127.0.0.1', port: deployment.tlsPort, ca: cp.pki.caPem, servername: 'nri-webhook.nri.svc' },
          () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.end();
          },
        );
        socket.on('error', reject);
      });
    const first = await served();
    await issueServingSecret(cp, objects, 2);
    await syncVolume(cp, deployment);
    await nri.waitForLog(/serving certificate reloaded/, 20000);
    assert.notEqual(await served(), first);
    assert.equal((await create(podObject('after-renewal', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' }))).code, 0);
    await deleteNow('pod', 'after-renewal');
  });

  it('webhook down: failurePolicy Fail refuses pods that select networks, others are created; back up, all admitted', async () => {
    await nri.stop();
    const refused = await create(podObject('while-down', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' }));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /failed calling webhook "network-resources-injector\.k8s\.cni\.cncf\.io"/);
    assert.equal(
      (await create(podObject('plain-while-down', {}))).code,
      0,
      'matchConditions keep other pods away from the webhook',
    );
    nri = await startNri(cp, deployment);
    await cp.waitFor('nri ready again', async () => (await send(`${nri.url}/readyz`)).status === 200, 30000);
    assert.equal((await create(podObject('while-down', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' }))).code, 0);
    assert.deepEqual((await getPod('while-down')).spec.containers[0].resources.limits, { 'intel.com/sriov_a': '1' });
    await deleteNow('pod', 'while-down', 'plain-while-down');
  });

  it("README's Uninstall block, as written: the webhook first, then everything the overlay made", async () => {
    await nri?.stop();
    const output = execFileSync('bash', ['-e', '-o', 'pipefail', '-c', readmeCommand('uninstall')], {
      cwd: writeInstallOverlay(),
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: cp.adminKubeconfig },
    });
    assert.match(output, /mutatingwebhookconfiguration.* "nri-network-resources-injector" deleted/);
    assert.match(output, /namespace "nri" deleted/);
    assert.notEqual(
      (await cp.kubectl(['get', 'mutatingwebhookconfiguration', 'nri-network-resources-injector'])).code,
      0,
    );
    assert.equal(
      (await create(podObject('after-uninstall', { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' }))).code,
      0,
      'pods are created without the webhook',
    );
  });
});
