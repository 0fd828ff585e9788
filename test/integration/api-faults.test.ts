// The NAD cache and lookups when the Kubernetes API misbehaves: watch streams
// that end, go silent, send garbage or 410 Gone; error statuses; slow and
// missing answers; RBAC that forbids list/watch. Cached NADs keep working,
// what cannot be answered is denied with its reason in bounded time, and the
// cache recovers when the API does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { metricValue } from '../support/metrics.js';
import { syncedAgainst } from '../support/synced.js';
import {
  admissionReview,
  decodePatch,
  eventually,
  send,
  startFunction,
  type RunningFunction,
} from '../support/function-process.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';
const pod = (networks: string) => ({
  metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: networks } },
  spec: { containers: [{ name: 'c' }] },
});

async function resourceOf(fn: RunningFunction, networks: string): Promise<string> {
  const result = await send(`${fn.url}/mutate`, { body: admissionReview(pod(networks)) });
  return result.json.response.allowed
    ? JSON.stringify(decodePatch(result))
    : `denied: ${result.json.response.status.message}`;
}

/** nri synced against `api` (one NAD, default/net) for the suite it is called in, and two steps the fault scenarios share. */
function replicaUnderFaults(api: FakeApiServer) {
  let fn: RunningFunction | undefined;
  syncedAgainst(
    api,
    () => api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/v1' }),
    (started) => (fn = started),
  );
  return {
    get fn(): RunningFunction {
      return fn!;
    },
    /** changes the NAD and waits until reviews show it */
    async changeAndSee(version: string): Promise<void> {
      api.upsertNad('default', 'net', { [RESOURCE]: `example.com/${version}` });
      await eventually(
        () => resourceOf(fn!, 'net'),
        (text) => text.includes(`example.com/${version}`),
        40000,
        100,
      );
    },
    /** waits until nri watches NADs and ConfigMaps again */
    watching: () =>
      eventually(
        () => api.openWatches,
        (open) => open >= 2,
        40000,
        100,
      ),
  };
}

describe('watch cache under API faults', () => {
  const api = new FakeApiServer(createPki());
  const replica = replicaUnderFaults(api);
  const { changeAndSee, watching } = replica;

  it('re-lists after 410 Gone', async () => {
    await watching();
    const lists = api.nadLists;
    api.expireWatches();
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/after-gone' }); // happens while we are not watching
    await eventually(
      () => api.nadLists,
      (count) => count > lists,
      5000,
    );
    await eventually(
      () => resourceOf(replica.fn, 'net'),
      (text) => text.includes('after-gone'),
      5000,
    );
  });

  /** Breaks the open watches, waits for a new watch, then checks a change still arrives. */
  const rewatchesAfter = async (breakWatches: () => void, version: string) => {
    await watching();
    const watches = api.counts.nadWatch;
    breakWatches();
    await eventually(
      () => api.counts.nadWatch,
      (count) => count > watches,
      5000,
    );
    await changeAndSee(version);
  };

  it('re-watches after a dropped stream', () => rewatchesAfter(() => api.dropWatches(), 'after-drop'));

  it('restarts on a garbage line and keeps going', () => rewatchesAfter(() => api.garbleWatches(), 'after-garbage'));
});

// Each scenario below against a replica of its own: failures in a row lengthen the backoff for
// two minutes (as client-go's), so one scenario's errors would slow the next one's recovery.
describe('watch cache under API errors', () => {
  const api = new FakeApiServer(createPki());
  const replica = replicaUnderFaults(api);
  const { changeAndSee, watching } = replica;

  it('backs off on watch errors (500, 429) and recovers', async () => {
    await watching();
    api.fault('nadWatch', { status: 500, times: 2 });
    api.dropWatches();
    await watching();
    api.fault('nadWatch', { status: 429, times: 1 });
    api.dropWatches();
    await watching();
    await changeAndSee('after-errors');
    const metrics = (await send(`${replica.fn.url}/metrics`)).text;
    assert.ok(
      metricValue(metrics, 'nri_kubernetes_api_errors_total', 'operation="watch_nads",kind="server_error"') >= 2,
    );
    assert.ok(metricValue(metrics, 'nri_kubernetes_api_errors_total', 'operation="watch_nads",kind="throttled"') >= 1);
  });
});

describe('watch cache under silent API servers', () => {
  const api = new FakeApiServer(createPki());
  const replica = replicaUnderFaults(api);
  const { changeAndSee, watching } = replica;

  it('gives up on a watch that never answers, and on one that goes silent', async () => {
    await watching();
    let watches = api.counts.nadWatch;
    api.fault('nadWatch', { hang: true, times: 1 });
    api.dropWatches();
    await eventually(
      () => api.counts.nadWatch,
      (count) => count >= watches + 2,
      40000,
      100,
    );
    watches = api.counts.nadWatch;
    api.fault('nadWatch', { silent: true, times: 1 });
    api.dropWatches();
    await eventually(
      () => api.counts.nadWatch,
      (count) => count >= watches + 2,
      40000,
      100,
    );
    await changeAndSee('after-silence');
    const metrics = (await send(`${replica.fn.url}/metrics`)).text;
    assert.ok(
      metricValue(metrics, 'nri_watch_restarts_total', 'resource="network-attachment-definitions",cause="silent"') >= 1,
    );
  });

  it('keeps answering from the cache while the API is down, and catches up after', async () => {
    api.fault('nadWatch', { status: 503 });
    api.fault('nadList', { status: 503 });
    api.fault('nadGet', { status: 503 });
    api.dropWatches();
    for (let i = 0; i < 5; i++) assert.match(await resourceOf(replica.fn, 'net'), /after-silence/);
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/after-outage' });
    api.fault('nadWatch', undefined);
    api.fault('nadList', undefined);
    api.fault('nadGet', undefined);
    await eventually(
      () => resourceOf(replica.fn, 'net'),
      (text) => text.includes('after-outage'),
      40000,
      200,
    );
  });
});

describe('single NAD reads under API faults', () => {
  const pki = createPki();
  const api = new FakeApiServer(pki);
  let fn: RunningFunction;

  before(async () => {
    await api.start();
    fn = await startFunction({ KUBECONFIG: api.kubeconfigPath, NRI_API_TIMEOUT_MS: '500' });
    await fn.waitForLog(/NAD watch cache synced/);
  });
  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  const cases: Array<[string, Parameters<FakeApiServer['fault']>[1], RegExp]> = [
    ['500', { status: 500 }, /could not be read: the API server answered 500: injected fault 500/],
    ['403', { status: 403 }, /could not be read: the API server answered 403/],
    ['429', { status: 429 }, /could not be read: the API server answered 429/],
    ['a slow answer', { delayMs: 2000 }, /could not be read: no answer from the API server within 500 ms/],
    ['no answer at all', { hang: true }, /could not be read: no answer from the API server within 500 ms/],
  ];
  for (const [title, fault, message] of cases) {
    it(`denies with the reason on ${title}, well inside the webhook timeout`, async () => {
      api.fault('nadGet', fault);
      try {
        const started = Date.now();
        const result = await send(`${fn.url}/mutate`, { body: admissionReview(pod('not-cached')) });
        assert.ok(Date.now() - started < 5000, 'answered long before the 10 s webhook timeout');
        assert.equal(result.json.response.allowed, false);
        assert.match(result.json.response.status.message, message);
        assert.match(result.json.response.status.message, /default\/not-cached/);
      } finally {
        api.fault('nadGet', undefined);
      }
    });
  }

  it('sends one GET for many concurrent reviews of the same uncached NAD', async () => {
    api.seedNads([{ namespace: 'default', name: 'burst', annotations: { [RESOURCE]: 'example.com/burst' } }]); // no watch event: only a GET finds it
    api.fault('nadGet', { delayMs: 300 });
    const before = api.counts.nadGet;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => send(`${fn.url}/mutate`, { body: admissionReview(pod('burst')) })),
    );
    api.fault('nadGet', undefined);
    assert.ok(results.every((r) => r.json.response.allowed));
    assert.equal(api.counts.nadGet - before, 1);
  });

  it('bounds the reads waiting on the API instead of piling them up', async () => {
    // A long deadline so that all 80 lookups are surely waiting at the same time.
    const slow = await startFunction({ KUBECONFIG: api.kubeconfigPath, NRI_API_TIMEOUT_MS: '4000' });
    try {
      await slow.waitForLog(/NAD watch cache synced/);
      api.fault('nadGet', { hang: true });
      const names = Array.from({ length: 80 }, (_, i) => `missing-${i}`);
      const results = await Promise.all(
        names.map((name) => send(`${slow.url}/mutate`, { body: admissionReview(pod(name)) })),
      );
      const refused = results.filter((r) =>
        /64 reads are already waiting on the API server/.test(r.json.response.status?.message ?? ''),
      );
      assert.equal(refused.length, 16, 'everything past 64 waiting reads is refused at once');
      assert.ok(results.every((r) => r.json.response.allowed === false));
    } finally {
      api.fault('nadGet', undefined);
      await slow.stop();
    }
  });
});

describe('RBAC that forbids listing NADs', () => {
  it('falls back to GETs with a short cache, says so once, and switches to the watch when allowed', async () => {
    const pki = createPki();
    const api = new FakeApiServer(pki);
    await api.start();
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/rbac' });
    // A Role without list and watch: neither a paginated nor a streamed list is allowed.
    api.fault('nadList', { status: 403 });
    api.fault('nadWatch', { status: 403 });
    const fn = await startFunction({ KUBECONFIG: api.kubeconfigPath });
    try {
      await fn.waitForLog(/cannot list\/watch NetworkAttachmentDefinitions cluster-wide/);
      const before = api.counts.nadGet;
      for (let i = 0; i < 5; i++) assert.match(await resourceOf(fn, 'net'), /example\.com\/rbac/);
      assert.equal(api.counts.nadGet - before, 1, 'a GET result is reused for a short while');
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await resourceOf(fn, 'net');
      assert.equal(api.counts.nadGet - before, 2, 'and then read again');
      assert.equal(fn.logs.filter((line) => line.includes('cannot list/watch')).length, 1, 'said once');

      api.fault('nadList', undefined);
      api.fault('nadWatch', undefined);
      await fn.waitForLog(/NAD watch cache synced/, 40000);
      const synced = api.counts.nadGet;
      for (let i = 0; i < 5; i++) await resourceOf(fn, 'net');
      assert.equal(api.counts.nadGet, synced, 'no more GETs once the watch cache has synced');
    } finally {
      await fn.stop();
      await api.stop();
    }
  });
});

describe('a large list, page by page (NRI_STREAMING_LIST=false)', () => {
  const api = new FakeApiServer(createPki());
  let fn: RunningFunction;
  const NADS = 1500;
  syncedAgainst(
    api,
    () => {
      api.seedNads(
        Array.from({ length: NADS }, (_, i) => ({
          namespace: `tenant-${i}`,
          name: 'vlan',
          annotations: { [RESOURCE]: `example.com/pool-${i % 3}` },
        })),
      );
      api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/v1' });
    },
    (started) => (fn = started),
    { NRI_STREAMING_LIST: 'false' },
  );

  it('lists in pages of 500, never asking for the whole list at once', async () => {
    const pages = api.listPages.filter((page) => page.route === 'nadList');
    assert.deepEqual(
      pages.map((page) => page.items),
      [500, 500, 500, 1],
    );
    assert.ok(pages.every((page) => page.limit === 500));
    const metrics = (await send(`${fn.url}/metrics`)).text;
    assert.equal(metricValue(metrics, 'nri_nad_cache_objects'), NADS + 1);
    const review = admissionReview({ ...pod('vlan'), metadata: { ...pod('vlan').metadata, namespace: 'tenant-1499' } });
    assert.match(JSON.stringify(decodePatch(await send(`${fn.url}/mutate`, { body: review }))), /example.com\/pool-2/);
  });

  it('renews a quiet watch from the resourceVersion it holds (bookmarks asked for): no re-list of 1,500 NADs', async () => {
    const lists = api.counts.nadList;
    const watches = api.counts.nadWatch;
    // NRI_WATCH_TIMEOUT_SECONDS=2: the server closes each quiet watch after 2 s
    await eventually(
      () => api.counts.nadWatch,
      (count) => count >= watches + 2,
      10000,
      100,
    );
    assert.equal(api.counts.nadList, lists);
    assert.ok(
      api.requests
        .filter((line) => line.includes('watch=true'))
        .every((line) => /allowWatchBookmarks=true/.test(line) && /resourceVersion=\d+/.test(line)),
    );
  });

  it('answers from the cache it has while a re-list is under way, then swaps in the new one whole', async () => {
    await eventually(
      () => api.openWatches,
      (open) => open >= 2,
      40000,
      100,
    );
    const gets = api.counts.nadGet;
    api.fault('nadList', { delayMs: 400, times: 4 });
    api.expireWatches();
    api.deleteNad('default', 'net'); // while nri is not watching: only the new list can tell
    api.upsertNad('default', 'fresh', { [RESOURCE]: 'example.com/fresh' });
    const lists = api.counts.nadList;
    await eventually(
      () => api.counts.nadList,
      (count) => count > lists,
      5000,
      20,
    );
    // The re-list takes four slow pages; meanwhile the old cache answers, with no GET.
    assert.match(await resourceOf(fn, 'net'), /example.com\/v1/);
    assert.equal(api.counts.nadGet, gets);
    await eventually(
      () => resourceOf(fn, 'net'),
      (text) => /denied.*not found/.test(text),
      10000,
      100,
    );
    assert.match(await resourceOf(fn, 'fresh'), /example.com\/fresh/);
  });

  it('starts the list again from its first page when a continue token expires (410)', async () => {
    await eventually(
      () => api.openWatches,
      (open) => open >= 2,
      40000,
      100,
    );
    const before = api.listPages.length;
    api.fault('nadList', { status: 410, times: 1, after: 2 });
    api.expireWatches();
    api.upsertNad('default', 'later', { [RESOURCE]: 'example.com/later' }); // only a list can tell
    const listed = () => api.listPages.slice(before).filter((page) => page.route === 'nadList');
    await eventually(listed, (pages) => pages.at(-1)?.items === 2, 10000, 50);
    const pages = listed();
    // two pages, the third refused with 410, then the whole list again: 1,500 tenants, "fresh" and "later"
    assert.deepEqual(
      pages.map((page) => page.items),
      [500, 500, 500, 500, 500, 2],
    );
    const gets = api.counts.nadGet;
    assert.match(await resourceOf(fn, 'later'), /example.com\/later/);
    assert.equal(api.counts.nadGet, gets, 'answered from the new cache');
    const metrics = (await send(`${fn.url}/metrics`)).text;
    assert.equal(metricValue(metrics, 'nri_nad_cache_objects'), NADS + 2);
    assert.equal(metricValue(metrics, 'nri_nad_cache_synced'), 1);
  });
});

describe("control switches where RBAC allows a GET of the ConfigMap but no list/watch (upstream's ClusterRole)", () => {
  const api = new FakeApiServer(createPki());
  let fn: RunningFunction;
  before(async () => {
    await api.start();
    api.fault('cmList', { status: 403 });
    api.fault('cmWatch', { status: 403 });
    api.upsertConfigMap('nri', 'nri-control-switches', {
      'config.json': JSON.stringify({ features: { enableHonorExistingResources: true } }),
    });
    fn = await startFunction({
      KUBECONFIG: api.kubeconfigPath,
      NRI_NAMESPACE: 'nri',
      NRI_CONTROL_SWITCHES_POLL_SECONDS: '1',
    });
  });
  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  it('reads it with a GET every poll interval instead of retrying the watch, and follows its changes', async () => {
    await fn.waitForLog(
      /cannot list\/watch ConfigMap nri\/nri-control-switches; reading it with a GET every 1 s instead/,
    );
    await fn.waitForLog(/ConfigMap nri\/nri-control-switches applied/);
    const applied = async () =>
      metricValue((await send(`${fn.url}/metrics`)).text, 'nri_control_switches_configmap_applied');
    assert.equal(await applied(), 1);
    const lists = api.counts.cmList;
    api.deleteConfigMap('nri', 'nri-control-switches');
    await eventually(applied, (value) => value === 0, 5000, 100);
    assert.ok(api.counts.cmGet >= 2);
    assert.equal(api.counts.cmList, lists, 'no more list attempts once polling');
  });
});
