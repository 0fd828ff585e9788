// nri started as its deployers start the upstream injector: `bin/webhook` with
// the argument lists of upstream's manifest, the SR-IOV Network Operator and
// KubeVirt's operator, as the container's non-root user, with an in-cluster
// service account laid out as the kubelet mounts it, against the real control
// plane. kube-apiserver presents a client certificate to webhooks (as an
// AdmissionConfiguration makes it do), which upstream's default requires.
// The only changes to the argument lists: free ports instead of 8443/6443/8444,
// and the certificate folder where the suite lays the Secret volume out.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../support/fixtures.js';
import { eventually, freePort, send } from '../support/function-process.js';
import { ARGUMENT_LISTS } from '../support/upstream-args.js';
import { ControlPlane, missingControlPlane } from './support/control-plane.js';
import {
  AS_ROOT,
  containerOf,
  deployWithCertificate,
  find,
  pointWebhookAt,
  type Deployment,
  type KubeObject,
} from './support/deploy.js';

const missing = missingControlPlane();
if (missing && process.env.CI === 'true')
  throw new Error(`e2e: the control plane is required under CI=true; ${missing}`);

const WEBHOOK = fileURLToPath(new URL('bin/webhook', repoRoot));

interface Started {
  child: ChildProcess;
  tlsPort: number;
  healthPort: number;
  stderr: () => string;
}

/** A TLS handshake: the protocol, cipher and group agreed, or the error. */
function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ protocol: string; cipher: string; group: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'nri-webhook.nri.svc', ...options }, () => {
      const result = {
        protocol: socket.getProtocol() ?? '',
        cipher: socket.getCipher().name,
        group: (socket.getEphemeralKeyInfo() as { name?: string } | null)?.name ?? '',
      };
      // TLS 1.3 tells a client its certificate was refused only after the handshake: wait for it.
      socket.once('data', () => undefined);
      setTimeout(() => {
        socket.destroy();
        resolve(result);
      }, 150);
    });
    socket.once('error', reject);
  });
}

describe("bin/webhook with upstream's flags, as its deployers start it", {
  skip: missing ? `e2e skipped: ${missing}` : false,
}, () => {
  const cp = new ControlPlane();
  let deployment: Deployment;
  let objects: KubeObject[];
  let stopCainjector = () => {};
  let podRoot = '';
  let certDir = '';
  let running: Started | undefined;

  const pointAt = (port: number) =>
    pointWebhookAt(cp, find(objects, 'MutatingWebhookConfiguration').metadata.name, `https://127.0.0.1:${port}/mutate`);

  /** bin/webhook with `args`, its ports made free ones, its certificate folder the suite's, as the container's user. */
  const start = async (args: string[], options: { cwd?: string; namespace?: string } = {}): Promise<Started> => {
    const [tlsPort, healthPort] = [await freePort(), await freePort()];
    const argv = args.map((arg) =>
      arg
        .replace(/^(--?port=)\d+$/, `$1${tlsPort}`)
        .replace(/^(--?health-check-port=)\d+$/, `$1${healthPort}`)
        .replace('/etc/tls/', `${deployment.volume.dir}/`),
    );
    if (!argv.some((arg) => /^--?port=/.test(arg))) argv.push(`-port=${tlsPort}`);
    if (!argv.some((arg) => /^--?health-check-port=/.test(arg))) argv.push(`-health-check-port=${healthPort}`);
    const { securityContext } = containerOf(deployment.objects);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: tmpdir(),
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(cp.apiPort),
      NRI_MOUNT_ROOT: podRoot,
      ...(options.namespace ? { NAMESPACE: options.namespace } : {}),
    };
    const child = spawn(WEBHOOK, argv, {
      cwd: options.cwd ?? tmpdir(),
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(AS_ROOT ? { uid: securityContext.runAsUser, gid: securityContext.runAsGroup } : {}),
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const started = { child, tlsPort, healthPort, stderr: () => stderr };
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`webhook exited with ${child.exitCode}: ${stderr}`);
        return (await send(`http://127.0.0.1:${healthPort}/readyz`, { timeoutMs: 500 }).catch(() => ({ status: 0 })))
          .status;
      },
      (status) => status === 200,
      30000,
      100,
    );
    return started;
  };
  const stop = async (started: Started | undefined) => {
    if (!started || started.child.exitCode !== null) return started?.child.exitCode;
    const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
    started.child.kill('SIGTERM');
    return exited;
  };

  const pod = (name: string, metadata: Record<string, unknown>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', ...metadata },
    spec: { containers: [{ name: 'app', image: 'busybox' }] },
  });
  /** A pod that names sriov-a, and one carrying only the label the ConfigMap injects for: both through kube-apiserver. */
  const podsInjected = async (suffix: string) => {
    await cp.must(
      ['create', '-f', '-'],
      JSON.stringify(pod(`named-${suffix}`, { annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' } })),
    );
    await cp.must(
      ['create', '-f', '-'],
      JSON.stringify(pod(`labelled-${suffix}`, { labels: { 'feature.pod.kubernetes.io/sriov-network': 'true' } })),
    );
    for (const name of [`named-${suffix}`, `labelled-${suffix}`]) {
      const stored = await cp.getJson(['pod', name]);
      assert.deepEqual(stored.spec.containers[0].resources.limits, { 'intel.com/sriov_a': '1' }, name);
    }
    await cp.must(['delete', 'pod', `named-${suffix}`, `labelled-${suffix}`, '--wait=false']);
  };
  const probesOnHealthPort = async (started: Started) => {
    assert.equal((await send(`http://127.0.0.1:${started.healthPort}/healthz`)).status, 200);
    assert.equal((await send(`http://127.0.0.1:${started.healthPort}/readyz`)).status, 200);
    const review = await send(`http://127.0.0.1:${started.healthPort}/mutate`, { body: '{}' });
    assert.equal(review.status, 404, 'the health port answers no review');
  };

  before(async () => {
    await cp.start();
    ({ objects, deployment, stopCainjector } = await deployWithCertificate(cp));
    // The service account as the kubelet mounts it, readable by the container's user.
    podRoot = mkdtempSync(join(tmpdir(), 'nri-pod-root-'));
    const accountDir = join(podRoot, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(accountDir, { recursive: true });
    const token = (await cp.must(['create', 'token', 'nri', '-n', deployment.namespace, '--duration=2h'])).trim();
    writeFileSync(join(accountDir, 'token'), token);
    writeFileSync(join(accountDir, 'ca.crt'), cp.pki.caPem);
    writeFileSync(join(accountDir, 'namespace'), deployment.namespace);
    for (let dir = accountDir; dir.startsWith(podRoot); dir = join(dir, '..')) chmodSync(dir, 0o755);
    // KubeVirt's list names no certificate: upstream then reads cert.pem and key.pem in its working folder.
    certDir = mkdtempSync(join(tmpdir(), 'nri-cwd-'));
    chmodSync(certDir, 0o755);
    copyFileSync(join(deployment.volume.dir, 'tls.crt'), join(certDir, 'cert.pem'));
    copyFileSync(join(deployment.volume.dir, 'tls.key'), join(certDir, 'key.pem'));
    chmodSync(join(certDir, 'key.pem'), 0o644);
    await cp.must(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'k8s.cni.cncf.io/v1',
        kind: 'NetworkAttachmentDefinition',
        metadata: {
          name: 'sriov-a',
          namespace: 'default',
          annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov_a' },
        },
        spec: { config: '{"cniVersion":"0.3.1","type":"sriov"}' },
      }),
    );
    // The ConfigMap in NAMESPACE: a label injects the network (upstream's document shape).
    await cp.must(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'nri-control-switches', namespace: deployment.namespace },
        data: {
          'config.json': JSON.stringify({
            'user-defined-injections': {
              'feature.pod.kubernetes.io/sriov-network': {
                op: 'add',
                path: '/metadata/annotations',
                value: { 'k8s.v1.cni.cncf.io/networks': 'sriov-a' },
              },
            },
          }),
        },
      }),
    );
  });

  after(async () => {
    await stop(running);
    stopCainjector();
    await cp.stop();
  });

  it("upstream's manifest: client certificates required and checked against the service account's ca.crt; pods injected through kube-apiserver", async () => {
    running = await start(ARGUMENT_LISTS.upstream, { namespace: deployment.namespace });
    await probesOnHealthPort(running);
    await assert.rejects(
      handshake(running.tlsPort, { ca: cp.pki.caPem }),
      /certificate required|alert/i,
      'no client certificate: refused',
    );
    const withCertificate = await handshake(running.tlsPort, {
      ca: cp.pki.caPem,
      cert: readFileSync(join(cp.dir, 'webhook-client.crt')),
      key: readFileSync(join(cp.dir, 'webhook-client.key')),
    });
    assert.equal(withCertificate.protocol, 'TLSv1.3');
    await pointAt(running.tlsPort);
    await podsInjected('upstream');
    assert.equal(await stop(running), 0);
  });

  it("the SR-IOV Network Operator's DaemonSet (--insecure=true): no client certificate asked; pods injected", async () => {
    running = await start(ARGUMENT_LISTS.sriovOperator, { namespace: deployment.namespace });
    await probesOnHealthPort(running);
    assert.equal((await handshake(running.tlsPort, { ca: cp.pki.caPem })).protocol, 'TLSv1.3');
    await pointAt(running.tlsPort);
    await podsInjected('sriov');
    assert.equal(await stop(running), 0);
  });

  it("KubeVirt's operator: TLS 1.2 negotiates only the named suites; cert.pem/key.pem from the working folder; pods injected", async () => {
    running = await start(ARGUMENT_LISTS.kubevirt, { cwd: certDir, namespace: deployment.namespace });
    await probesOnHealthPort(running);
    const tls12 = await handshake(running.tlsPort, { ca: cp.pki.caPem, maxVersion: 'TLSv1.2' });
    assert.equal(tls12.protocol, 'TLSv1.2');
    assert.equal(tls12.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256', 'the serving key is ECDSA: its named suite');
    await assert.rejects(
      handshake(running.tlsPort, { ca: cp.pki.caPem, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }),
      /handshake failure|no shared cipher|alert/i,
    );
    await pointAt(running.tlsPort);
    await podsInjected('kubevirt');
    assert.equal(await stop(running), 0);
  });

  it('-tls-min-version=VersionTLS13 refuses TLS 1.2; -tls-curve-preferences=23 negotiates P-256 only', async () => {
    running = await start([
      ...ARGUMENT_LISTS.sriovOperator,
      '-tls-min-version=VersionTLS13',
      '-tls-curve-preferences=23',
    ]);
    await assert.rejects(
      handshake(running.tlsPort, { ca: cp.pki.caPem, maxVersion: 'TLSv1.2' }),
      /protocol|version|alert/i,
    );
    assert.equal(
      (await handshake(running.tlsPort, { ca: cp.pki.caPem, ecdhCurve: 'P-256:X25519' })).group,
      'prime256v1',
    );
    await assert.rejects(
      handshake(running.tlsPort, { ca: cp.pki.caPem, ecdhCurve: 'X25519' }),
      /handshake failure|alert|group/i,
    );
    assert.equal(await stop(running), 0);
  });

  it('unknown and malformed flags, and what nri refuses, exit 2 naming the flag', async () => {
    for (const [args, message] of [
      [['-nope'], /flag provided but not defined: -nope/],
      [['-port'], /flag needs an argument: -port/],
      [['-enable-http2=true'], /-enable-http2: nri serves HTTP\/1\.1 only/],
      [['-insecure', '-tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA'], /TLS_RSA_WITH_AES_128_CBC_SHA is refused/],
      [[], /-insecure is false, so client certificates are required, but no -client-ca was given/],
    ] as const) {
      const child = spawn(WEBHOOK, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      const code = await new Promise((resolve) => child.once('exit', resolve));
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, message);
      assert.match(stderr, /Usage of webhook/);
    }
  });
});
