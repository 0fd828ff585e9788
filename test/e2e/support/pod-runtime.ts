// What a node would do for the pods Knative creates for nri, stood in for by the test, because
// kwok runs no containers and probes nothing (said in the README and docs/development.md):
//
// - kubelet: for each Running pod of the Knative Service, nri is started as that pod's container
//   spec says (Knative's env: K_SERVICE, K_REVISION, …; its Secret volume laid out as the kubelet
//   does, re-synced when the Secret changes), and its readiness is probed the way queue-proxy's
//   readiness probe is (queue-proxy runs nri's /readyz each time the kubelet asks), with that
//   probe's period and failure threshold; the result is written to the pod's Ready condition.
//   A deleted pod gets SIGTERM after its preStop hook: Knative's hook waits for queue-proxy to
//   drain (30 s by default; PRESTOP_MS here), while established connections keep working.
// - kube-proxy: a listener forwards each new connection to a ready endpoint of the webhook
//   Service's EndpointSlices (kept by the real endpointslice controller), round robin. As with
//   kube-proxy, a connection stays with its endpoint until it closes.
import { request } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { send, startFunction, type RunningFunction } from '../../support/function-process.js';
import type { ControlPlane } from './control-plane.js';
import { AS_ROOT, envWithVolumeAt, type SecretVolume, type KubeObject } from './deploy.js';

/** JSON from the API server with the admin's certificate: cheaper than a kubectl per poll. */
export function apiClient(cp: ControlPlane) {
  const agent = cp.adminAgent(4);
  return (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<any> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${cp.server}${path}`,
        {
          method,
          agent,
          headers: { accept: 'application/json', ...(payload ? { 'content-type': contentType } : {}) },
          timeout: 20000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk) => (text += chunk));
          res.on('end', () =>
            (res.statusCode ?? 500) < 300
              ? resolve(text ? JSON.parse(text) : undefined)
              : reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

export interface RunningPod {
  name: string;
  ip: string;
  revision: string;
  nri: RunningFunction;
  tlsPort: number;
  ready: boolean;
  /** TCP connections the stand-in kube-proxy has sent to this pod */
  connections: number;
  /** deleted: in its preStop wait, then stopped */
  terminating: boolean;
}

/** Knative's preStop waits for queue-proxy's drain (30 s by default); shortened here. */
export const PRESTOP_MS = 3000;

export class KnativePodRuntime {
  readonly pods = new Map<string, RunningPod>();
  private readonly starting = new Set<string>();
  private readonly api: ReturnType<typeof apiClient>;
  private stopped = false;
  private loops: Promise<void>[] = [];
  private secretVersion = '';
  private endpoints: string[] = [];
  private next = 0;
  private proxy?: Server;
  private kubeconfig?: Promise<string>;
  private readonly sockets = new Set<Socket>();
  /** what went wrong in the loops, for a failing test's message */
  readonly errors: string[] = [];

  constructor(
    private readonly cp: ControlPlane,
    private readonly options: {
      namespace: string;
      /** label selector of the Knative Service's pods */
      selector: string;
      /** the Service whose EndpointSlices the stand-in kube-proxy forwards to */
      endpointService: string;
      volume: SecretVolume;
      secretName: string;
      /** nri's container entrypoint flags and user, as containerOf() reads them */
      nodeFlags: string[];
      securityContext: { runAsUser?: number; runAsGroup?: number };
      /** the pods' ServiceAccount: nri gets a token of it, as the pod's projected token */
      serviceAccount: string;
    },
  ) {
    this.api = apiClient(cp);
  }

  /** Starts the kubelet and kube-proxy stand-ins; resolves with the port kube-proxy listens on. */
  async start(proxyPort: number): Promise<void> {
    this.proxy = createServer((socket) => this.forward(socket));
    await new Promise<void>((resolve) => this.proxy!.listen(proxyPort, '127.0.0.1', resolve));
    this.loops = [
      this.every(500, () => this.syncPods()),
      this.every(250, () => this.syncEndpoints()),
      this.every(1000, () => this.syncSecret()),
    ];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => (this.proxy ? this.proxy.close(resolve) : resolve(undefined)));
    await Promise.all([...this.pods.values()].map((pod) => pod.nri.stop()));
  }

  /** Connections per revision so far. */
  connectionsByRevision(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const pod of this.pods.values()) counts[pod.revision] = (counts[pod.revision] ?? 0) + pod.connections;
    return counts;
  }

  private async every(ms: number, step: () => Promise<void>): Promise<void> {
    while (!this.stopped) {
      await step().catch((error) => void this.errors.push(String(error)));
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
  }

  private forward(client: Socket): void {
    const ready = this.endpoints.filter((ip) => [...this.pods.values()].some((pod) => pod.ip === ip));
    if (ready.length === 0) return void client.destroy(); // kube-proxy rejects a Service with no ready endpoint
    const ip = ready[this.next++ % ready.length]!;
    const pod = [...this.pods.values()].find((candidate) => candidate.ip === ip)!;
    pod.connections++;
    const upstream = connect(pod.tlsPort, '127.0.0.1');
    this.sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  }

  private async syncEndpoints(): Promise<void> {
    const { namespace, endpointService } = this.options;
    const list = await this.api(
      'GET',
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${endpointService}`,
    );
    this.endpoints = list.items.flatMap((slice: any) =>
      (slice.endpoints ?? [])
        .filter((endpoint: any) => endpoint.conditions?.ready === true)
        .flatMap((endpoint: any) => endpoint.addresses),
    );
  }

  private async syncSecret(): Promise<void> {
    const { namespace, secretName, volume } = this.options;
    const secret = await this.api('GET', `/api/v1/namespaces/${namespace}/secrets/${secretName}`).catch(
      () => undefined,
    );
    if (!secret?.data || secret.metadata.resourceVersion === this.secretVersion) return;
    this.secretVersion = secret.metadata.resourceVersion;
    volume.write(
      Object.fromEntries(
        Object.entries(secret.data as Record<string, string>).map(([name, value]) => [
          name,
          Buffer.from(value, 'base64'),
        ]),
      ),
    );
  }

  private async syncPods(): Promise<void> {
    const { namespace, selector } = this.options;
    const list = await this.api(
      'GET',
      `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`,
    );
    const live = new Set<string>();
    for (const pod of list.items as KubeObject[]) {
      const name = pod.metadata.name;
      if (pod.metadata.deletionTimestamp || pod.status?.phase !== 'Running' || !pod.status?.podIP) continue;
      live.add(name);
      if (!this.pods.has(name) && !this.starting.has(name) && this.secretVersion !== '') {
        this.starting.add(name);
        void this.run(pod).finally(() => this.starting.delete(name));
      }
    }
    for (const [name, pod] of this.pods) {
      if (live.has(name) || pod.terminating) continue;
      pod.terminating = true;
      void new Promise((resolve) => setTimeout(resolve, PRESTOP_MS))
        .then(() => pod.nri.stop())
        .then((code) => {
          if (code !== 0) this.errors.push(`${name}: nri exited with ${code} on SIGTERM`);
          this.pods.delete(name);
        });
    }
  }

  /** One pod: unready until its container answers the probe, then probed for as long as it runs. */
  private async run(pod: KubeObject): Promise<void> {
    const name = pod.metadata.name;
    await this.setReady(pod, false);
    const container = pod.spec.containers.find((c: any) => c.name !== 'queue-proxy');
    const queueProxy = pod.spec.containers.find((c: any) => c.name === 'queue-proxy');
    const probe = queueProxy?.readinessProbe ?? {};
    const secretVolume = pod.spec.volumes.find((volume: any) => volume.secret?.secretName === this.options.secretName);
    const mount = container.volumeMounts.find((m: any) => m.name === secretVolume.name);
    const literal: Record<string, string> = Object.fromEntries(
      (container.env ?? []).filter((item: any) => 'value' in item).map((item: any) => [item.name, item.value]),
    );
    const env = envWithVolumeAt(literal, mount.mountPath, this.options.volume.dir);
    delete env.PORT; // the pod's port 8080 becomes a free one here (startFunction picks it)
    env.NRI_TLS_PORT = '0';
    const { securityContext, nodeFlags, serviceAccount, namespace } = this.options;
    this.kubeconfig ??= this.cp
      .must(['create', 'token', serviceAccount, '-n', namespace, '--duration=2h'])
      .then((token) => this.cp.writeKubeconfig(`${namespace}-${serviceAccount}.kubeconfig`, { token: token.trim() }));
    const nri = await startFunction(
      {
        ...env,
        KUBECONFIG: await this.kubeconfig,
        NRI_NAMESPACE: pod.metadata.namespace,
        NRI_LOG_LEVEL: env.NRI_LOG_LEVEL ?? 'info',
      },
      AS_ROOT ? { nodeFlags, uid: securityContext.runAsUser, gid: securityContext.runAsGroup } : { nodeFlags },
    );
    const tlsPort = Number(
      /"port":(\d+).*HTTPS webhook listening/.exec(await nri.waitForLog(/HTTPS webhook listening/, 30000))![1],
    );
    const running: RunningPod = {
      name,
      ip: pod.status.podIP,
      revision: pod.metadata.labels['serving.knative.dev/revision'],
      nri,
      tlsPort,
      ready: false,
      connections: 0,
      terminating: false,
    };
    this.pods.set(name, running);
    const periodMs = (probe.periodSeconds ?? 10) * 1000;
    const failureThreshold = probe.failureThreshold ?? 3;
    let failures = 0;
    while (!this.stopped && !running.terminating) {
      const ok =
        (
          await send(`${nri.url}/readyz`, { timeoutMs: (probe.timeoutSeconds ?? 1) * 1000 }).catch(() => ({
            status: 0,
          }))
        ).status === 200;
      failures = ok ? 0 : failures + 1;
      const ready = ok ? true : failures >= failureThreshold ? false : running.ready;
      if (ready !== running.ready) {
        running.ready = ready;
        await this.setReady(pod, ready).catch((error) => void this.errors.push(String(error)));
      }
      await new Promise((resolve) => setTimeout(resolve, periodMs));
    }
  }

  private async setReady(pod: KubeObject, ready: boolean): Promise<void> {
    const status = ready ? 'True' : 'False';
    const now = new Date().toISOString();
    const patch = {
      status: {
        conditions: ['Ready', 'ContainersReady'].map((type) => ({ type, status, lastTransitionTime: now })),
        containerStatuses: pod.spec.containers.map((c: any) => ({
          name: c.name,
          ready,
          image: c.image,
          imageID: '',
          restartCount: 0,
          started: true,
          state: { running: { startedAt: now } },
        })),
      },
    };
    await this.api(
      'PATCH',
      `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`,
      patch,
      'application/strategic-merge-patch+json',
    );
  }
}
