// A real Kubernetes control plane on loopback, from the binaries
// test/e2e/control-plane/build.sh puts in the cache: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a kwok node. A throwaway CA made
// with openssl signs everything; the admin talks to it with kubectl.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { Agent } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { issue } from '../../support/certs.js';
import { freePort } from '../../support/function-process.js';

export const cacheDir = (): string => process.env.NRI_E2E_CACHE || join(homedir(), '.cache', 'nri-e2e');
const bin = (name: string) => join(cacheDir(), 'bin', name);

/** Why the suite cannot run here, or undefined when the control plane is built. */
export function missingControlPlane(): string | undefined {
  const wanted = [
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'kwok',
    'cainjector',
    'cert-manager-controller',
    'knative-validate',
    'knative-controller',
    'knative-webhook',
    'knative-autoscaler-hpa',
  ];
  const missing = wanted.filter((name) => !existsSync(bin(name)));
  return missing.length === 0
    ? undefined
    : `not built in ${cacheDir()}: ${missing.join(', ')} (run: bash test/e2e/control-plane/build.sh)`;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

export interface Pki {
  dir: string;
  ca: { cert: string; key: string };
  caPem: string;
}

export function createCa(dir: string, name: string): Pki {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
  openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '2', '-out', cert], dir);
  return { dir, ca: { cert, key }, caPem: readFileSync(cert, 'utf8') };
}

interface Managed {
  name: string;
  child: ChildProcess;
  log: string;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ControlPlaneOptions {
  /** A fixed directory for its state (the real node's), instead of a fresh temporary one. */
  dir?: string;
  /** Components outlive this process, each in a process group of its own with its pid in <dir>/pids (real-node/up.sh). */
  detached?: boolean;
  /**
   * A real node's address: kube-apiserver listens on every address of its network namespace,
   * advertises this one (pods reach it through the `kubernetes` Service) and reaches kubelets
   * with a client certificate. Without it, everything stays on 127.0.0.1.
   */
  nodeIp?: string;
  apiPort?: number;
  /** Start a kwok node controller (the default); a real node brings its own kubelet. */
  kwok?: boolean;
}

export class ControlPlane {
  readonly dir: string;
  readonly pki: Pki;
  apiPort = 0;
  adminKubeconfig = '';
  private etcdPort = 0;
  private readonly processes = new Map<string, Managed>();

  constructor(readonly options: ControlPlaneOptions = {}) {
    if (options.dir) mkdirSync(options.dir, { recursive: true });
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'nri-e2e-'));
    this.pki = createCa(this.dir, 'e2e-ca');
  }

  /** The control plane a detached start left running in dir (real-node/up.sh), to talk to it. */
  static attach(dir: string): ControlPlane {
    const cp: ControlPlane = Object.create(ControlPlane.prototype);
    const cert = join(dir, 'e2e-ca.crt');
    Object.assign(cp, {
      options: { dir, detached: true },
      dir,
      pki: { dir, ca: { cert, key: join(dir, 'e2e-ca.key') }, caPem: readFileSync(cert, 'utf8') },
      processes: new Map(),
      adminKubeconfig: join(dir, 'admin.kubeconfig'),
    });
    cp.apiPort = Number(/server: https:\/\/[^:]+:(\d+)/.exec(readFileSync(cp.adminKubeconfig, 'utf8'))![1]);
    return cp;
  }

  /** kube-apiserver's audit log: one JSON event a line (pod creations, at Metadata level) */
  get auditLog(): string {
    return join(this.dir, 'audit.log');
  }

  get server(): string {
    return `https://127.0.0.1:${this.apiPort}`;
  }

  async start(): Promise<void> {
    const { dir } = this;
    // nri runs as its container's non-root user: it may pass through (not list) this directory
    // to the files a pod would have mounted (its token's kubeconfig, its Secret volume).
    chmodSync(dir, 0o711);
    const ca = this.pki.ca;
    const nodeSans = this.options.nodeIp ? `,IP:${this.options.nodeIp},IP:10.96.0.1` : '';
    issue(dir, 'apiserver', '/CN=kube-apiserver', {
      ca,
      san: `IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc${nodeSans}`,
    });
    issue(dir, 'admin', '/O=system:masters/CN=e2e-admin', { ca, client: true });
    if (this.options.nodeIp) issue(dir, 'front-proxy-client', '/CN=front-proxy-client', { ca, client: true });
    // The client certificate kube-apiserver presents to webhooks that ask for one (upstream's
    // default, -insecure=false), as an AdmissionConfiguration gives it in a real cluster.
    issue(dir, 'webhook-client', '/CN=kube-apiserver-webhook-client', { ca, client: true });
    writeFileSync(
      join(dir, 'webhook-client.kubeconfig'),
      `apiVersion: v1
kind: Config
users:
- name: '*'
  user:
    client-certificate: ${join(dir, 'webhook-client.crt')}
    client-key: ${join(dir, 'webhook-client.key')}
`,
    );
    // An audit log of pod creations, where kube-apiserver writes the webhook's audit annotations.
    writeFileSync(
      join(dir, 'audit-policy.yaml'),
      `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources: [{group: "", resources: [pods]}]
  verbs: [create]
- level: None
`,
    );
    writeFileSync(
      join(dir, 'admission.yaml'),
      `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: ${join(dir, 'webhook-client.kubeconfig')}
`,
    );
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], dir);
    openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
    [this.apiPort, this.etcdPort] = [this.options.apiPort ?? (await freePort()), await freePort()];
    this.adminKubeconfig = this.writeKubeconfig('admin.kubeconfig', {
      cert: join(dir, 'admin.crt'),
      key: join(dir, 'admin.key'),
    });

    const peerPort = await freePort();
    this.spawn('etcd', bin('etcd'), [
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${this.etcdPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${this.etcdPort}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peerPort}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level',
      'warn',
    ]);
    await this.startApiServer();
    const kubeconfig = this.adminKubeconfig;
    const healthPort = async () => String(await freePort());
    this.spawn('kube-controller-manager', bin('kube-controller-manager'), [
      '--kubeconfig',
      kubeconfig,
      '--authentication-kubeconfig',
      kubeconfig,
      '--authorization-kubeconfig',
      kubeconfig,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port',
      await healthPort(),
      // No cloud: the route, load-balancer and IPAM controllers have nothing to do here; the node
      // lifecycle controller only for a real kubelet (it lifts the not-ready taint the kubelet registers with).
      `--controllers=*,-node-ipam-controller,-node-route-controller,-service-lb-controller,-cloud-node-lifecycle-controller${this.options.nodeIp ? '' : ',-node-lifecycle-controller'}`,
      '--service-account-private-key-file',
      join(dir, 'sa.key'),
      '--root-ca-file',
      ca.cert,
      '--use-service-account-credentials=false',
      '--concurrent-deployment-syncs=2',
      '--v=0',
      // Knative's HPA-class revisions wait for their HPA: check it every 3 s, not 15.
      '--horizontal-pod-autoscaler-sync-period=3s',
      // With a real node (real CPU metrics), scale-in after 30 s of lower load rather than 5 minutes.
      ...(this.options.nodeIp ? ['--horizontal-pod-autoscaler-downscale-stabilization=30s'] : []),
    ]);
    this.spawn('kube-scheduler', bin('kube-scheduler'), [
      '--kubeconfig',
      kubeconfig,
      '--authentication-kubeconfig',
      kubeconfig,
      '--authorization-kubeconfig',
      kubeconfig,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port',
      await healthPort(),
      '--v=0',
    ]);
    if (this.options.kwok !== false) {
      this.spawn('kwok', bin('kwok'), [
        '--kubeconfig',
        kubeconfig,
        '--config',
        join(cacheDir(), 'kwok-stages', 'fast.yaml'),
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--server-address',
        `127.0.0.1:${await freePort()}`,
      ]);
    }
    await this.waitFor(
      'the default ServiceAccount',
      async () => (await this.kubectl(['get', 'serviceaccount', 'default', '-n', 'default'])).code === 0,
      60000,
    );
  }

  /** Starts (or restarts) kube-apiserver and waits until it is ready. */
  async startApiServer(): Promise<void> {
    const { dir } = this;
    const { nodeIp } = this.options;
    const addresses = nodeIp
      ? [
          '--bind-address=0.0.0.0',
          `--advertise-address=${nodeIp}`,
          '--kubelet-preferred-address-types=InternalIP',
          '--kubelet-client-certificate',
          join(dir, 'admin.crt'),
          '--kubelet-client-key',
          join(dir, 'admin.key'),
          // The aggregation layer, for metrics-server's metrics.k8s.io (the HPA's CPU): kube-apiserver
          // proxies to the APIService's Service (its ClusterIP, through kube-proxy) with this client
          // certificate and the user in headers. Endpoint routing stays off: it refuses the
          // ExternalName Service Knative's webhook is reached by here.
          '--requestheader-client-ca-file',
          this.pki.ca.cert,
          '--requestheader-allowed-names=front-proxy-client',
          '--requestheader-username-headers=X-Remote-User',
          '--requestheader-group-headers=X-Remote-Group',
          '--requestheader-extra-headers-prefix=X-Remote-Extra-',
          '--proxy-client-cert-file',
          join(dir, 'front-proxy-client.crt'),
          '--proxy-client-key-file',
          join(dir, 'front-proxy-client.key'),
        ]
      : ['--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none'];
    this.spawn('kube-apiserver', bin('kube-apiserver'), [
      '--etcd-servers',
      `http://127.0.0.1:${this.etcdPort}`,
      ...addresses,
      '--secure-port',
      String(this.apiPort),
      '--tls-cert-file',
      join(dir, 'apiserver.crt'),
      '--tls-private-key-file',
      join(dir, 'apiserver.key'),
      '--client-ca-file',
      this.pki.ca.cert,
      '--service-account-key-file',
      join(dir, 'sa.pub'),
      '--service-account-signing-key-file',
      join(dir, 'sa.key'),
      '--service-account-issuer',
      'https://kubernetes.default.svc',
      '--authorization-mode=Node,RBAC',
      '--anonymous-auth=false',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--profiling=false',
      '--v=0',
      '--admission-control-config-file',
      join(dir, 'admission.yaml'),
      '--audit-policy-file',
      join(dir, 'audit-policy.yaml'),
      '--audit-log-path',
      this.auditLog,
    ]);
    await this.waitFor(
      'kube-apiserver /readyz',
      async () => (await this.kubectl(['get', '--raw', '/readyz'])).stdout.trim() === 'ok',
      90000,
    );
  }

  async stopProcess(name: string): Promise<void> {
    const managed = this.processes.get(name);
    if (!managed || managed.child.exitCode !== null || managed.child.signalCode !== null) return;
    const exited = new Promise((resolve) => managed.child.once('exit', resolve));
    managed.child.kill('SIGTERM');
    const force = setTimeout(() => managed.child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(force);
  }

  /** Everything started, the most recent first: add-ons (Knative, cert-manager) before the control plane under them. */
  async stop(): Promise<void> {
    for (const name of [...this.processes.keys()].reverse()) await this.stopProcess(name);
  }

  /** The running process of a component (kube-apiserver, etcd, ...), for a benchmark to read its CPU and memory. */
  process(name: string): ChildProcess | undefined {
    const managed = this.processes.get(name);
    return managed && managed.child.exitCode === null ? managed.child : undefined;
  }

  /** The last lines a component logged, for a failing test's message. */
  tail(name: string, lines = 30): string {
    const managed = this.processes.get(name);
    return managed ? readFileSync(managed.log, 'utf8').split('\n').slice(-lines).join('\n') : '';
  }

  writeKubeconfig(file: string, user: { cert?: string; key?: string; token?: string }): string {
    const path = join(this.dir, file);
    const credentials = user.token
      ? `    token: ${user.token}`
      : `    client-certificate: ${user.cert}\n    client-key: ${user.key}`;
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:${this.apiPort}
    certificate-authority-data: ${Buffer.from(this.pki.caPem).toString('base64')}
users:
- name: user
  user:
${credentials}
contexts:
- name: e2e
  context: {cluster: e2e, user: user}
current-context: e2e
`,
      { mode: 0o644 },
    );
    return path;
  }

  /** Keep-alive HTTPS connections to kube-apiserver with the admin's client certificate, for many requests where a kubectl each would be slow. */
  adminAgent(maxSockets: number): Agent {
    return new Agent({
      keepAlive: true,
      maxSockets,
      ca: this.pki.caPem,
      cert: readFileSync(join(this.dir, 'admin.crt')),
      key: readFileSync(join(this.dir, 'admin.key')),
    });
  }

  kubectl(args: string[], input?: string, kubeconfig = this.adminKubeconfig): Promise<KubectlResult> {
    return new Promise((resolve) => {
      const child = execFile(
        'kubectl',
        ['--kubeconfig', kubeconfig, '--request-timeout=20s', ...args],
        { maxBuffer: 64 << 20 },
        (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin!.end(input);
    });
  }

  /** kubectl that must succeed; its stdout. */
  async must(args: string[], input?: string): Promise<string> {
    const result = await this.kubectl(args, input);
    if (result.code !== 0)
      throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr || result.stdout}`);
    return result.stdout;
  }

  async getJson(args: string[]): Promise<any> {
    return JSON.parse(await this.must(['get', ...args, '-o', 'json']));
  }

  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const managed of this.processes.values()) {
        if (managed.child.exitCode !== null && managed.child.exitCode !== 0 && !managed.child.killed) {
          throw new Error(
            `${managed.name} exited with ${managed.child.exitCode} while waiting for ${what}:\n${this.tail(managed.name)}`,
          );
        }
      }
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** A component run until stop(), its output in <dir>/<name>.log; waitFor() reports it if it fails. */
  spawn(name: string, command: string, args: string[], env: Record<string, string> = {}): void {
    const log = join(this.dir, `${name}.log`);
    const fd = openSync(log, 'a');
    const detached = this.options.detached === true;
    const child = spawn(command, args, {
      stdio: ['ignore', fd, fd],
      cwd: this.dir,
      env: { ...process.env, ...env },
      detached,
    });
    closeSync(fd);
    if (detached) {
      mkdirSync(join(this.dir, 'pids'), { recursive: true });
      writeFileSync(join(this.dir, 'pids', name), String(child.pid));
      child.unref();
    }
    this.processes.set(name, { name, child, log });
  }
}
