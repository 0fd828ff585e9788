// List, then watch from the list's resourceVersion, forever: re-watch when a
// stream ends, re-list on 410 Gone, back off on errors, and give up on a watch
// that has been silent for longer than the server promised to keep it open.
// A (re-)list arrives page by page into a fresh copy that replaces the live one
// only once the list is whole; until then lookups keep the previous copy.
import { KubeApiError, type KubeClient, type PageConsumer, type WatchEvent } from './kube-client.js';

export type RestartCause = 'closed' | 'gone' | 'error' | 'silent';

export interface ReflectorOptions {
  kube: KubeClient;
  /** the whole list, page by page; resolves with its resourceVersion */
  list(onPage: PageConsumer): Promise<string>;
  watchPath: string;
  watchQuery?: Record<string, string>;
  /** the server closes each watch after this; a silent stream is given up a little later */
  watchTimeoutSeconds: number;
  /** a fresh copy to fill from a list, beside the live one */
  beginReplace(): Replacement;
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void;
  /** after each successful list */
  onSynced?(): void;
  onRestart(cause: RestartCause, error?: KubeApiError): void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Waits ms, or less if stopped; leaves no listener behind on the signal either way. */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    timer.unref();
    signal.addEventListener('abort', wake, { once: true });
  });

/** A copy being filled by a list: it replaces the live one on commit, and is dropped if the list fails. */
export interface Replacement {
  add(items: unknown[]): void;
  commit(): void;
}

class Gone extends Error {}

export class Reflector {
  private resourceVersion = '';
  private readonly stopper = new AbortController();
  private current?: { abort(): void };
  private running?: Promise<void>;
  private failures = 0;
  /** whether the last watch delivered any object: a sign the connection was healthy */
  private sawEvents = false;

  constructor(private readonly options: ReflectorOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.current?.abort();
    await this.running;
  }

  private backoffMs(): number {
    const { initialBackoffMs = 250, maxBackoffMs = 30000 } = this.options;
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(this.failures - 1, 16));
    return base / 2 + Math.random() * (base / 2); // jitter so replicas do not retry in step
  }

  private async loop(): Promise<void> {
    const { options } = this;
    while (!this.stopper.signal.aborted) {
      const started = Date.now();
      let cause: RestartCause;
      let error: KubeApiError | undefined;
      try {
        if (this.resourceVersion === '') {
          const replacement = options.beginReplace();
          const version = await options.list((items) => replacement.add(items));
          if (this.stopper.signal.aborted) return;
          replacement.commit();
          this.resourceVersion = version;
          options.onSynced?.();
        }
        cause = await this.watchOnce();
      } catch (failure) {
        if (this.stopper.signal.aborted) return;
        // 410 on a watch, or on a list's continue token after a compaction: list afresh.
        if (failure instanceof Gone || (failure instanceof KubeApiError && failure.kind === 'expired')) {
          this.resourceVersion = '';
          cause = 'gone';
        } else {
          cause = 'error';
          error = failure instanceof KubeApiError ? failure : new KubeApiError('other', String(failure));
        }
      }
      if (this.stopper.signal.aborted) return;
      options.onRestart(cause, error);
      // Errors, and streams that end within a second (a server closing every
      // watch at once, 410 right after a fresh list), back off exponentially
      // so that no failure mode makes us spin against the API server.
      if (error || (Date.now() - started < 1000 && !this.sawEvents)) {
        this.failures++;
        await sleep(this.backoffMs(), this.stopper.signal);
      } else {
        this.failures = 0;
      }
    }
  }

  private watchOnce(): Promise<RestartCause> {
    const { options } = this;
    const query: Record<string, string> = {
      ...options.watchQuery,
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(options.watchTimeoutSeconds),
    };
    let gone = false;
    let silent = false;
    this.sawEvents = false;
    let watchdog: NodeJS.Timeout | undefined;
    const silenceMs = options.watchTimeoutSeconds * 1200 + 1000;
    const handle = options.kube.watch(options.watchPath, query, (event: WatchEvent) => {
      armWatchdog();
      this.onEvent(event, () => {
        gone = true;
        handle.abort();
      });
    });
    const armWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        handle.abort();
      }, silenceMs);
      watchdog.unref();
    };
    armWatchdog();
    this.current = handle;
    return handle.done.then(
      () => {
        clearTimeout(watchdog);
        if (gone) throw new Gone();
        return silent ? 'silent' : 'closed';
      },
      (error) => {
        clearTimeout(watchdog);
        throw error;
      },
    );
  }

  private onEvent(event: WatchEvent, markGone: () => void): void {
    const object = event.object as { metadata?: { resourceVersion?: unknown }; code?: unknown } | undefined;
    if (event.type === 'ERROR') {
      if (object?.code === 410) markGone();
      else throw new KubeApiError('server_error', `the watch sent an error event: ${JSON.stringify(object).slice(0, 200)}`);
      return;
    }
    if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED') this.options.apply(event.type, object);
    else if (event.type !== 'BOOKMARK') return;
    this.sawEvents = true;
    this.failures = 0; // the connection works again: the next failure starts the backoff afresh
    const version = object?.metadata?.resourceVersion;
    if (typeof version === 'string' && version !== '') this.resourceVersion = version;
  }
}

/**
 * A Reflector on the one object of a collection with this name (a ConfigMap, a Knative Service):
 * listed and watched with a field selector on the name, which RBAC that grants only that
 * resourceName allows. `onObject` gets the object after each list and each change, and
 * undefined when a list finds none or the object is deleted.
 */
export function namedObjectReflector(options: {
  kube: KubeClient;
  /** the collection, e.g. /api/v1/namespaces/<ns>/configmaps */
  collectionPath: string;
  name: string;
  watchTimeoutSeconds: number;
  onObject(object: unknown | undefined): void;
  onRestart: ReflectorOptions['onRestart'];
}): Reflector {
  const { kube, collectionPath, name, onObject } = options;
  const named = (object: unknown) => (object as { metadata?: { name?: unknown } } | null)?.metadata?.name === name;
  return new Reflector({
    kube,
    list: (onPage) => kube.listNamed(collectionPath, name, onPage),
    watchPath: collectionPath,
    watchQuery: { fieldSelector: `metadata.name=${name}` },
    watchTimeoutSeconds: options.watchTimeoutSeconds,
    beginReplace: () => {
      let found: unknown;
      return {
        add: (items) => void (found ??= items.find(named)),
        commit: () => onObject(found),
      };
    },
    apply: (type, object) => {
      if (named(object)) onObject(type === 'DELETED' ? undefined : object);
    },
    onRestart: options.onRestart,
  });
}
