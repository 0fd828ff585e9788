// How nri lists and watches NADs against the fake API server, which speaks kube-apiserver's
// list/watch protocol: the list streamed as a watch's first events (WatchList) where the server
// offers it and in pages where it refuses, bookmarks, a resourceVersion the server has not
// reached (etcd restored from a backup), and a SIGTERM in the middle of a long list.
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
const pod = (networks: string, namespace = 'default') => ({
  metadata: { name: 'p', namespace, annotations: { [NETWORKS]: networks } },
  spec: { containers: [{ name: 'c' }] },
});
const tenants = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    namespace: `tenant-${i}`,
    name: 'vlan',
    annotations: { [RESOURCE]: `example.com/pool-${i % 3}` },
  }));

async function resourceOf(fn: RunningFunction, networks: string, namespace = 'default'): Promise<string> {
  const result = await send(`${fn.url}/mutate`, { body: admissionReview(pod(networks, namespace), { namespace }) });
  return result.json.response.allowed
    ? JSON.stringify(decodePatch(result))
    : `denied: ${result.json.response.status.message}`;
}

const watchRequests = (api: FakeApiServer) =>
  api.requests.filter((line) => line.includes('/network-attachment-definitions?') && line.includes('watch=true'));

describe('the NAD list, streamed as a watch’s first events (WatchList)', () => {
  const api = new FakeApiServer(createPki());
  let fn: RunningFunction;
  syncedAgainst(
    api,
    () => {
      api.seedNads(tenants(1500));
      api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/v1' });
    },
    (started) => (fn = started),
  );

  it('syncs 1,501 NADs through one watch request and no LIST, then follows changes on it', async () => {
    assert.equal(api.counts.nadList, 0, 'no LIST request');
    assert.equal(api.streamedLists.nadWatch, 1);
    const synced = fn.logs.find((line) => /NAD watch cache synced/.test(line))!;
    assert.match(synced, /"objects":1501,"list":"stream"/);
    assert.match(watchRequests(api)[0]!, /sendInitialEvents=true/);
    assert.match(watchRequests(api)[0]!, /resourceVersionMatch=NotOlderThan/);
    assert.doesNotMatch(watchRequests(api)[0]!, /resourceVersion=\d/);
    assert.match(await resourceOf(fn, 'vlan', 'tenant-1499'), /example.com\/pool-2/);
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/v2' });
    await eventually(
      () => resourceOf(fn, 'net'),
      (text) => text.includes('example.com/v2'),
      5000,
      50,
    );
  });

  it('renews a quiet watch from its resourceVersion without streaming the list again', async () => {
    const watches = api.counts.nadWatch;
    await eventually(
      () => api.counts.nadWatch,
      (count) => count >= watches + 2,
      15000,
      100,
    );
    assert.equal(api.nadLists, 1);
    assert.ok(
      watchRequests(api)
        .slice(1)
        .every((line) => /resourceVersion=\d+/.test(line) && !/sendInitialEvents/.test(line)),
    );
  });

  it('streams the list again after 410 Gone, answering from the cache it has until the new one is whole', async () => {
    await eventually(
      () => api.openWatches,
      (open) => open >= 2,
      15000,
      50,
    );
    const held = await resourceOf(fn, 'net');
    assert.match(held, /example.com/);
    const gets = api.counts.nadGet;
    const watches = api.counts.nadWatch;
    api.fault('nadWatch', { delayMs: 400, times: 1 }); // the new stream starts late (within NRI_API_TIMEOUT_MS)
    api.expireWatches();
    api.deleteNad('default', 'net'); // while nri is not watching: only the new list can tell
    await eventually(
      () => api.counts.nadWatch,
      (count) => count > watches,
      5000,
      10,
    );
    assert.equal(await resourceOf(fn, 'net'), held, 'the old copy answers meanwhile');
    assert.equal(api.counts.nadGet, gets, 'without a GET');
    await eventually(
      () => resourceOf(fn, 'net'),
      (text) => /denied.*not found/.test(text),
      10000,
      100,
    );
    assert.equal(api.streamedLists.nadWatch, 2);
    assert.equal(api.counts.nadList, 0);
  });
});

describe('a kube-apiserver that refuses to stream lists (WatchList off)', () => {
  const api = new FakeApiServer(createPki());
  let fn: RunningFunction;
  before(async () => {
    await api.start();
    api.watchList = false;
    api.seedNads(tenants(700));
    fn = await startFunction({
      KUBECONFIG: api.kubeconfigPath,
      NRI_API_TIMEOUT_MS: '500',
      NRI_WATCH_TIMEOUT_SECONDS: '2',
    });
  });
  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  it('says so once and lists in pages instead, as before', async () => {
    await fn.waitForLog(/does not stream the NAD list \(WatchList\); listing it in pages of 500 instead/);
    const synced = await fn.waitForLog(/NAD watch cache synced/);
    assert.match(synced, /"objects":700,"list":"pages","pages":2/);
    assert.equal(api.counts.nadList, 2);
    const watches = api.counts.nadWatch;
    await eventually(
      () => api.openWatches,
      (open) => open >= 2,
      10000,
      20,
    ); // the NAD and ConfigMap watches
    api.expireWatches();
    await eventually(
      () => api.counts.nadList,
      (count) => count >= 4,
      10000,
      50,
    );
    assert.ok(api.counts.nadWatch >= watches);
    assert.equal(fn.logs.filter((line) => /does not stream the NAD list/.test(line)).length, 1);
    assert.equal(watchRequests(api).filter((line) => /sendInitialEvents/.test(line)).length, 1, 'asked once');
  });
});

describe('bookmarks and resourceVersions', () => {
  const api = new FakeApiServer(createPki());
  let fn: RunningFunction;
  // A long watch timeout: only the test ends watches here.
  syncedAgainst(
    api,
    () => api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/v1' }),
    (started) => (fn = started),
    { NRI_WATCH_TIMEOUT_SECONDS: '300' },
  );

  it('resumes from a bookmark’s resourceVersion: history compacted past its last NAD event costs no re-list', async () => {
    await eventually(
      () => api.openWatches,
      (open) => open >= 2,
      5000,
      20,
    );
    // Writes to other resources move the cluster's resourceVersion on; the NAD watch sees none of them.
    for (let i = 0; i < 5; i++) api.upsertConfigMap('elsewhere', `cm-${i}`, { i: String(i) });
    const marked = api.bookmark();
    await new Promise((resolve) => setTimeout(resolve, 200));
    api.compact(); // etcd forgets everything before the bookmark
    const watches = api.counts.nadWatch;
    api.closeWatches();
    await eventually(
      () => api.counts.nadWatch,
      (count) => count > watches,
      5000,
      20,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.match(watchRequests(api).at(-1)!, new RegExp(`resourceVersion=${marked}(&|$)`));
    assert.equal(api.nadLists, 1, 'no second list');
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/v2' });
    await eventually(
      () => resourceOf(fn, 'net'),
      (text) => text.includes('example.com/v2'),
      5000,
      50,
    );
  });

  it('lists afresh when the server is behind the resourceVersion nri holds (etcd restored from a backup)', async () => {
    await eventually(
      () => api.openWatches,
      (open) => open >= 2,
      5000,
      20,
    );
    const lists = api.nadLists;
    api.restoreFromBackup(api.currentResourceVersion - 3);
    api.deleteNad('default', 'net'); // the restored state, which only a list shows
    await eventually(
      () => api.nadLists,
      (count) => count > lists,
      10000,
      50,
    );
    await eventually(
      () => resourceOf(fn, 'net'),
      (text) => /denied.*not found/.test(text),
      10000,
      100,
    );
    const metrics = (await send(`${fn.url}/metrics`)).text;
    assert.ok(
      metricValue(metrics, 'nri_kubernetes_api_errors_total', 'operation="watch_nads",kind="too_large"') === 0,
      'a re-list, not an error retried',
    );
    assert.ok(
      metricValue(metrics, 'nri_watch_restarts_total', 'resource="network-attachment-definitions",cause="gone"') >= 1,
    );
  });
});

describe('SIGTERM in the middle of a long list', () => {
  for (const [title, env, route] of [
    ['in pages', { NRI_STREAMING_LIST: 'false' }, 'nadList'],
    ['streamed', {}, 'nadWatch'],
  ] as const) {
    it(`exits within two seconds although the list (${title}) would take five`, async () => {
      const api = new FakeApiServer(createPki());
      await api.start();
      api.seedNads(tenants(2500)); // five pages of 500
      api.fault(route, { delayMs: 1000 });
      const fn = await startFunction({ KUBECONFIG: api.kubeconfigPath, NRI_API_TIMEOUT_MS: '3000', ...env });
      try {
        await eventually(
          () => api.counts[route],
          (count) => count >= 1,
          5000,
          20,
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        const started = Date.now();
        fn.child.kill('SIGTERM');
        const code = await Promise.race([
          fn.exited,
          new Promise((resolve) => setTimeout(() => resolve('still running after 8 s'), 8000)),
        ]);
        const took = Date.now() - started;
        assert.equal(code, 0);
        assert.ok(took < 2000, `exited ${took} ms after SIGTERM`);
        assert.ok(api.counts[route] <= 2, `${api.counts[route]} list requests`);
      } finally {
        await fn.stop();
        await api.stop();
      }
    });
  }
});
