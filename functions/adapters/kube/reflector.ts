// List, then watch from the list's resourceVersion, forever: re-watch when a
// stream ends, re-list on 410 Gone or a resourceVersion the server has not
// reached, back off on errors, and give up on a watch that has been silent for
// longer than the server promised to keep it open. Where the API server offers
// it (WatchList, on by default since Kubernetes 1.34), the list itself arrives
// as the first events of a watch (sendInitialEvents), else page by page.
// Either way it fills a fresh copy that replaces the live one only once the
// list is whole; until then lookups keep the previous copy.
import {
  KubeApiError,
  statusKind,
  type ApiStatus,
  type KubeClient,
  type PageConsumer,
  type WatchEvent,
  type WatchHandle,
} from './kube-client.js';

export type RestartCause = 'closed' | 'gone' | 'error' | 'silent';

/** How a (re-)list arrived: as the first events of a watch, or as paginated LISTs. */
export type ListMode = 'stream' | 'pages';

export interface ReflectorOptions {
  kube: KubeClient;
  /** the whole list, page by page; resolves with its resourceVersion; stops early when `signal` aborts */
  list(onPage: PageConsumer, signal: AbortSignal): Promise<string>;
  watchPath: string;
  watchQuery?: Record<string, string>;
  /**
   * The shortest time the server is asked to keep a watch open; each watch asks for a random
   * time between this and twice this, as client-go does, so that replicas started together
   * do not re-watch in step. A silent stream is given up a little after the time asked for.
   */
  watchTimeoutSeconds: number;
  /** ask for the list as the watch's initial events where the server offers it (default: false: a list of one named object gains nothing) */
  streamingList?: boolean;
  /** a fresh copy to fill from a list, beside the live one */
  beginReplace(mode: ListMode): Replacement;
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void;
  /** after each successful list */
  onSynced?(): void;
  onRestart(cause: RestartCause, error?: KubeApiError): void;
  /** the server does not stream lists: from now on lists go page by page */
  onStreamingUnavailable?(reason: string): void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** the backoff starts afresh only after this long without a failure (client-go: 2 minutes) */
  resetBackoffAfterMs?: number;
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

/** The bookmark that ends a streamed list's initial events (metav1.InitialEventsAnnotationKey). */
export const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

/** The list must start again from nothing: 410 Gone, or a resourceVersion the server has not reached. */
class Relist extends Error {}

/** A streamed list under way: its copy, until the bookmark that ends the initial events. */
interface Stream {
  replacement: Replacement;
  ended: boolean;
}

/** An event's object: a Kubernetes object, a bookmark, or (ERROR) a metav1.Status. */
type EventObject =
  | ({ metadata?: { resourceVersion?: unknown; annotations?: Record<string, unknown> } } & ApiStatus)
  | undefined;

export class Reflector {
  private resourceVersion = '';
  private readonly stopper = new AbortController();
  private current?: { abort(): void };
  private running?: Promise<void>;
  private failures = 0;
  private lastFailureAt = 0;
  private streaming: boolean;

  constructor(private readonly options: ReflectorOptions) {
    this.streaming = options.streamingList ?? false;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Ends the loop, cutting short a list or watch under way and any backoff. */
  async stop(): Promise<void> {
    this.stopper.abort();
    this.current?.abort();
    await this.running;
  }

  /** The wait before the next attempt. The count of failures in a row is forgotten only after a quiet interval, never by one event. */
  private backoffMs(now: number): number {
    const { initialBackoffMs = 800, maxBackoffMs = 30000, resetBackoffAfterMs = 120000 } = this.options;
    if (now - this.lastFailureAt > resetBackoffAfterMs) this.failures = 0;
    this.failures++;
    this.lastFailureAt = now;
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(this.failures - 1, 16));
    return base / 2 + Math.random() * (base / 2); // jitter so replicas do not retry in step
  }

  private async loop(): Promise<void> {
    const { options } = this;
    while (!this.stopper.signal.aborted) {
      const started = Date.now();
      let cause: RestartCause;
      let error: KubeApiError | undefined;
      let sawEvents = false;
      const seen = () => {
        sawEvents = true;
      };
      try {
        if (this.resourceVersion === '' && this.streaming) {
          cause = await this.watchOnce(seen, { replacement: options.beginReplace('stream'), ended: false });
        } else {
          if (this.resourceVersion === '') await this.listInPages();
          cause = await this.watchOnce(seen);
        }
      } catch (failure) {
        if (this.stopper.signal.aborted) return;
        if (
          failure instanceof Relist ||
          (failure instanceof KubeApiError && (failure.kind === 'expired' || failure.kind === 'too_large'))
        ) {
          // 410 on a watch or on a list's continue token after a compaction, or a resourceVersion
          // newer than this server has (client-go lists afresh on both): list from nothing.
          this.resourceVersion = '';
          cause = 'gone';
        } else {
          cause = 'error';
          error = failure instanceof KubeApiError ? failure : new KubeApiError('other', String(failure));
          // The server refused the streamed list itself (422 where WatchList is off): list in pages.
          if (
            this.streaming &&
            this.resourceVersion === '' &&
            failure instanceof KubeApiError &&
            failure.kind === 'other'
          )
            this.stopStreaming(failure.message);
        }
      }
      if (this.stopper.signal.aborted) return;
      options.onRestart(cause, error);
      // Errors, and streams that end within a second with nothing in them (a server closing
      // every watch at once, 410 right after a fresh list), back off exponentially so that no
      // failure mode makes us spin against the API server.
      const now = Date.now();
      if (error || (now - started < 1000 && !sawEvents)) await sleep(this.backoffMs(now), this.stopper.signal);
    }
  }

  /** A server that refuses sendInitialEvents (WatchList off: 422) or ignores it: lists go page by page. */
  private stopStreaming(reason: string): void {
    this.streaming = false;
    this.options.onStreamingUnavailable?.(reason);
  }

  private async listInPages(): Promise<void> {
    const { options } = this;
    const replacement = options.beginReplace('pages');
    const version = await options.list((items) => replacement.add(items), this.stopper.signal);
    this.stopper.signal.throwIfAborted(); // stopped as the last page came: no watch after it
    replacement.commit();
    this.resourceVersion = version;
    options.onSynced?.();
  }

  private watchOnce(seen: () => void, stream?: Stream): Promise<RestartCause> {
    const { options } = this;
    if (this.stopper.signal.aborted) return Promise.resolve('closed');
    const timeoutSeconds = Math.floor(options.watchTimeoutSeconds * (1 + Math.random()));
    const query: Record<string, string> = {
      ...options.watchQuery,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
      // A streamed list: every object as an ADDED event, then a bookmark that says so.
      ...(stream
        ? { sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan' }
        : { resourceVersion: this.resourceVersion }),
    };
    let relist = false;
    let silent = false;
    let failure: KubeApiError | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let watch: WatchHandle | undefined;
    let ended = false;
    const end = () => {
      ended = true;
      watch?.abort();
    };
    const silenceMs = timeoutSeconds * 1200 + 1000;
    const armWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        end();
      }, silenceMs);
      watchdog.unref();
    };
    armWatchdog();
    watch = options.kube.watch(options.watchPath, query, (event: WatchEvent) => {
      if (relist || failure) return;
      armWatchdog();
      try {
        if (this.onEvent(event, stream) === 'relist') relist = true;
        else seen();
      } catch (error) {
        failure = error instanceof KubeApiError ? error : new KubeApiError('other', String(error));
      }
      if (relist || failure) end();
    });
    if (ended) watch.abort(); // an event that ended the watch came before the handle did
    this.current = watch;
    return watch.done.then(
      () => {
        clearTimeout(watchdog);
        if (relist) throw new Relist();
        if (failure) throw failure;
        // A stream that ended before the end of its initial events is a list that did not finish.
        if (stream && !stream.ended && !silent && !this.stopper.signal.aborted)
          throw new KubeApiError('network', 'the watch ended before the list it streams was complete');
        return silent ? 'silent' : 'closed';
      },
      (error) => {
        clearTimeout(watchdog);
        throw error;
      },
    );
  }

  /** One event of a watch; 'relist' when the watch must end and the list start afresh. */
  private onEvent(event: WatchEvent, stream: Stream | undefined): 'relist' | undefined {
    const object = event.object as EventObject;
    if (event.type === 'ERROR') {
      const kind = statusKind(typeof object?.code === 'number' ? object.code : 0, object);
      if (kind === 'expired' || kind === 'too_large') return 'relist';
      throw new KubeApiError('server_error', `the watch sent an error event: ${JSON.stringify(object).slice(0, 200)}`);
    }
    const version = object?.metadata?.resourceVersion;
    if (stream && !stream.ended) {
      if (event.type === 'BOOKMARK') {
        if (object?.metadata?.annotations?.[INITIAL_EVENTS_END] !== 'true') {
          // A server that ignores sendInitialEvents (before Kubernetes 1.27) never ends them.
          this.stopStreaming('the API server sent a bookmark that does not end the streamed list');
          throw new KubeApiError('other', 'the API server does not stream lists');
        }
        stream.ended = true;
        stream.replacement.commit();
        if (typeof version === 'string') this.resourceVersion = version;
        this.options.onSynced?.();
      } else if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        stream.replacement.add([object]);
      }
      return undefined;
    }
    if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')
      this.options.apply(event.type, object);
    else if (event.type !== 'BOOKMARK') return undefined;
    if (typeof version === 'string' && version !== '') this.resourceVersion = version;
    return undefined;
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
    list: (onPage, signal) => kube.listNamed(collectionPath, name, onPage, signal),
    watchPath: collectionPath,
    watchQuery: { fieldSelector: `metadata.name=${name}` },
    watchTimeoutSeconds: options.watchTimeoutSeconds,
    beginReplace: () => {
      let found: unknown;
      return {
        add: (items) => {
          found ??= items.find(named);
        },
        commit: () => onObject(found),
      };
    },
    apply: (type, object) => {
      if (named(object)) onObject(type === 'DELETED' ? undefined : object);
    },
    onRestart: options.onRestart,
  });
}
