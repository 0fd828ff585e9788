// The API client on its own, against the fake API server over HTTPS through a
// kubeconfig: what each answer becomes for the cache above it.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient, KubeApiError, type KubeClient } from '../../functions/adapters/kube/kube-client.js';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';

const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';

describe('kube client', () => {
  const api = new FakeApiServer(createPki());
  let kube: KubeClient;
  let paged: KubeClient;
  before(async () => {
    await api.start();
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/net' });
    for (let i = 0; i < 9; i++) api.upsertNad(`ns-${i}`, 'net', { [RESOURCE]: 'example.com/net' });
    const config = new KubeConfig();
    config.loadFromFile(api.kubeconfigPath);
    kube = createKubeClient(config, 2000);
    paged = createKubeClient(config, 2000, 2000, 3);
  });
  beforeEach(() => api.listPages.splice(0));
  after(() => api.stop());

  const failsWith = (kind: string, message: RegExp) => (error: unknown) =>
    error instanceof KubeApiError && error.kind === kind && message.test(error.message);
  const names = (items: unknown[]) =>
    items.map((item) => (item as { metadata: { namespace: string } }).metadata.namespace);

  it('reads a NAD, and answers a missing one with undefined', async () => {
    assert.equal(((await kube.getNad('default', 'net')) as { metadata: { name: string } }).metadata.name, 'net');
    assert.equal(await kube.getNad('default', 'ghost'), undefined);
  });

  it('lists NADs a page of 500 at a time, with the resourceVersion to watch from', async () => {
    const pages: unknown[][] = [];
    const version = await kube.listNads((items) => pages.push(items));
    assert.deepEqual(
      pages.map((page) => page.length),
      [10],
    );
    assert.deepEqual(api.listPages, [{ route: 'nadList', items: 10, limit: 500 }]);
    assert.match(version, /^\d+$/);
  });

  it('follows continue tokens to the end, handing on each page as it arrives', async () => {
    const pages: unknown[][] = [];
    const version = await paged.listNads((items) => pages.push(items));
    assert.deepEqual(
      pages.map((page) => page.length),
      [3, 3, 3, 1],
    );
    assert.equal(new Set(pages.flatMap(names)).size, 10, 'every NAD once');
    assert.ok(api.listPages.every((page) => page.limit === 3));
    assert.match(version, /^\d+$/);
  });

  it('fails a list whose continue token has expired (410) as "expired", for the caller to list afresh', async () => {
    const pages: unknown[][] = [];
    const listing = paged.listNads((items) => {
      pages.push(items);
      if (pages.length === 2) {
        api.upsertNad('late', 'net'); // a write, then a compaction past the list's snapshot
        api.expireWatches();
      }
    });
    await assert.rejects(listing, failsWith('expired', /answered 410.*too old/));
    assert.equal(pages.length, 2);
  });

  it('gives each page its own deadline, so a long list of quick pages never times out', async () => {
    const config = new KubeConfig();
    config.loadFromFile(api.kubeconfigPath);
    const client = createKubeClient(config, 2000, 300, 2);
    api.fault('nadList', { delayMs: 120 });
    try {
      const started = Date.now();
      let count = 0;
      await client.listNads((items) => (count += items.length));
      assert.ok(count >= 10, `${count} NADs`);
      assert.ok(Date.now() - started > 300, 'the whole list took longer than one page may');
      api.fault('nadList', { delayMs: 600, after: 2 });
      await assert.rejects(
        client.listNads(() => undefined),
        failsWith('timeout', /300 ms/),
      );
    } finally {
      api.fault('nadList', undefined);
    }
  });

  it('treats a list that is not found (no NAD CRD) as an error naming the status, not as an empty answer', async () => {
    api.fault('nadList', { status: 404, times: 1 });
    await assert.rejects(
      kube.listNads(() => undefined),
      failsWith('not_found', /answered 404/),
    );
    api.fault('cmList', { status: 404, times: 1 });
    await assert.rejects(
      kube.listNamed('/api/v1/namespaces/nri/configmaps', 'switches', () => undefined),
      failsWith('not_found', /answered 404/),
    );
  });

  it('classifies server errors and refusals, on any page', async () => {
    api.fault('nadGet', { status: 500, times: 1 });
    await assert.rejects(kube.getNad('default', 'net'), failsWith('server_error', /answered 500/));
    api.fault('nadList', { status: 403, times: 1 });
    await assert.rejects(
      kube.listNads(() => undefined),
      failsWith('forbidden', /answered 403/),
    );
    api.fault('nadList', { status: 500, times: 1, after: 1 });
    await assert.rejects(
      paged.listNads(() => undefined),
      failsWith('server_error', /answered 500/),
    );
  });
});
