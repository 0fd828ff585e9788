// NADs from the cluster: one cluster-wide list+watch per instance answers
// lookups from memory. A miss asks the API once (a NAD created a moment ago
// must work) and "not found" is never cached. Until the watch has synced,
// lookups are GETs behind a short-lived cache (and the replica is not ready).
import { nadKey, toNad } from '../../core/nad.js';
import { NadIndex } from '../../core/nad-index.js';
import type { Nad, NadLookupOutcome, NadRef } from '../../core/types.js';
import type { NadSource } from '../nad-source.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { KubeApiError, NAD_LIST_PATH, type KubeClient } from './kube-client.js';
import { Reflector } from './reflector.js';

export interface NadCacheOptions {
  kube: KubeClient;
  metrics: Metrics;
  logger: Logger;
  /** the NAD annotations the core reads (core/nad.ts); the cache keeps only these */
  annotationsRead: ReadonlySet<string>;
  watchTimeoutSeconds: number;
  /** the initial list as a watch's first events where kube-apiserver offers it (NRI_STREAMING_LIST) */
  streamingList?: boolean;
  /** how long a GET result is reused while the watch cache is not usable */
  getTtlMs?: number;
  /** most GETs waiting on the API at once; more are refused rather than queued */
  maxPendingGets?: number;
}

/** One GET of a NAD, as an answer: found, missing, or why it could not be read (also told to `onError`). */
export function fetchNad(
  kube: KubeClient,
  namespace: string,
  name: string,
  annotationsRead: ReadonlySet<string>,
  onError?: (failure: KubeApiError) => void,
): Promise<NadLookupOutcome> {
  return kube.getNad(namespace, name).then(
    (object): NadLookupOutcome => {
      if (object === undefined) return { status: 'missing' };
      const nad = toNad(object, namespace, annotationsRead);
      return nad
        ? { status: 'found', nad }
        : { status: 'error', reason: 'the API server returned an object that is not a NetworkAttachmentDefinition' };
    },
    (error: unknown): NadLookupOutcome => {
      const failure = error instanceof KubeApiError ? error : new KubeApiError('other', String(error));
      onError?.(failure);
      return { status: 'error', reason: failure.message };
    },
  );
}

export class NadCache implements NadSource {
  private objects = new NadIndex();
  private synced = false;
  private forbiddenLogged = false;
  private readonly recent = new Map<string, { nad: Nad; expires: number }>();
  private readonly pending = new Map<string, Promise<NadLookupOutcome>>();
  private readonly reflector: Reflector;
  private lastError?: string;

  constructor(private readonly options: NadCacheOptions) {
    const { kube, metrics, logger } = options;
    this.reflector = new Reflector({
      kube,
      list: (onPage, signal) => kube.listNads(onPage, signal),
      watchPath: NAD_LIST_PATH,
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      streamingList: options.streamingList ?? true,
      // A re-list fills a second index, compact like the first, and swaps it in whole.
      beginReplace: (mode) => {
        const next = new NadIndex();
        const started = Date.now();
        let pages = 0;
        return {
          add: (items) => {
            pages++;
            for (const item of items) this.put(next, item);
          },
          commit: () => {
            this.objects = next;
            metrics.nadCacheObjects.set(next.size);
            const fields = {
              objects: next.size,
              list: mode,
              ...(mode === 'pages' ? { pages } : {}),
              durationMs: Date.now() - started,
              annotationSets: next.distinctAnnotationSets,
            };
            logger.info(fields, this.synced ? 'NAD cache re-listed' : 'NAD watch cache synced');
          },
        };
      },
      apply: (type, object) => {
        if (type === 'DELETED') {
          const nad = toNad(object, '', this.options.annotationsRead);
          if (nad) this.objects.delete(nad.namespace, nad.name);
        } else {
          this.put(this.objects, object);
        }
        metrics.nadCacheObjects.set(this.objects.size);
      },
      onStreamingUnavailable: (reason) =>
        logger.info(
          { reason },
          'kube-apiserver does not stream the NAD list (WatchList); listing it in pages of 500 instead',
        ),
      onSynced: () => {
        this.synced = true;
        this.lastError = undefined;
        metrics.nadCacheSynced.set(1);
      },
      onRestart: (cause, error) => {
        metrics.watchRestarts.inc({ resource: 'network-attachment-definitions', cause });
        if (!error) return;
        this.lastError = error.message;
        metrics.apiErrors.inc({ operation: 'watch_nads', kind: error.kind });
        if (error.kind === 'forbidden' && !this.synced) {
          if (!this.forbiddenLogged) {
            logger.warn(
              { error: error.message },
              'cannot list/watch NetworkAttachmentDefinitions cluster-wide; answering from single GETs with a short cache until RBAC allows it',
            );
            this.forbiddenLogged = true;
          }
        } else {
          logger.warn({ cause, error: error.message }, 'NAD watch restarting');
        }
      },
    });
  }

  private put(index: NadIndex, object: unknown): void {
    const nad = toNad(object, '', this.options.annotationsRead);
    if (nad && nad.namespace !== '') index.set(nad);
  }

  start(): void {
    this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  /**
   * Not ready until the first LIST has landed: a replica that cannot list NADs
   * (API unreachable, RBAC missing) could only deny the reviews kube-apiserver
   * would keep sending it. Once synced it stays ready through watch restarts,
   * answering from what it holds.
   */
  readiness(): string | null {
    if (this.synced) return null;
    return `the NetworkAttachmentDefinition cache has not synced yet${this.lastError ? ` (last error: ${this.lastError})` : ''}`;
  }

  describe() {
    return {
      source: 'kubernetes',
      ...this.options.kube.describe(),
      synced: this.synced,
      objects: this.objects.size,
      lastError: this.lastError,
    };
  }

  /** From the watch cache once synced, else from the GETs of the last seconds; undefined when any must be read. */
  fromMemory(refs: readonly NadRef[]): Map<string, NadLookupOutcome> | undefined {
    const { metrics } = this.options;
    const out = new Map<string, NadLookupOutcome>();
    for (const { namespace, name } of refs) {
      const cached = this.held(namespace, name);
      if (!cached) return undefined;
      out.set(nadKey(namespace, name), { status: 'found', nad: cached });
    }
    metrics.nadCacheHits.inc(refs.length);
    return out;
  }

  read(refs: readonly NadRef[]): Promise<Map<string, NadLookupOutcome>> {
    const { metrics } = this.options;
    const out = new Map<string, NadLookupOutcome>();
    const waiting: Array<Promise<void>> = [];
    for (const { namespace, name } of refs) {
      const id = nadKey(namespace, name);
      const cached = this.held(namespace, name);
      if (cached) {
        metrics.nadCacheHits.inc();
        out.set(id, { status: 'found', nad: cached });
        continue;
      }
      metrics.nadCacheMisses.inc();
      waiting.push(this.get(namespace, name).then((outcome) => void out.set(id, outcome)));
    }
    return Promise.all(waiting).then(() => out);
  }

  /** What memory holds for a NAD: the watch cache once synced, else a GET of the last seconds. */
  private held(namespace: string, name: string): Nad | undefined {
    return this.synced ? this.objects.get(namespace, name) : this.fresh(nadKey(namespace, name));
  }

  private fresh(id: string): Nad | undefined {
    const entry = this.recent.get(id);
    if (entry && entry.expires > Date.now()) return entry.nad;
    if (entry) this.recent.delete(id);
    return undefined;
  }

  /** One GET per NAD at a time, however many reviews ask for it. */
  private get(namespace: string, name: string): Promise<NadLookupOutcome> {
    const id = nadKey(namespace, name);
    const inFlight = this.pending.get(id);
    if (inFlight) return inFlight;
    const { maxPendingGets = 64, metrics, kube, getTtlMs = 2000 } = this.options;
    if (this.pending.size >= maxPendingGets) {
      return Promise.resolve({
        status: 'error',
        reason: `${maxPendingGets} reads are already waiting on the API server`,
      });
    }
    metrics.nadApiReads.inc();
    const read = fetchNad(kube, namespace, name, this.options.annotationsRead, (failure) =>
      metrics.apiErrors.inc({ operation: 'get_nad', kind: failure.kind }),
    )
      .then((outcome) => {
        if (outcome.status === 'found' && !this.synced) {
          if (this.recent.size > 10000) this.recent.clear();
          this.recent.set(id, { nad: outcome.nad, expires: Date.now() + getTtlMs });
        }
        return outcome;
      })
      .finally(() => this.pending.delete(id));
    this.pending.set(id, read);
    return read;
  }
}
