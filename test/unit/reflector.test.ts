// The reflector's timing and protocol against a scripted API client: how far apart its retries
// are (measured, not assumed), when its backoff starts afresh, the watch timeouts it asks for,
// bookmarks, a streamed list (WatchList) and its fallback to pages, and the cases that list anew.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  KubeApiError,
  type KubeClient,
  type PageConsumer,
  type WatchEvent,
  type WatchHandle,
} from '../../functions/adapters/kube/kube-client.js';
import {
  INITIAL_EVENTS_END,
  Reflector,
  type ListMode,
  type ReflectorOptions,
} from '../../functions/adapters/kube/reflector.js';

type Emit = (event: WatchEvent) => void;
/** What one watch request does: emits events, then ends (resolves) or fails (throws); `signal` aborts with the handle. */
type WatchScript = (query: Record<string, string>, emit: Emit, signal: AbortSignal) => Promise<void>;

const nad = (name: string, rv: string) => ({ metadata: { namespace: 'default', name, resourceVersion: rv } });
const wait = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** A reflector over a scripted client, recording what it was asked and what it did. */
function harness(
  watchScript: WatchScript,
  overrides: Partial<ReflectorOptions> = {},
  list?: (onPage: PageConsumer, signal: AbortSignal) => Promise<string>,
) {
  const watches: Array<{ at: number; query: Record<string, string> }> = [];
  const lists: number[] = [];
  const commits: Array<{ mode: ListMode; items: unknown[] }> = [];
  const applied: Array<[string, unknown]> = [];
  const unavailable: string[] = [];
  const kube = {
    watch(_path: string, query: Record<string, string>, onEvent: (event: WatchEvent) => void): WatchHandle {
      watches.push({ at: Date.now(), query });
      const controller = new AbortController();
      const done = watchScript(query, onEvent, controller.signal).then(
        () => undefined,
        (error) => {
          if (!controller.signal.aborted) throw error;
        },
      );
      return { done, abort: () => controller.abort() };
    },
  } as unknown as KubeClient;
  const reflector = new Reflector({
    kube,
    list:
      list ??
      (async (onPage) => {
        lists.push(Date.now());
        onPage([nad('listed', '10')]);
        return '10';
      }),
    watchPath: '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions',
    watchTimeoutSeconds: 300,
    beginReplace: (mode) => {
      const items: unknown[] = [];
      return { add: (page) => void items.push(...page), commit: () => void commits.push({ mode, items }) };
    },
    apply: (type, object) => void applied.push([type, object]),
    onRestart: () => undefined,
    onStreamingUnavailable: (reason) => void unavailable.push(reason),
    ...overrides,
  });
  return { reflector, watches, lists, commits, applied, unavailable };
}

/** Runs the reflector until `check` holds, then stops it. */
const runUntil = async (reflector: Reflector, check: () => boolean, ms = 5000) => {
  reflector.start();
  try {
    await until(check, ms);
  } finally {
    await reflector.stop();
  }
};

const until = async (check: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await wait(5);
  }
};

describe('reflector: backoff', () => {
  it('spaces retries further and further apart although each watch delivers an event before failing', async () => {
    const INITIAL = 40;
    const { reflector, watches } = harness(
      async (_query, emit) => {
        emit({ type: 'MODIFIED', object: nad('a', String(Date.now())) });
        throw new KubeApiError('server_error', 'the API server answered 500');
      },
      { initialBackoffMs: INITIAL, maxBackoffMs: 10000 },
    );
    await runUntil(reflector, () => watches.length >= 7, 10000);
    const gaps = watches.slice(1, 7).map((watch, index) => watch.at - watches[index]!.at);
    // Each wait is drawn between half and all of INITIAL·2^(n-1): the n-th gap is at least its half.
    for (const [index, gap] of gaps.entries())
      assert.ok(gap >= (INITIAL * 2 ** index) / 2 - 2, `gap ${index + 1} was ${gap} ms (gaps: ${gaps.join(', ')})`);
    assert.ok(gaps[5]! > gaps[0]! * 4, `the sixth gap (${gaps[5]} ms) is far longer than the first (${gaps[0]} ms)`);
  });

  it('starts the backoff afresh only after a quiet interval with no failure', async () => {
    const INITIAL = 40;
    let attempt = 0;
    const { reflector, watches } = harness(
      async (_query, emit, signal) => {
        attempt++;
        // Four quick failures, then a watch that stays healthy past the reset interval, then a failure.
        if (attempt === 5) await wait(400, signal);
        emit({ type: 'MODIFIED', object: nad('a', String(attempt)) });
        throw new KubeApiError('server_error', 'the API server answered 500');
      },
      { initialBackoffMs: INITIAL, maxBackoffMs: 10000, resetBackoffAfterMs: 300 },
    );
    await runUntil(reflector, () => watches.length >= 6, 10000);
    const fourth = watches[4]!.at - watches[3]!.at;
    assert.ok(fourth >= (INITIAL * 8) / 2 - 2, `the fourth gap (${fourth} ms) is backed off`);
    const afterQuiet = watches[5]!.at - watches[4]!.at - 400;
    assert.ok(
      afterQuiet <= INITIAL + 30,
      `after 400 ms without a failure the next wait (${afterQuiet} ms) is the first step again`,
    );
  });

  it('backs off a stream that ends at once with nothing in it, and not one that ends after the server’s timeout', async () => {
    let attempt = 0;
    const { reflector, watches } = harness(
      async (_query, emit, signal) => {
        attempt++;
        if (attempt <= 3) return; // closes at once, empty: a server closing every watch
        emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } });
        await wait(1100, signal); // a healthy watch, ended as at its timeout
      },
      { initialBackoffMs: 100 },
    );
    await runUntil(reflector, () => watches.length >= 6, 10000);
    assert.ok(watches[3]!.at - watches[2]!.at >= 100, 'the third empty stream is followed by a wait');
    assert.ok(watches[5]!.at - watches[4]!.at < 1100 + 60, 'a healthy watch that ends is renewed at once');
  });
});

describe('reflector: what it asks the server', () => {
  it('asks each watch for a random timeout between the setting and twice it, so replicas do not re-watch in step', async () => {
    const { reflector, watches } = harness(async (_query, emit) => {
      emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '11' } } });
      await wait(1005);
    });
    await runUntil(reflector, () => watches.length >= 3, 10000);
    const asked = watches.map((watch) => Number(watch.query.timeoutSeconds));
    assert.ok(
      asked.every((seconds) => seconds >= 300 && seconds < 600),
      `timeouts ${asked.join(', ')}`,
    );
    assert.ok(new Set(asked).size > 1, `timeouts ${asked.join(', ')} differ`);
  });

  it('resumes from a bookmark’s resourceVersion, not from the last object it saw', async () => {
    let attempt = 0;
    const { reflector, watches, lists } = harness(async (_query, emit) => {
      if (++attempt > 1) return wait(2000);
      emit({ type: 'ADDED', object: nad('a', '12') });
      emit({ type: 'BOOKMARK', object: { kind: 'Bookmark', metadata: { resourceVersion: '57' } } });
      await wait(1005);
    });
    await runUntil(reflector, () => watches.length >= 2);
    assert.equal(watches[0]!.query.resourceVersion, '10', 'the first watch starts where the list ended');
    assert.equal(watches[0]!.query.allowWatchBookmarks, 'true');
    assert.equal(watches[1]!.query.resourceVersion, '57');
    assert.equal(lists.length, 1);
  });

  it('lists afresh when the server has not reached the resourceVersion it is asked for (ResourceVersionTooLarge)', async () => {
    let attempt = 0;
    const { reflector, watches, lists } = harness(
      async () => {
        if (++attempt === 1)
          throw new KubeApiError(
            'too_large',
            'the API server answered 504: Too large resource version: 10, current: 3',
          );
        await wait(2000);
      },
      { initialBackoffMs: 10 },
    );
    await runUntil(reflector, () => watches.length >= 2);
    assert.equal(lists.length, 2, 'a second list after the 504');
  });

  it('treats a watch ERROR event with code 410 as gone (list afresh) and another code as an error (back off, keep the version)', async () => {
    let attempt = 0;
    const { reflector, watches, lists } = harness(
      async (_query, emit) => {
        attempt++;
        if (attempt === 1) emit({ type: 'ERROR', object: { kind: 'Status', code: 500, message: 'etcd is sad' } });
        else if (attempt === 2) emit({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
        else await wait(2000);
      },
      { initialBackoffMs: 10 },
    );
    await runUntil(reflector, () => watches.length >= 3);
    assert.equal(watches[1]!.query.resourceVersion, '10', 'after a 500 event the watch resumes');
    assert.equal(lists.length, 2, 'after 410 the list starts again');
  });

  it('is stopped in the middle of a long list at once', async () => {
    let aborted = false;
    const { reflector } = harness(
      () => wait(2000),
      {},
      (_onPage, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              aborted = true;
              reject(new Error('aborted'));
            },
            { once: true },
          );
        }),
    );
    reflector.start();
    await wait(50);
    const started = Date.now();
    const stopped = await Promise.race([reflector.stop().then(() => true), wait(1000).then(() => false)]);
    assert.ok(stopped && aborted, 'the list saw the stop, and stop() returned');
    assert.ok(Date.now() - started < 100, `stopped in ${Date.now() - started} ms`);
  });
});

describe('reflector: streamed list (WatchList)', () => {
  it('fills a copy from the initial events, swaps it in at the bookmark that ends them, then applies changes on the same watch', async () => {
    const { reflector, watches, commits, applied, lists } = harness(
      async (query, emit) => {
        if (query.sendInitialEvents === 'true') {
          emit({ type: 'ADDED', object: nad('a', '5') });
          emit({ type: 'ADDED', object: nad('b', '6') });
          emit({
            type: 'BOOKMARK',
            object: { metadata: { resourceVersion: '30', annotations: { [INITIAL_EVENTS_END]: 'true' } } },
          });
          emit({ type: 'MODIFIED', object: nad('a', '31') });
        }
        await wait(1005);
      },
      { streamingList: true },
    );
    await runUntil(reflector, () => watches.length >= 2);
    assert.deepEqual(watches[0]!.query.sendInitialEvents, 'true');
    assert.deepEqual(watches[0]!.query.resourceVersionMatch, 'NotOlderThan');
    assert.equal(watches[0]!.query.resourceVersion, undefined, 'the latest state, read consistently');
    assert.deepEqual(commits, [{ mode: 'stream', items: [nad('a', '5'), nad('b', '6')] }]);
    assert.deepEqual(applied, [['MODIFIED', nad('a', '31')]]);
    assert.equal(watches[1]!.query.resourceVersion, '31', 'the next watch resumes after the last event');
    assert.equal(watches[1]!.query.sendInitialEvents, undefined);
    assert.equal(lists.length, 0, 'no LIST request');
  });

  it('drops a streamed list that ends before its bookmark, and streams again', async () => {
    let attempt = 0;
    const { reflector, watches, commits } = harness(
      async (_query, emit) => {
        emit({ type: 'ADDED', object: nad('a', '5') });
        if (++attempt === 1) throw new KubeApiError('network', 'the watch stream was cut off');
        emit({
          type: 'BOOKMARK',
          object: { metadata: { resourceVersion: '9', annotations: { [INITIAL_EVENTS_END]: 'true' } } },
        });
        await wait(2000);
      },
      { streamingList: true, initialBackoffMs: 10 },
    );
    await runUntil(reflector, () => commits.length >= 1);
    assert.equal(watches.length, 2);
    assert.ok(watches.every((watch) => watch.query.sendInitialEvents === 'true'));
    assert.deepEqual(commits, [{ mode: 'stream', items: [nad('a', '5')] }], 'only the whole list was swapped in');
  });

  it('lists in pages from then on where the server refuses to stream (WatchList off: 422)', async () => {
    const { reflector, watches, commits, unavailable } = harness(
      async (query) => {
        if (query.sendInitialEvents === 'true')
          throw new KubeApiError(
            'other',
            'the API server answered 422: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled',
          );
        await wait(1005);
      },
      { streamingList: true, initialBackoffMs: 10 },
    );
    await runUntil(reflector, () => watches.length >= 3, 5000);
    assert.equal(unavailable.length, 1);
    assert.match(unavailable[0]!, /WatchList feature gate/);
    assert.deepEqual(
      commits.map((commit) => commit.mode),
      ['pages'],
    );
    assert.ok(
      watches
        .slice(1)
        .every((watch) => watch.query.sendInitialEvents === undefined && watch.query.resourceVersion === '10'),
    );
  });

  it('lists in pages where the server ignores the request (a bookmark that does not end the initial events)', async () => {
    const { reflector, commits, unavailable } = harness(
      async (query, emit) => {
        if (query.sendInitialEvents === 'true') {
          emit({ type: 'ADDED', object: nad('a', '5') });
          emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } });
        }
        await wait(2000);
      },
      { streamingList: true, initialBackoffMs: 10 },
    );
    await runUntil(reflector, () => commits.length >= 1);
    assert.equal(unavailable.length, 1);
    assert.deepEqual(
      commits.map((commit) => commit.mode),
      ['pages'],
    );
  });
});
