// The Kubernetes API as the injector uses it: bounded-time GETs, LISTs and
// watch streams over node:https, with the credentials and TLS settings
// @kubernetes/client-node derives from the kubeconfig or the service account.
// (Its generated API classes, two thirds of its code, would double its load
// time at every cold start for three simple GETs.) Only names already
// validated reach a URL, and each path segment is URL-encoded on top.
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';

export const NAD_GROUP = 'k8s.cni.cncf.io';
export const NAD_VERSION = 'v1';
export const NAD_PLURAL = 'network-attachment-definitions';
export const NAD_LIST_PATH = `/apis/${NAD_GROUP}/${NAD_VERSION}/${NAD_PLURAL}`;

/** How a Kubernetes API call failed, as metrics and logs name it. */
export type ApiErrorKind =
  | 'timeout'
  | 'forbidden'
  | 'throttled'
  | 'server_error'
  | 'network'
  | 'bad_response'
  | 'expired'
  | 'too_large'
  | 'not_found'
  | 'other';

export class KubeApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** A metav1.Status as the API server sends it with an error, in an HTTP body or a watch ERROR event. */
export interface ApiStatus {
  code?: unknown;
  message?: unknown;
  details?: { causes?: Array<{ reason?: unknown }> };
}

/**
 * How the API server's Status classifies. A resourceVersion newer than the server has seen (a
 * replica that read a newer one from another server, or an etcd restored from a backup) is
 * answered 504 with the cause ResourceVersionTooLarge; like client-go, nri then lists afresh.
 */
export function statusKind(code: number, status: ApiStatus | undefined): ApiErrorKind {
  const tooLarge =
    status?.details?.causes?.some((cause) => cause?.reason === 'ResourceVersionTooLarge') ||
    (typeof status?.message === 'string' && status.message.includes('Too large resource version'));
  if (tooLarge) return 'too_large';
  if (code === 403 || code === 401) return 'forbidden';
  if (code === 404) return 'not_found';
  if (code === 429) return 'throttled';
  if (code === 410) return 'expired';
  return code >= 500 ? 'server_error' : 'other';
}

/** Receives a list one page at a time, so that no moment holds all of it. */
export type PageConsumer = (items: unknown[]) => void;

/** Objects a LIST asks for at a time: client-go's pager uses the same. */
export const LIST_PAGE_SIZE = 500;

export type WatchEvent = { type: string; object: unknown };

export interface WatchHandle {
  /** resolves when the stream ends by itself; rejects on an HTTP or network error */
  done: Promise<void>;
  abort(): void;
}

export interface KubeClient {
  getNad(namespace: string, name: string): Promise<unknown | undefined>;
  /** Every NAD of the cluster, page by page; resolves with the list's resourceVersion; `signal` cuts it short. */
  listNads(onPage: PageConsumer, signal?: AbortSignal): Promise<string>;
  /** The one object of a collection (a path such as /apis/g/v/namespaces/ns/things) with this name, as a list. */
  listNamed(collectionPath: string, name: string, onPage: PageConsumer, signal?: AbortSignal): Promise<string>;
  /** one ConfigMap, or undefined when there is none */
  getConfigMap(namespace: string, name: string): Promise<unknown | undefined>;
  /** Every object of a collection (a path such as /apis/g/v/things), page by page; resolves with the list's resourceVersion. */
  listAll(collectionPath: string, onPage: PageConsumer, signal?: AbortSignal): Promise<string>;
  /** One object by its path, or undefined when there is none (the caller has checked the path's names). */
  getObject(path: string): Promise<unknown | undefined>;
  watch(path: string, query: Record<string, string>, onEvent: (event: WatchEvent) => void): WatchHandle;
  describe(): { server: string };
}

/** Turns anything a request to the API server throws into a classified, readable error. */
export function classifyError(error: unknown, timeoutMs: number): KubeApiError {
  if (error instanceof KubeApiError) return error;
  const err = error as { code?: unknown; name?: string; message?: string; body?: unknown; type?: string };
  if (typeof err?.code === 'number') {
    const status = err.code;
    let body: ApiStatus | undefined;
    try {
      body = typeof err.body === 'string' ? JSON.parse(err.body) : (err.body as ApiStatus | undefined);
    } catch {
      /* body was not JSON; the status says enough */
    }
    const detail = body && typeof body.message === 'string' ? `: ${body.message}` : '';
    return new KubeApiError(statusKind(status, body), `the API server answered ${status}${detail.slice(0, 300)}`);
  }
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError' || err?.type === 'aborted') {
    return new KubeApiError('timeout', `no answer from the API server within ${timeoutMs} ms`);
  }
  return new KubeApiError('network', `cannot reach the API server: ${err?.message ?? String(error)}`);
}

/**
 * A LIST read a page at a time (`limit`, then `continue`), as client-go's pager
 * does: each page is parsed, handed on and dropped before the next is asked
 * for, and each has its own deadline, so a large healthy list never times out
 * as a whole. The pages are one consistent snapshot; an expired continue token
 * (410) fails the list, to be started again from the first page.
 */
async function listPages(
  get: (query: Record<string, string>) => Promise<unknown>,
  query: Record<string, string>,
  onPage: PageConsumer,
  pageSize: number,
): Promise<string> {
  let next = '';
  for (;;) {
    const page = (await get({ ...query, limit: String(pageSize), ...(next ? { continue: next } : {}) })) ?? {};
    const { items, metadata } = page as {
      items?: unknown;
      metadata?: { resourceVersion?: unknown; continue?: unknown };
    };
    if (!Array.isArray(items)) throw new KubeApiError('bad_response', 'the API server sent a list without items');
    onPage(items);
    next = typeof metadata?.continue === 'string' ? metadata.continue : '';
    if (next === '') return typeof metadata?.resourceVersion === 'string' ? metadata.resourceVersion : '';
  }
}

export function createKubeClient(
  config: KubeConfig,
  timeoutMs: number,
  listTimeoutMs = Math.max(timeoutMs, 30000),
  pageSize = LIST_PAGE_SIZE,
): KubeClient {
  const server = config.getCurrentCluster()?.server ?? '';
  const segment = encodeURIComponent;
  // A field selector on the name: RBAC that grants only this resourceName allows the list and the watch.
  const listNamed = (collectionPath: string, name: string, onPage: PageConsumer, signal?: AbortSignal) =>
    listPages(
      (query) => getJson(config, server, collectionPath, query, listTimeoutMs, undefined, signal),
      { fieldSelector: `metadata.name=${name}` },
      onPage,
      pageSize,
    );
  const nadPath = (namespace: string, name: string) =>
    `/apis/${NAD_GROUP}/${NAD_VERSION}/namespaces/${segment(namespace)}/${NAD_PLURAL}/${segment(name)}`;

  return {
    describe: () => ({ server }),
    // A missing NAD is an answer; a missing list (no NAD CRD installed) is an error.
    getNad: (namespace, name) =>
      getJson(config, server, nadPath(namespace, name), {}, timeoutMs, { missing: undefined }),
    listNads: (onPage, signal) =>
      listPages(
        (query) => getJson(config, server, NAD_LIST_PATH, query, listTimeoutMs, undefined, signal),
        {},
        onPage,
        pageSize,
      ),
    getConfigMap: (namespace, name) =>
      getJson(config, server, `/api/v1/namespaces/${segment(namespace)}/configmaps/${segment(name)}`, {}, timeoutMs, {
        missing: undefined,
      }),
    listNamed,
    listAll: (collectionPath, onPage, signal) =>
      listPages(
        (query) => getJson(config, server, collectionPath, query, listTimeoutMs, undefined, signal),
        {},
        onPage,
        pageSize,
      ),
    getObject: (path) => getJson(config, server, path, {}, timeoutMs, { missing: undefined }),
    watch(path, query, onEvent) {
      return openWatch(config, server, path, query, onEvent, timeoutMs);
    },
  };
}

/** The request options for a path on the API server, with the kubeconfig's credentials and TLS settings applied. */
async function apiRequest(
  config: KubeConfig,
  server: string,
  path: string,
  query: Record<string, string>,
): Promise<{ url: URL; options: RequestOptions }> {
  const url = new URL(server.replace(/\/+$/, '') + path);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  const options: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await config.applyToHTTPSOptions(options);
  return { url, options };
}

/**
 * One GET whose whole exchange has a deadline: the parsed body of a 2xx answer;
 * for a 404, `notFound.missing` when given; anything else a classified KubeApiError.
 * `stop` ends it early (a replica shutting down in the middle of a long list).
 */
async function getJson(
  config: KubeConfig,
  server: string,
  path: string,
  query: Record<string, string>,
  timeoutMs: number,
  notFound?: { missing: unknown },
  stop?: AbortSignal,
): Promise<unknown> {
  try {
    const { url, options } = await apiRequest(config, server, path, query);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
      const deadline = AbortSignal.timeout(timeoutMs);
      const request = send(
        url,
        { ...options, signal: stop ? AbortSignal.any([deadline, stop]) : deadline },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          response.on('error', reject);
        },
      );
      // 'on', not 'once': an aborted request can report more than one error.
      request.on('error', reject);
      request.end();
    });
    if (status === 404 && notFound) return notFound.missing;
    if (status < 200 || status > 299) throw classifyError({ code: status, body: text }, timeoutMs);
    try {
      return JSON.parse(text);
    } catch {
      throw new KubeApiError('bad_response', `the API server answered ${status} with a body that is not JSON`);
    }
  } catch (error) {
    throw classifyError(error, timeoutMs);
  }
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
    const { url, options } = await apiRequest(config, server, path, { ...query, watch: 'true' });
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
      const request = send(url, { ...options, signal: controller.signal }, resolve);
      const deadline = setTimeout(
        () => request.destroy(new KubeApiError('timeout', `no answer to the watch within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
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
        if (!event || typeof event.type !== 'string')
          throw new KubeApiError('bad_response', 'the watch stream sent an event without a type');
        onEvent(event);
      }
      if (!response.complete && !controller.signal.aborted)
        throw new KubeApiError('network', 'the watch stream was cut off');
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
