// nri on a real node: its image, built from knative/Dockerfile and pulled from the local registry,
// run by the kubelet, containerd and runc beside Knative's real queue-proxy, reached by
// kube-apiserver through kube-proxy; and the seed walkthrough's pod, which gets its devices from a
// device plugin and its interfaces from Multus. Runs against the environment up.sh made, inside
// its network namespace (run.sh).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../support/fixtures.js';
import { attachRealNode, NODE_NAME, NRI_NAMESPACE, NRI_PODS, REGISTRY, TEST_IMAGE } from './node.js';

const cp = attachRealNode();
const NAMESPACE = NRI_NAMESPACE;
const condition = (object: any, type: string) => object?.status?.conditions?.find((c: any) => c.type === type)?.status;

const nriPods = async () =>
  (await cp.getJson(['pods', '-n', NAMESPACE, '-l', NRI_PODS])).items.filter(
    (pod: any) => !pod.metadata.deletionTimestamp,
  );
const exec = (pod: string, command: string, namespace = 'default', container?: string) =>
  cp.must(['exec', '-n', namespace, pod, ...(container ? ['-c', container] : []), '--', 'sh', '-c', command]);

/** The certificate nri-webhook serves, as kube-apiserver sees it: through the Service's ClusterIP and kube-proxy. */
async function servedCertificate(clusterIp: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: clusterIp, port: 443, servername: 'nri-webhook.nri.svc', rejectUnauthorized: false },
      () => {
        resolve(new X509Certificate(socket.getPeerCertificate(true).raw));
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

describe('nri on a real node', () => {
  before(async () => {
    await cp.must(['apply', '-f', fileURLToPath(new URL('examples/nads/foo-network.yaml', repoRoot))]);
  });

  after(async () => {
    await cp.kubectl(['delete', 'pod', 'walkthrough', '-n', 'default', '--ignore-not-found', '--wait=false']);
  });

  it("runs nri's image from the local registry, resolved to a digest by Knative, beside Knative's queue-proxy", async () => {
    const revision = (await cp.getJson(['revisions', '-n', NAMESPACE])).items[0];
    const digest = revision.status.containerStatuses.find((s: any) => s.name === 'nri').imageDigest as string;
    const manifest = await fetch(`http://${REGISTRY}/v2/nri/manifests/0.1.0`, {
      method: 'HEAD',
      headers: {
        accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    assert.equal(digest, `${REGISTRY}/nri@${manifest.headers.get('docker-content-digest')}`);
    const pods = await nriPods();
    assert.ok(pods.length >= 2, `${pods.length} nri pods`);
    for (const pod of pods) {
      assert.equal(pod.spec.nodeName, NODE_NAME);
      const images = Object.fromEntries(pod.status.containerStatuses.map((s: any) => [s.name, s]));
      assert.equal(images.nri.imageID, `${REGISTRY}/nri@${manifest.headers.get('docker-content-digest')}`);
      assert.match(images['queue-proxy'].image, /nri-e2e\/queue-proxy:v0\.42\.2$/);
      assert.ok(
        images.nri.ready && images['queue-proxy'].ready,
        'both containers ready: the kubelet probes queue-proxy, which probes nri',
      );
    }
  });

  it('runs as uid 65532 with a read-only root filesystem and no capabilities, as runc enforces them', async () => {
    const [pod] = await nriPods();
    const report = await exec(
      pod.metadata.name,
      'id -u; id -g; grep -E "^Cap(Eff|Prm|Bnd):" /proc/1/status; touch /app/x 2>&1 || true; touch /tmp/x 2>&1 || true',
      NAMESPACE,
      'nri',
    );
    const lines = report.trim().split('\n');
    assert.equal(lines[0], '65532');
    assert.equal(lines[1], '65532');
    for (const cap of lines.filter((line) => line.startsWith('Cap'))) assert.match(cap, /:\s+0{16}$/, cap);
    assert.match(report, /touch: \/app\/x: Read-only file system/);
    assert.match(report, /touch: \/tmp\/x: Read-only file system/);
  });

  it('kube-apiserver reaches nri through the ClusterIP Service nri-webhook and kube-proxy, with the certificate from the Secret volume', async () => {
    const service = await cp.getJson(['service', 'nri-webhook', '-n', NAMESPACE]);
    assert.equal(service.spec.type, 'ClusterIP');
    const served = await servedCertificate(service.spec.clusterIP);
    const secret = await cp.getJson(['secret', 'nri-webhook-tls', '-n', NAMESPACE]);
    const issued = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    assert.equal(served.serialNumber, issued.serialNumber);
    assert.ok(served.checkHost('nri-webhook.nri.svc'));
  });

  it('the seed walkthrough: foo-network twice gets example.com/foo: 2, two devices, net1 and net2, and /etc/podnetinfo', async () => {
    await cp.must(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'walkthrough',
          namespace: 'default',
          labels: { app: 'walkthrough' },
          annotations: { 'k8s.v1.cni.cncf.io/networks': 'foo-network, foo-network' },
        },
        spec: {
          containers: [{ name: 'app', image: TEST_IMAGE, command: ['sleep', '3600'] }],
          terminationGracePeriodSeconds: 1,
        },
      }),
    );
    const pod = await cp.getJson(['pod', 'walkthrough', '-n', 'default']);
    assert.deepEqual(pod.spec.containers[0].resources, {
      limits: { 'example.com/foo': '2' },
      requests: { 'example.com/foo': '2' },
    });
    await cp.waitFor(
      'the walkthrough pod to run',
      async () => condition(await cp.getJson(['pod', 'walkthrough', '-n', 'default']), 'Ready') === 'True',
      90000,
    );
    const devices = (await exec('walkthrough', 'echo $NRI_DEVICES_EXAMPLE_COM_FOO')).trim().split(',');
    assert.equal(devices.length, 2, `devices allocated by the kubelet: ${devices}`);
    const links = await exec('walkthrough', 'ip -o link show');
    assert.match(links, /: net1@/);
    assert.match(links, /: net2@/);
    const status = JSON.parse(
      (await cp.getJson(['pod', 'walkthrough', '-n', 'default'])).metadata.annotations[
        'k8s.v1.cni.cncf.io/network-status'
      ],
    );
    assert.deepEqual(
      status.map((network: any) => network.interface),
      ['eth0', 'net1', 'net2'],
    );
    const labels = await exec('walkthrough', 'cat /etc/podnetinfo/labels');
    assert.match(labels, /app="walkthrough"/);
    const annotations = await exec('walkthrough', 'cat /etc/podnetinfo/annotations');
    assert.match(annotations, /k8s\.v1\.cni\.cncf\.io\/networks="foo-network, foo-network"/);
  });

  it('with hugepages on, a container with 2 MiB hugepages reads its hugepage files and CONTAINER_NAME', async () => {
    const switches = readFileSync(fileURLToPath(new URL('examples/control-switches.yaml', repoRoot)), 'utf8').replace(
      '"enableHugePageDownApi": false',
      '"enableHugePageDownApi": true',
    );
    await cp.must(['apply', '-n', NAMESPACE, '-f', '-'], switches);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'hugepages',
        namespace: 'default',
        annotations: { 'k8s.v1.cni.cncf.io/networks': 'foo-network' },
      },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'app',
            image: TEST_IMAGE,
            command: ['sleep', '3600'],
            resources: {
              requests: { memory: '32Mi', 'hugepages-2Mi': '4Mi' },
              limits: { memory: '32Mi', 'hugepages-2Mi': '4Mi' },
            },
          },
        ],
      },
    };
    // Both replicas follow the ConfigMap through their watch: dry runs until the files are added.
    await cp.waitFor(
      'the switch to be in force',
      async () => {
        const patched = JSON.parse(
          await cp.must(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(pod)),
        );
        return patched.spec.volumes.some((v: any) =>
          v.downwardAPI?.items.some((item: any) => item.path === 'hugepages_2M_request_app'),
        );
      },
      30000,
    );
    try {
      await cp.must(['apply', '-f', '-'], JSON.stringify(pod));
      await cp.waitFor(
        'the hugepages pod to run',
        async () => condition(await cp.getJson(['pod', 'hugepages', '-n', 'default']), 'Ready') === 'True',
        90000,
      );
      const files = await exec(
        'hugepages',
        'cd /etc/podnetinfo && for f in hugepages_*; do echo "$f=$(cat $f)"; done; echo "CONTAINER_NAME=$CONTAINER_NAME"',
      );
      assert.match(files, /^hugepages_2M_request_app=4$/m);
      assert.match(files, /^hugepages_2M_limit_app=4$/m);
      assert.match(files, /^CONTAINER_NAME=app$/m);
    } finally {
      await cp.kubectl(['delete', 'pod', 'hugepages', '-n', 'default', '--wait=false']);
      await cp.kubectl(['delete', 'configmap', 'nri-control-switches', '-n', NAMESPACE]);
    }
  });

  it('nri check, from outside and in the image, as an account bound only to nri-check: through the service proxy to a real replica; NADs no node offers fail, a DeviceClass offering them heals it', async () => {
    await cp.must(['apply', '-f', fileURLToPath(new URL('knative/check-rbac.yaml', repoRoot))]);
    await cp.kubectl(['create', 'serviceaccount', 'checker', '-n', NAMESPACE]);
    await cp.kubectl([
      'create',
      'clusterrolebinding',
      'nri-check-checker',
      '--clusterrole=nri-check',
      `--serviceaccount=${NAMESPACE}:checker`,
    ]);
    const service = await cp.getJson(['service', 'nri-webhook', '-n', NAMESPACE]);
    const served = await servedCertificate(service.spec.clusterIP);
    const revision = (await cp.getJson(['ksvc', 'nri', '-n', NAMESPACE])).status.latestReadyRevisionName as string;
    const token = (await cp.must(['create', 'token', 'checker', '-n', NAMESPACE, '--duration=1h'])).trim();
    const kubeconfig = cp.writeKubeconfig('checker.kubeconfig', { token });
    const nriCheck = (...args: string[]) => {
      const started = Date.now();
      const run = spawnSync(fileURLToPath(new URL('bin/nri', repoRoot)), ['check', ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: process.env.HOME, KUBECONFIG: kubeconfig },
      });
      process.stderr.write(
        `# nri check ${args.join(' ')} on the real node (exit ${run.status}, ${Date.now() - started} ms):\n${run.stdout.replace(/^/gm, '#   ')}\n`,
      );
      return run;
    };
    const statuses = (report: any) => Object.fromEntries(report.checks.map((check: any) => [check.name, check.status]));
    const expectServed = (report: any, where: string) => {
      const byName = Object.fromEntries(report.checks.map((check: any) => [check.name, check]));
      assert.match(byName.certificate.details.join('\n'), new RegExp(`serial ${served.serialNumber}`), where);
      assert.match(byName.replicas.summary, /^[2-9] replicas ready behind Service nri\/nri-webhook/, where);
      assert.ok(
        byName.replicas.details.includes(`Knative Service nri/nri routes 100% to ${revision}`),
        byName.replicas.details.join('\n'),
      );
      assert.match(byName.pods.details.join('\n'), /settings from the Knative Service’s environment/);
    };
    // Whatever NADs the cluster holds (the memory suite leaves 100,000 naming 16 SR-IOV pools no
    // node here offers): each resource no node offers is named; offering it heals the check.
    const resources = new Set<string>();
    const named = await cp.must([
      'get',
      'net-attach-def',
      '-A',
      '-o',
      'jsonpath={range .items[*]}{.metadata.annotations.k8s\\.v1\\.cni\\.cncf\\.io/resourceName}{"\\n"}{end}',
    ]);
    for (const resource of named.split('\n')) if (resource && resource !== 'example.com/foo') resources.add(resource);
    const classes = [...resources].map((resource, index) => ({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: { name: `nri-check-${index}` },
      spec: { extendedResourceName: resource },
    }));
    const withUnoffered = nriCheck('-o', 'json');
    const unoffered = JSON.parse(withUnoffered.stdout);
    if (resources.size > 0) {
      assert.equal(withUnoffered.status, 1);
      assert.deepEqual(statuses(unoffered), {
        webhook: 'ok',
        certificate: 'ok',
        replicas: 'ok',
        resources: 'fail',
        pods: 'ok',
        injectors: 'ok',
      });
      const details = unoffered.checks.find((check: any) => check.name === 'resources').details.join('\n');
      for (const resource of resources) assert.match(details, new RegExp(`^${resource}: no node offers it`, 'm'));
    }
    expectServed(unoffered, 'with unoffered resources');
    try {
      if (classes.length > 0)
        await cp.must(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: classes }));
      const healthy = nriCheck('-o', 'json');
      assert.equal(healthy.status, 0, healthy.stdout + healthy.stderr);
      assert.ok(Object.values(statuses(JSON.parse(healthy.stdout))).every((status) => status === 'ok'));
      expectServed(JSON.parse(healthy.stdout), 'healthy');
      assert.equal(nriCheck().status, 0);

      // In the image: a pod of nri's own image, run as the bound account (its in-cluster credentials).
      const image = (await cp.getJson(['revision', revision, '-n', NAMESPACE])).status.containerStatuses.find(
        (status: any) => status.name === 'nri',
      ).imageDigest as string;
      await cp.must(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'nri-check', namespace: NAMESPACE, labels: { 'app.kubernetes.io/name': 'nri-check' } },
          spec: {
            serviceAccountName: 'checker',
            restartPolicy: 'Never',
            containers: [{ name: 'check', image, command: ['nri', 'check', '-o', 'json'] }],
            terminationGracePeriodSeconds: 1,
          },
        }),
      );
      await cp.waitFor(
        'the nri-check pod to finish',
        async () =>
          ['Succeeded', 'Failed'].includes((await cp.getJson(['pod', 'nri-check', '-n', NAMESPACE])).status.phase),
        120000,
      );
      const inImage = JSON.parse(await cp.must(['logs', 'nri-check', '-n', NAMESPACE]));
      assert.equal(inImage.exitStatus, 0, JSON.stringify(inImage.checks, null, 1));
      expectServed(inImage, 'in the image');
      assert.equal((await cp.getJson(['pod', 'nri-check', '-n', NAMESPACE])).status.phase, 'Succeeded');
    } finally {
      await cp.kubectl(['delete', 'pod', 'nri-check', '-n', NAMESPACE, '--wait=false']);
      for (const deviceClass of classes) await cp.kubectl(['delete', 'deviceclass', deviceClass.metadata.name]);
    }
  });

  it('picks up a renewed certificate from the Secret volume the kubelet updates', async () => {
    const service = await cp.getJson(['service', 'nri-webhook', '-n', NAMESPACE]);
    const before = await servedCertificate(service.spec.clusterIP);
    // cert-manager issues a new certificate when its Secret goes; the kubelet swaps the volume's files.
    await cp.must(['delete', 'secret', 'nri-webhook-tls', '-n', NAMESPACE]);
    // Served serials, sampled together: done when every sample is one serial, not the old one.
    let served = new Set<string>([before.serialNumber]);
    await cp.waitFor(
      'every replica to serve the new certificate',
      async () => {
        const sample = new Set<string>();
        for (let i = 0; i < 6; i++) sample.add((await servedCertificate(service.spec.clusterIP)).serialNumber);
        served = sample;
        return sample.size === 1 && !sample.has(before.serialNumber);
      },
      150000,
    );
    assert.ok(
      !served.has(before.serialNumber) && served.size === 1,
      `served ${[...served]} after ${before.serialNumber}`,
    );
  });
});
