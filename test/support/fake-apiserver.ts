// A fake Kubernetes API server over real HTTPS (its own test CA), serving
// NetworkAttachmentDefinitions and ConfigMaps with get, list and watch, and
// misbehaving on request: error statuses, slowness, silence, garbage, 410.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestPki } from './certs.js';

export type Route = 'nadGet' | 'nadList' | 'nadWatch' | 'cmGet' | 'cmList' | 'cmWatch' | 'ksvcList' | 'ksvcWatch';
type WatchRoute = 'nadWatch' | 'cmWatch' | 'ksvcWatch';
const watchRouteOf = (route: Route): WatchRoute =>
  route.startsWith('nad') ? 'nadWatch' : route.startsWith('cm') ? 'cmWatch' : 'ksvcWatch';

export interface Fault {
  status?: number;
  delayMs?: number;
  /** accept the request and never answer */
  hang?: boolean;
  /** watch only: send a line that is not JSON, then keep going */
  garbage?: boolean;
  /** watch only: send the headers, then nothing, ignoring timeoutSeconds */
  silent?: boolean;
  /** how many requests it applies to; default: all until cleared */
  times?: number;
  /** how many requests to let through before it applies (a list's later page, say) */
  after?: number;
}

interface Watcher {
  route: WatchRoute;
  namespace?: string;
  name?: string;
  response: ServerResponse;
  /** asked for BOOKMARK events (allowWatchBookmarks=true) */
  bookmarks: boolean;
}

const nadObject = (
  namespace: string,
  name: string,
  annotations: Record<string, string>,
  config: string,
): KubeObject => ({
  apiVersion: 'k8s.cni.cncf.io/v1',
  kind: 'NetworkAttachmentDefinition',
  metadata: { name, namespace, annotations },
  spec: { config },
});

type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

export const TOKEN = 'test-token-not-a-secret';
const NAD_PREFIX = '/apis/k8s.cni.cncf.io/v1';

/** The reason kube-apiserver gives with each status code the fake answers. */
const STATUS_REASONS: Record<number, string> = {
  403: 'Forbidden',
  404: 'NotFound',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
};

type RouteParams = { namespace?: string; name?: string };

/** Which route a request takes, and the namespace and name its path (or its fieldSelector) gives. */
function routeOf(url: URL, watch: boolean): { route: Route; params: RouteParams } | undefined {
  const path = url.pathname;
  const decode = (part: string | undefined) => decodeURIComponent(part!);
  const selected = /^metadata\.name=(.+)$/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1];
  const byName = selected ? { name: selected } : {};
  if (path === `${NAD_PREFIX}/network-attachment-definitions`)
    return { route: watch ? 'nadWatch' : 'nadList', params: {} };
  const nad = /^\/apis\/k8s\.cni\.cncf\.io\/v1\/namespaces\/([^/]+)\/network-attachment-definitions\/([^/]+)$/.exec(
    path,
  );
  if (nad) return { route: 'nadGet', params: { namespace: decode(nad[1]), name: decode(nad[2]) } };
  const configMap = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/.exec(path);
  if (configMap) return { route: 'cmGet', params: { namespace: decode(configMap[1]), name: decode(configMap[2]) } };
  const configMaps = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/.exec(path);
  if (configMaps)
    return { route: watch ? 'cmWatch' : 'cmList', params: { namespace: decode(configMaps[1]), ...byName } };
  const services = /^\/apis\/serving\.knative\.dev\/v1\/namespaces\/([^/]+)\/services$/.exec(path);
  if (services)
    return { route: watch ? 'ksvcWatch' : 'ksvcList', params: { namespace: decode(services[1]), ...byName } };
  return undefined;
}

export class FakeApiServer {
  readonly nads = new Map<string, KubeObject>();
  readonly configMaps = new Map<string, KubeObject>();
  /** serving.knative.dev/v1 Services */
  readonly knativeServices = new Map<string, KubeObject>();
  readonly counts: Record<Route, number> = {
    nadGet: 0,
    nadList: 0,
    nadWatch: 0,
    cmGet: 0,
    cmList: 0,
    cmWatch: 0,
    ksvcList: 0,
    ksvcWatch: 0,
  };
  /** watches that asked for the list as their initial events (sendInitialEvents), by watched resource; counted in counts.*Watch too */
  readonly streamedLists: Record<WatchRoute, number> = { nadWatch: 0, cmWatch: 0, ksvcWatch: 0 };
  /** false: sendInitialEvents is refused with 422, as by a kube-apiserver whose WatchList gate is off */
  watchList = true;
  /** every page a LIST answered: how many objects, and the limit asked for (0: none) */
  readonly listPages: Array<{ route: Route; items: number; limit: number }> = [];
  /** sorted lists by snapshot, so that every page of one list reads the same objects */
  private readonly snapshots = new Map<string, KubeObject[]>();
  readonly requests: string[] = [];
  private readonly faults = new Map<Route, Fault>();
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Duplex>();
  private resourceVersion = 100;
  /** watches from before this resourceVersion get 410 Gone */
  private compactedBefore = 0;
  private readonly events: Array<{ rv: number; route: WatchRoute; type: string; object: KubeObject }> = [];
  private server?: Server;
  kubeconfigPath = '';
  url = '';

  constructor(private readonly pki: TestPki) {}

  async start(): Promise<void> {
    this.server = createServer(
      { cert: readFileSync(this.pki.serverCert), key: readFileSync(this.pki.serverKey) },
      (req, res) => this.handle(req, res),
    );
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `https://127.0.0.1:${port}`;
    const dir = mkdtempSync(join(tmpdir(), 'nri-kubeconfig-'));
    this.kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(
      this.kubeconfigPath,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'fake',
            cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.pki.caPem).toString('base64') },
          },
        ],
        users: [{ name: 'nri', user: { token: TOKEN } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'nri' } }],
        'current-context': 'fake',
      }),
    );
  }

  async stop(): Promise<void> {
    for (const watcher of this.watchers) watcher.response.destroy();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  fault(route: Route, fault: Fault | undefined): void {
    if (fault) this.faults.set(route, fault);
    else this.faults.delete(route);
  }

  private takeFault(route: Route): Fault | undefined {
    const fault = this.faults.get(route);
    if (!fault) return undefined;
    if (fault.after) {
      fault.after--;
      return undefined;
    }
    if (fault.times !== undefined) {
      fault.times--;
      if (fault.times <= 0) this.faults.delete(route);
    }
    return fault;
  }

  // ----- state changes, delivered to watchers -----

  private record(route: WatchRoute, type: string, object: KubeObject): void {
    const rv = ++this.resourceVersion;
    object.metadata.resourceVersion = String(rv);
    this.events.push({ rv, route, type, object: structuredClone(object) });
    for (const watcher of this.watchers) {
      if (watcher.route !== route || !this.matches(watcher, object)) continue;
      watcher.response.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  private matches(watcher: Watcher, object: KubeObject): boolean {
    return (
      (!watcher.namespace || watcher.namespace === object.metadata.namespace) &&
      (!watcher.name || watcher.name === object.metadata.name)
    );
  }

  upsertNad(
    namespace: string,
    name: string,
    annotations: Record<string, string> = {},
    config = '{"cniVersion":"0.3.1","type":"sriov"}',
  ): void {
    this.put('nadWatch', nadObject(namespace, name, annotations, config));
  }

  deleteNad(namespace: string, name: string): void {
    this.remove('nadWatch', namespace, name);
  }

  /** Adds many NADs without recording events one by one (for scale tests). */
  seedNads(objects: Array<{ namespace: string; name: string; annotations: Record<string, string> }>): void {
    for (const { namespace, name, annotations } of objects) {
      const object = nadObject(namespace, name, annotations, `{"cniVersion":"0.3.1","type":"sriov","name":"${name}"}`);
      object.metadata.resourceVersion = String(++this.resourceVersion);
      this.nads.set(`${namespace}/${name}`, object);
    }
  }

  upsertConfigMap(namespace: string, name: string, data: Record<string, string>): void {
    this.put('cmWatch', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });
  }

  deleteConfigMap(namespace: string, name: string): void {
    this.remove('cmWatch', namespace, name);
  }

  upsertKnativeService(namespace: string, name: string, spec: unknown, status: unknown): void {
    this.put('ksvcWatch', {
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec,
      status,
    } as KubeObject);
  }

  private store(route: WatchRoute): Map<string, KubeObject> {
    return route === 'nadWatch' ? this.nads : route === 'cmWatch' ? this.configMaps : this.knativeServices;
  }

  /** Creates or replaces an object and tells the watchers of its kind. */
  private put(route: WatchRoute, object: KubeObject): void {
    const store = this.store(route);
    const key = `${object.metadata.namespace}/${object.metadata.name}`;
    const type = store.has(key) ? 'MODIFIED' : 'ADDED';
    store.set(key, object);
    this.record(route, type, object);
  }

  private remove(route: WatchRoute, namespace: string, name: string): void {
    const store = this.store(route);
    const object = store.get(`${namespace}/${name}`);
    if (!object) return;
    store.delete(`${namespace}/${name}`);
    this.record(route, 'DELETED', object);
  }

  /** Forget history: open watches get 410 Gone and must re-list. */
  expireWatches(): void {
    this.compactedBefore = this.resourceVersion;
    for (const watcher of [...this.watchers]) {
      watcher.response.end(
        `${JSON.stringify({
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            reason: 'Expired',
            code: 410,
            message: 'too old resource version',
          },
        })}\n`,
      );
      this.watchers.delete(watcher);
    }
  }

  /** Lists of NADs started, paginated or streamed: a re-list shows here whichever way nri lists. */
  get nadLists(): number {
    return this.counts.nadList + this.streamedLists.nadWatch;
  }

  get currentResourceVersion(): number {
    return this.resourceVersion;
  }

  /** A BOOKMARK at the current resourceVersion to every watch that asked for them, as kube-apiserver sends about once a minute. */
  bookmark(): number {
    for (const watcher of this.watchers) {
      if (!watcher.bookmarks) continue;
      watcher.response.write(
        `${JSON.stringify({
          type: 'BOOKMARK',
          object: { kind: 'Bookmark', metadata: { resourceVersion: String(this.resourceVersion) } },
        })}\n`,
      );
    }
    return this.resourceVersion;
  }

  /** etcd compacts its history up to now; open watches go on (they are served from the watch cache). */
  compact(): void {
    this.compactedBefore = this.resourceVersion;
  }

  /** Every open watch ends as at its timeout: a clean end of the stream. */
  closeWatches(): void {
    for (const watcher of [...this.watchers]) {
      watcher.response.end();
      this.watchers.delete(watcher);
    }
  }

  /**
   * etcd restored from an older backup: the resourceVersion goes back to `rv` and open watches
   * are cut. A watch from a newer resourceVersion is then answered as kube-apiserver answers it,
   * 504 with the cause ResourceVersionTooLarge, until the server's history catches up.
   */
  restoreFromBackup(rv: number): void {
    this.resourceVersion = rv;
    this.dropWatches();
  }

  /** Cut every watch stream without a word. */
  dropWatches(): void {
    for (const watcher of [...this.watchers]) {
      watcher.response.socket?.destroy();
      this.watchers.delete(watcher);
    }
  }

  /** Send a line of garbage on every open watch. */
  garbleWatches(): void {
    for (const watcher of this.watchers) watcher.response.write('this is {not json\n');
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  // ----- HTTP -----

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private status(res: ServerResponse, code: number, message: string): void {
    const reason = STATUS_REASONS[code] ?? 'InternalError';
    this.send(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://fake');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return this.status(res, 401, 'Unauthorized');
    const watch = url.searchParams.get('watch') === 'true';
    const matched = routeOf(url, watch);
    if (!matched) return this.status(res, 404, `the fake API server has no ${url.pathname}`);
    const { route, params } = matched;
    this.counts[route]++;
    const fault = this.takeFault(route);
    const proceed = () => {
      if (fault?.hang) return; // never answer
      if (fault?.status && !fault.garbage) return this.status(res, fault.status, `injected fault ${fault.status}`);
      this.serve(route, params, url, res, fault);
    };
    if (fault?.delayMs) setTimeout(proceed, fault.delayMs);
    else proceed();
  }

  private list(route: WatchRoute, params: { namespace?: string; name?: string }): KubeObject[] {
    const source = this.store(route);
    return [...source.values()].filter(
      (object) =>
        (!params.namespace || object.metadata.namespace === params.namespace) &&
        (!params.name || object.metadata.name === params.name),
    );
  }

  private serve(
    route: Route,
    params: { namespace?: string; name?: string },
    url: URL,
    res: ServerResponse,
    fault: Fault | undefined,
  ): void {
    switch (route) {
      case 'nadGet': {
        const object = this.nads.get(`${params.namespace}/${params.name}`);
        return object
          ? this.send(res, 200, object)
          : this.status(res, 404, `network-attachment-definitions "${params.name}" not found`);
      }
      case 'cmGet': {
        const object = this.configMaps.get(`${params.namespace}/${params.name}`);
        return object ? this.send(res, 200, object) : this.status(res, 404, `configmaps "${params.name}" not found`);
      }
      case 'nadList':
      case 'cmList':
      case 'ksvcList': {
        // Pages as kube-apiserver serves them from etcd: `limit` objects in key order from one
        // snapshot, and a continue token naming the snapshot's resourceVersion and the last key.
        // A token from before a compaction is refused with 410 Expired, as etcd's is.
        const limit = Number(url.searchParams.get('limit') || '0');
        const token = url.searchParams.get('continue');
        const keyOf = (object: KubeObject) => `${object.metadata.namespace}/${object.metadata.name}`;
        let after = '';
        let snapshot = this.resourceVersion;
        if (token) {
          const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { rv: number; after: string };
          if (parsed.rv < this.compactedBefore)
            return this.status(
              res,
              410,
              'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
            );
          [after, snapshot] = [parsed.after, parsed.rv];
        }
        const snapshotKey = `${route} ${params.namespace ?? ''} ${params.name ?? ''} ${snapshot}`;
        let sorted = this.snapshots.get(snapshotKey);
        if (!sorted) {
          sorted = this.list(watchRouteOf(route), params).sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
          if (this.snapshots.size >= 4) this.snapshots.clear();
          this.snapshots.set(snapshotKey, sorted);
        }
        let start = 0;
        if (after !== '') {
          // the first key past `after` (binary search: a list of 100,000 is read in 200 pages)
          let high = sorted.length;
          while (start < high) {
            const middle = (start + high) >> 1;
            if (keyOf(sorted[middle]!) <= after) start = middle + 1;
            else high = middle;
          }
        }
        const items = limit > 0 ? sorted.slice(start, start + limit) : sorted.slice(start);
        const more =
          start + items.length < sorted.length
            ? {
                continue: Buffer.from(JSON.stringify({ rv: snapshot, after: keyOf(items.at(-1)!) })).toString('base64'),
              }
            : {};
        const metadata = { resourceVersion: String(snapshot), ...more };
        this.listPages.push({ route, items: items.length, limit });
        return this.send(res, 200, { apiVersion: 'v1', kind: 'List', metadata, items });
      }
      case 'nadWatch':
      case 'cmWatch':
      case 'ksvcWatch': {
        const from = Number(url.searchParams.get('resourceVersion') || '0');
        const stream = url.searchParams.get('sendInitialEvents') === 'true';
        if (stream && !this.watchList) {
          return this.status(
            res,
            422,
            'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled',
          );
        }
        if (stream && url.searchParams.get('resourceVersionMatch') !== 'NotOlderThan') {
          return this.status(
            res,
            422,
            'resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
          );
        }
        if (from > this.resourceVersion) {
          const message = `Too large resource version: ${from}, current: ${this.resourceVersion}`;
          return this.send(res, 504, {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message,
            reason: 'Timeout',
            details: {
              causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
              retryAfterSeconds: 1,
            },
            code: 504,
          });
        }
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.flushHeaders(); // as the real API server does: the watch is open before any event
        if (fault?.silent) return;
        if (!stream && from < this.compactedBefore) {
          res.end(
            `${JSON.stringify({
              type: 'ERROR',
              object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' },
            })}\n`,
          );
          return;
        }
        const watcher: Watcher = {
          route,
          response: res,
          bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
          ...params,
        };
        if (stream) {
          // WatchList: every object as ADDED, then the bookmark that ends the initial events.
          this.streamedLists[route]++;
          for (const object of this.list(route, params)) res.write(`${JSON.stringify({ type: 'ADDED', object })}\n`);
          const end = {
            kind: 'Bookmark',
            metadata: {
              resourceVersion: String(this.resourceVersion),
              annotations: { 'k8s.io/initial-events-end': 'true' },
            },
          };
          res.write(`${JSON.stringify({ type: 'BOOKMARK', object: end })}\n`);
        } else {
          for (const event of this.events) {
            if (event.route === route && event.rv > from && this.matches(watcher, event.object))
              res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
          }
        }
        if (fault?.garbage) res.write('garbage that is {not json\n');
        this.watchers.add(watcher);
        res.on('close', () => this.watchers.delete(watcher));
        const timeout = Number(url.searchParams.get('timeoutSeconds') || '0');
        if (timeout > 0) {
          const timer = setTimeout(() => {
            this.watchers.delete(watcher);
            res.end();
          }, timeout * 1000);
          timer.unref();
          res.on('close', () => clearTimeout(timer));
        }
        return;
      }
    }
  }
}
