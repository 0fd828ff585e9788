// The Kubernetes API as the injector uses it: a bounded-time GET and LIST via
// @kubernetes/client-node, and a watch stream over node:https using the same
// kubeconfig credentials. Only names already validated reach a URL, and each
// path segment is URL-encoded on top.
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { CoreV1Api, CustomObjectsApi, KubeConfig, ObservableMiddleware } from '@kubernetes/client-node';
import type { ApiErrorKind } from '../observability/metrics.js';
import type { ClientNode } from './load-client-node.js';

export const NAD_GROUP = 'k8s.cni.cncf.io';
export const NAD_VERSION = 'v1';
export const NAD_PLURAL = 'network-attachment-definitions';
export const NAD_LIST_PATH = `/apis/${NAD_GROUP}/${NAD_VERSION}/${NAD_PLURAL}`;

export class KubeApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface ListResult {
  items: unknown[];
  resourceVersion: string;
}

export type WatchEvent = { type: string; object: unknown };

export interface WatchHandle {
  /** resolves when the stream ends by itself; rejects on an HTTP or network error */
  done: Promise<void>;
  abort(): void;
}

export interface KubeClient {
  getNad(namespace: string, name: string): Promise<unknown | undefined>;
  listNads(): Promise<ListResult>;
  listConfigMap(namespace: string, name: string): Promise<ListResult>;
  watch(path: string, query: Record<string, string>, onEvent: (event: WatchEvent) => void): WatchHandle;
  describe(): { server: string };
}


/** Turns anything client-node or node:https throws into a classified, readable error. */
export function classifyError(error: unknown, timeoutMs: number): KubeApiError {
  if (error instanceof KubeApiError) return error;
  const err = error as { code?: unknown; name?: string; message?: string; body?: unknown; type?: string };
  if (typeof err?.code === 'number') {
    const status = err.code;
    let detail = '';
    try {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      if (body && typeof body.message === 'string') detail = `: ${body.message}`;
    } catch {
      /* body was not JSON; the status says enough */
    }
    const kind: ApiErrorKind = status === 403 || status === 401 ? 'forbidden' : status === 429 ? 'throttled' : status >= 500 ? 'server_error' : 'other';
    return new KubeApiError(kind, `the API server answered ${status}${detail.slice(0, 300)}`);
  }
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError' || err?.type === 'aborted') {
    return new KubeApiError('timeout', `no answer from the API server within ${timeoutMs} ms`);
  }
  return new KubeApiError('network', `cannot reach the API server: ${err?.message ?? String(error)}`);
}

/** client-node has no per-call timeout; this middleware gives each call an abort deadline. */
function timeoutMiddleware(lib: ClientNode, ms: number): ObservableMiddleware {
  return {
    pre: (context) => {
      context.setSignal(AbortSignal.timeout(ms));
      return new lib.Observable(Promise.resolve(context));
    },
    post: (context) => new lib.Observable(Promise.resolve(context)),
  };
}

export function createKubeClient(lib: ClientNode, config: KubeConfig, timeoutMs: number, listTimeoutMs = Math.max(timeoutMs, 30000)): KubeClient {
  const custom: CustomObjectsApi = config.makeApiClient(lib.CustomObjectsApi);
  const core: CoreV1Api = config.makeApiClient(lib.CoreV1Api);
  const short = { middleware: [timeoutMiddleware(lib, timeoutMs)], middlewareMergeStrategy: 'append' as const };
  const long = { middleware: [timeoutMiddleware(lib, listTimeoutMs)], middlewareMergeStrategy: 'append' as const };
  const server = config.getCurrentCluster()?.server ?? '';

  const asList = (list: { items?: unknown[]; metadata?: { resourceVersion?: string } }): ListResult => {
    if (!list || !Array.isArray(list.items)) throw new KubeApiError('bad_response', 'the API server sent a list without items');
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  };

  return {
    describe: () => ({ server }),
    async getNad(namespace, name) {
      try {
        // client-node URL-encodes every path parameter; namespace and name are DNS labels already.
        return await custom.getNamespacedCustomObject({ group: NAD_GROUP, version: NAD_VERSION, plural: NAD_PLURAL, namespace, name }, short);
      } catch (error) {
        if ((error as { code?: unknown })?.code === 404) return undefined;
        throw classifyError(error, timeoutMs);
      }
    },
    async listNads() {
      try {
        return asList(await custom.listClusterCustomObject({ group: NAD_GROUP, version: NAD_VERSION, plural: NAD_PLURAL }, long));
      } catch (error) {
        throw classifyError(error, listTimeoutMs);
      }
    },
    async listConfigMap(namespace, name) {
      try {
        return asList(await core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${name}` }, long));
      } catch (error) {
        throw classifyError(error, listTimeoutMs);
      }
    },
    watch(path, query, onEvent) {
      return openWatch(config, server, path, query, onEvent, timeoutMs);
    },
  };
}

/**
 * A watch stream with a connect deadline. client-node's own Watch cannot be
 * aborted before the response headers arrive and drops unparsable lines
 * silently; here both are errors the reflector sees and recovers from.
 */
function openWatch(
  config: KubeConfig,
  server: string,
  path: string,
  query: Record<string, string>,
  onEvent: (event: WatchEvent) => void,
  connectTimeoutMs: number,
): WatchHandle {
  const controller = new AbortController();
  const done = (async () => {
    const url = new URL(server.replace(/\/+$/, '') + path);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    url.searchParams.set('watch', 'true');
    const options: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    await config.applyToHTTPSOptions(options);
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
      const request = send(url, { ...options, signal: controller.signal }, resolve);
      const deadline = setTimeout(() => request.destroy(new KubeApiError('timeout', `no answer to the watch within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      request.once('response', () => clearTimeout(deadline));
      // 'on', not 'once': an aborted request can report more than one error.
      request.on('error', (error) => {
        clearTimeout(deadline);
        reject(error);
      });
      request.end();
    });
    if (response.statusCode !== 200) {
      let body = '';
      response.setEncoding('utf8');
      for await (const chunk of response) if (body.length < 4096) body += chunk;
      throw classifyError({ code: response.statusCode, body }, connectTimeoutMs);
    }
    // Errors surface through the line iterator below; this listener only keeps a
    // late 'aborted' from the socket from becoming an uncaught exception.
    response.on('error', () => undefined);
    const lines = createInterface({ input: response, crlfDelay: Infinity });
    lines.on('error', () => undefined); // likewise re-emitted input errors, after the loop has ended
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line);
        } catch {
          throw new KubeApiError('bad_response', `the watch stream sent a line that is not JSON: ${line.slice(0, 80)}`);
        }
        if (!event || typeof event.type !== 'string') throw new KubeApiError('bad_response', 'the watch stream sent an event without a type');
        onEvent(event);
      }
      if (!response.complete && !controller.signal.aborted) throw new KubeApiError('network', 'the watch stream was cut off');
    } finally {
      lines.close();
      response.destroy();
    }
  })().catch((error: unknown) => {
    if (controller.signal.aborted) return;
    throw classifyError(error, connectTimeoutMs);
  });
  return { done, abort: () => controller.abort() };
}
