// `nri check` against a real control plane (kube-apiserver 1.36 + etcd + controller-manager +
// scheduler + a kwok node, cert-manager's cainjector), run as a user runs it (bin/nri) with a
// ServiceAccount token bound to nothing but knative/check-rbac.yaml. Each check is healthy first,
// then made to fail the way clusters fail, and where kube-apiserver has a verdict of its own (it
// refuses to call a webhook it cannot verify) the check agrees with it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPki } from '../support/certs.js';
import { repoRoot } from '../support/fixtures.js';
import { readmeCommand } from '../support/readme.js';
import { send, type RunningFunction } from '../support/function-process.js';
import { ControlPlane, missingControlPlane } from './support/control-plane.js';
import {
  deployWithCertificate,
  issueServingSecret,
  startCainjector,
  startNri,
  syncVolume,
  type Deployment,
  type KubeObject,
} from './support/deploy.js';

const missing = missingControlPlane();
if (missing && process.env.CI === 'true')
  throw new Error(`e2e: the control plane is required under CI=true; ${missing}`);

const NODE = 'kwok-check-node';
const NETWORKS = 'k8s.v1.cni.cncf.io/networks';

interface CheckRun {
  status: number | null;
  stdout: string;
  stderr: string;
  json: { checks: Array<{ name: string; status: string; summary: string; details: string[] }>; exitStatus: number };
}

describe('nri check on a real control plane', { skip: missing ? `e2e skipped: ${missing}` : false }, () => {
  const cp = new ControlPlane();
  let objects: KubeObject[];
  let deployment: Deployment;
  let webhookName: string;
  let nri: RunningFunction;
  let stopCainjector = () => {};
  let kubeconfig: string;

  /** bin/nri check, as the user bound to nri-check; -o json and text from the same cluster state */
  async function nriCheck(...args: string[]): Promise<CheckRun> {
    const runOnce = (extra: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(fileURLToPath(new URL('bin/nri', repoRoot)), ['check', ...args, ...extra], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, KUBECONFIG: kubeconfig },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => (stdout += chunk));
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const json = await runOnce(['-o', 'json']);
    const text = await runOnce([]);
    assert.equal(text.status, json.status, 'text and json agree on the exit status');
    process.stderr.write(
      `# nri check ${args.join(' ')} (exit ${text.status}):\n${text.stdout.replace(/^/gm, '#   ')}\n`,
    );
    return { ...text, json: JSON.parse(json.stdout) };
  }
  const checkOf = (run: CheckRun, name: string) => {
    const found = run.json.checks.find((check) => check.name === name);
    assert.ok(found, `a ${name} check`);
    return found;
  };
  const createPod = (name: string, annotations: Record<string, string>) =>
    cp.kubectl(
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default', annotations },
        spec: { containers: [{ name: 'app', image: 'busybox' }] },
      }),
    );
  const patchStatus = (op: string, path: string, value?: string) =>
    cp.must([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=json',
      '-p',
      JSON.stringify([{ op, path, ...(value === undefined ? {} : { value }) }]),
    ]);
  const nad = (name: string, resource: string) => ({
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: { name, namespace: 'default', annotations: { 'k8s.v1.cni.cncf.io/resourceName': resource } },
    spec: { config: JSON.stringify({ cniVersion: '0.3.1', name, type: 'macvlan' }) },
  });

  /** The Secret's files laid out as the kubelet would, and nri's log saying it serves that very certificate. */
  async function servedFromSecret(): Promise<void> {
    await syncVolume(cp, deployment);
    const secret = await cp.getJson(['secret', 'nri-webhook-tls', '-n', deployment.namespace]);
    const notAfter = new Date(new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64')).validTo);
    await nri.waitForLog(new RegExp(`"notAfter":"${notAfter.toISOString()}".*serving certificate reloaded`), 20000);
  }

  before(async () => {
    await cp.start();
    ({ objects, deployment, webhookName, stopCainjector } = await deployWithCertificate(cp));
    await cp.must(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: NODE, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { type: 'kwok' } },
        spec: {},
      }),
    );
    await cp.waitFor(
      'the kwok node to be Ready',
      async () =>
        (await cp.getJson(['node', NODE])).status?.conditions?.some(
          (c: any) => c.type === 'Ready' && c.status === 'True',
        ),
      60000,
    );
    await patchStatus('add', '/status/capacity/intel.com~1sriov_a', '4');
    await patchStatus('add', '/status/allocatable/intel.com~1sriov_a', '4');
    await cp.must(['apply', '-f', '-'], JSON.stringify(nad('sriov-a', 'intel.com/sriov_a')));
    nri = await startNri(cp, deployment);
    await cp.waitFor('nri ready', async () => (await send(`${nri.url}/readyz`)).status === 200, 30000);
    await cp.must(['create', 'serviceaccount', 'checker', '-n', 'default']);
    const token = (await cp.must(['create', 'token', 'checker', '-n', 'default', '--duration=1h'])).trim();
    kubeconfig = cp.writeKubeconfig('checker.kubeconfig', { token });
  });

  after(async () => {
    stopCainjector();
    await nri?.stop();
    await cp.stop();
  });

  it("README's block, as written (as the admin): it applies the ClusterRole, and the check finds nri healthy", () => {
    const output = execFileSync('bash', ['-e', '-o', 'pipefail', '-c', readmeCommand('check')], {
      cwd: fileURLToPath(repoRoot),
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: cp.adminKubeconfig },
    });
    assert.match(output, /clusterrole\.rbac\.authorization\.k8s\.io\/nri-check created/);
    assert.match(output, /^healthy: 0 failed/m);
  });

  it('healthy, as an account bound only to nri-check: every check passes, exit 0; a pod nri injected is not reported', async () => {
    await cp.must([
      'create',
      'clusterrolebinding',
      'nri-check-checker',
      '--clusterrole=nri-check',
      '--serviceaccount=default:checker',
    ]);
    assert.equal((await createPod('injected', { [NETWORKS]: 'sriov-a' })).code, 0);
    // The serving certificate here lives 2 days: --warn-days 1 keeps that from being a warning.
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.deepEqual(
      run.json.checks.map((check) => [check.name, check.status]),
      [
        ['webhook', 'ok'],
        ['certificate', 'ok'],
        ['replicas', 'skip'], // registered here by URL, not by Service: the real-node suite counts replicas
        ['resources', 'ok'],
        ['pods', 'ok'],
        ['injectors', 'ok'],
      ],
    );
    assert.match(checkOf(run, 'pods').summary, /^1 pod with networks the webhook sees/);
    assert.match(run.stdout, /^healthy: 0 failed/m);
  });

  it('a certificate near its end is a warning, exit 0', async () => {
    const run = await nriCheck();
    assert.equal(run.status, 0);
    assert.equal(checkOf(run, 'certificate').status, 'warn');
    assert.match(checkOf(run, 'certificate').summary, /expires in 1 day;/);
  });

  it('a NAD naming a resource no node offers fails, exit 1, until a node offers it', async () => {
    await cp.must(['apply', '-f', '-'], JSON.stringify(nad('ghost-net', 'example.com/ghost')));
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 1);
    const resources = checkOf(run, 'resources');
    assert.equal(resources.status, 'fail');
    assert.match(resources.details.join('\n'), /example\.com\/ghost: no node offers it.*default\/ghost-net/);
    await patchStatus('add', '/status/capacity/example.com~1ghost', '2');
    await patchStatus('add', '/status/allocatable/example.com~1ghost', '2');
    assert.equal(checkOf(await nriCheck('--warn-days', '1'), 'resources').status, 'ok');
  });

  it('a pod created while the webhook was off is reported with its owner, exit 1', async () => {
    const saved = await cp.getJson(['mutatingwebhookconfiguration', webhookName]);
    await cp.must(['delete', 'mutatingwebhookconfiguration', webhookName]);
    await new Promise((resolve) => setTimeout(resolve, 3000)); // kube-apiserver's webhook informer
    const off = await nriCheck('--warn-days', '1');
    assert.equal(off.status, 1);
    assert.match(checkOf(off, 'webhook').summary, /does not exist/);
    await cp.must(
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'escaped', namespace: 'default' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'escaped' } },
          template: {
            metadata: { labels: { app: 'escaped' }, annotations: { [NETWORKS]: 'sriov-a' } },
            spec: { containers: [{ name: 'app', image: 'busybox' }] },
          },
        },
      }),
    );
    await cp.waitFor(
      'the ReplicaSet controller to create the pod',
      async () => (await cp.getJson(['pods', '-n', 'default', '-l', 'app=escaped'])).items.length === 1,
      60000,
    );
    const [pod] = (await cp.getJson(['pods', '-n', 'default', '-l', 'app=escaped'])).items;
    assert.equal(pod.spec.containers[0].resources?.limits, undefined, 'kube-apiserver admitted it without nri');
    const { metadata, ...rest } = saved;
    await cp.must(
      ['create', '-f', '-'],
      JSON.stringify({
        ...rest,
        metadata: { name: metadata.name, labels: metadata.labels, annotations: metadata.annotations },
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 1);
    assert.equal(checkOf(run, 'webhook').status, 'ok');
    const pods = checkOf(run, 'pods');
    assert.equal(pods.status, 'fail');
    const owner = pod.metadata.ownerReferences[0].name as string;
    assert.match(
      pods.details[0]!,
      new RegExp(`^default/${pod.metadata.name} \\(ReplicaSet/${owner}\\) lacks intel\\.com/sriov_a`),
    );
    // What the fix says: the owner makes the pod again, now through nri.
    await cp.must(['delete', 'pod', pod.metadata.name, '-n', 'default', '--wait=false']);
    await cp.waitFor(
      'a replacement pod with its resource',
      async () =>
        (await cp.getJson(['pods', '-n', 'default', '-l', 'app=escaped'])).items.some(
          (p: any) =>
            !p.metadata.deletionTimestamp && p.spec.containers[0].resources?.limits?.['intel.com/sriov_a'] === '1',
        ),
      60000,
    );
    assert.equal(checkOf(await nriCheck('--warn-days', '1'), 'pods').status, 'ok');
    await cp.must(['delete', 'deployment', 'escaped', '-n', 'default']);
  });

  it('a caBundle of another CA fails, exit 1, as kube-apiserver refuses to call nri; the right one passes', async () => {
    // cainjector stopped, so that nothing writes the caBundle meanwhile.
    stopCainjector();
    const saved = (await cp.getJson(['mutatingwebhookconfiguration', webhookName])).webhooks[0].clientConfig.caBundle;
    const setCaBundle = (base64: string) =>
      cp.must([
        'patch',
        'mutatingwebhookconfiguration',
        webhookName,
        '--type=json',
        '-p',
        JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: base64 }]),
      ]);
    await setCaBundle(Buffer.from(createPki('nri-check-wrong-ca-').caPem).toString('base64'));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const refused = await createPod('wrong-ca', { [NETWORKS]: 'sriov-a' });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /x509: certificate signed by unknown authority/);
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 1);
    assert.equal(checkOf(run, 'certificate').status, 'fail');
    assert.match(checkOf(run, 'certificate').summary, /does not verify/);
    await setCaBundle(saved);
    stopCainjector = startCainjector(cp);
    assert.equal(checkOf(await nriCheck('--warn-days', '1'), 'certificate').status, 'ok');
  });

  it('a certificate that expired while served fails, exit 1, as a new handshake does; a renewed one passes', async () => {
    const notAfter = new Date(Date.now() + 20_000);
    await issueServingSecret(cp, objects, 2, notAfter);
    await servedFromSecret();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, notAfter.getTime() - Date.now()) + 2000));
    // kube-apiserver verifies at each new TLS handshake: connections it opened before the end stay in
    // use until they close, so the refusal is shown by a new handshake against the caBundle.
    const caBundle = Buffer.from(
      (await cp.getJson(['mutatingwebhookconfiguration', webhookName])).webhooks[0].clientConfig.caBundle,
      'base64',
    ).toString();
    const handshake = await new Promise<string>((resolve) => {
      const socket = connect({
        host: '127.0.0.1',
        port: deployment.tlsPort,
        ca: caBundle,
        servername: 'nri-webhook.nri.svc',
      });
      socket.once('secureConnect', () => {
        socket.end();
        resolve('verified');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    assert.equal(handshake, 'CERT_HAS_EXPIRED');
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 1);
    assert.match(checkOf(run, 'certificate').summary, /expired at/);
    await issueServingSecret(cp, objects, 3);
    await servedFromSecret();
    assert.equal(checkOf(await nriCheck('--warn-days', '1'), 'certificate').status, 'ok');
  });

  it('a second network-resources injector on the same pods is a warning naming it; pods are still admitted once', async () => {
    const saved = await cp.getJson(['mutatingwebhookconfiguration', webhookName]);
    const second = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'network-resources-injector-config' },
      webhooks: [
        {
          ...saved.webhooks[0],
          name: 'network-resources-injector-mutating-config.k8s.io',
          reinvocationPolicy: 'Never',
        },
      ],
    };
    await cp.must(['create', '-f', '-'], JSON.stringify(second));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 0, 'a warning: both count a resource once');
    const injectors = checkOf(run, 'injectors');
    assert.equal(injectors.status, 'warn');
    assert.match(
      injectors.details[0]!,
      /^MutatingWebhookConfiguration network-resources-injector-config, .*runs before nri/,
    );
    assert.equal((await createPod('two-injectors', { [NETWORKS]: 'sriov-a' })).code, 0);
    const pod = await cp.getJson(['pod', 'two-injectors', '-n', 'default']);
    assert.deepEqual(pod.spec.containers[0].resources.limits, { 'intel.com/sriov_a': '1' });
    await cp.must(['delete', 'mutatingwebhookconfiguration', 'network-resources-injector-config']);
  });

  it('could not check: without the ClusterRole, exit 2 and the fix names it', async () => {
    await cp.must(['delete', 'clusterrolebinding', 'nri-check-checker']);
    const run = await nriCheck('--warn-days', '1');
    assert.equal(run.status, 2, run.stdout);
    assert.equal(checkOf(run, 'webhook').status, 'unknown');
    assert.match(run.stdout, /bind the read-only ClusterRole nri-check/);
    // The file stays readable by the test after the process has exited.
    assert.ok(readFileSync(kubeconfig, 'utf8').includes('token'));
  });
});
