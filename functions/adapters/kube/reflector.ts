// List, then watch from the list's resourceVersion, forever: re-watch when a
// stream ends, re-list on 410 Gone, back off on errors, and give up on a watch
// that has been silent for longer than the server promised to keep it open.
import { KubeApiError, type KubeClient, type ListResult, type WatchEvent } from './kube-client.js';

export type RestartCause = 'closed' | 'gone' | 'error' | 'silent';

export interface ReflectorOptions {
  kube: KubeClient;
  list(): Promise<ListResult>;
  watchPath: string;
  watchQuery?: Record<string, string>;
  /** the server closes each watch after this; a silent stream is given up a little later */
  watchTimeoutSeconds: number;
  replace(items: unknown[]): void;
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void;
  onSynced(synced: boolean): void;
  onRestart(cause: RestartCause, error?: KubeApiError): void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

class Gone extends Error {}

export class Reflector {
  private resourceVersion = '';
  private readonly stopper = new AbortController();
  private current?: { abort(): void };
  private running?: Promise<void>;
  private failures = 0;

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
      try {
        if (this.resourceVersion === '') {
          const list = await options.list();
          if (this.stopper.signal.aborted) return;
          options.replace(list.items);
          this.resourceVersion = list.resourceVersion;
          options.onSynced(true);
        }
        const cause = await this.watchOnce();
        if (this.stopper.signal.aborted) return;
        this.failures = 0;
        options.onRestart(cause);
        // A server that ends every watch at once must not make us spin.
        if (Date.now() - started < 1000) await sleep(1000, this.stopper.signal);
      } catch (error) {
        if (this.stopper.signal.aborted) return;
        if (error instanceof Gone) {
          this.resourceVersion = '';
          options.onRestart('gone');
          continue;
        }
        this.failures++;
        options.onRestart('error', error instanceof KubeApiError ? error : new KubeApiError('other', String(error)));
        await sleep(this.backoffMs(), this.stopper.signal);
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
    const version = object?.metadata?.resourceVersion;
    if (typeof version === 'string' && version !== '') this.resourceVersion = version;
  }
}
