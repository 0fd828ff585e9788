// The API client on its own, against the fake API server over HTTPS through a
// kubeconfig: what each answer becomes for the cache above it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient, KubeApiError, type KubeClient } from '../../functions/adapters/kube/kube-client.js';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';

const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';

describe('kube client', () => {
  const api = new FakeApiServer(createPki());
  let kube: KubeClient;
  before(async () => {
    await api.start();
    api.upsertNad('default', 'net', { [RESOURCE]: 'example.com/net' });
    const config = new KubeConfig();
    config.loadFromFile(api.kubeconfigPath);
    kube = createKubeClient(config, 2000);
  });
  after(() => api.stop());

  const failsWith = (kind: string, message: RegExp) => (error: unknown) => error instanceof KubeApiError && error.kind === kind && message.test(error.message);

  it('reads a NAD, and answers a missing one with undefined', async () => {
    assert.equal(((await kube.getNad('default', 'net')) as { metadata: { name: string } }).metadata.name, 'net');
    assert.equal(await kube.getNad('default', 'ghost'), undefined);
  });

  it('lists NADs with the resourceVersion to watch from', async () => {
    const list = await kube.listNads();
    assert.equal(list.items.length, 1);
    assert.match(list.resourceVersion, /^\d+$/);
  });

  it('treats a list that is not found (no NAD CRD) as an error naming the status, not as an empty answer', async () => {
    api.fault('nadList', { status: 404, times: 1 });
    await assert.rejects(kube.listNads(), failsWith('other', /answered 404/));
    api.fault('cmList', { status: 404, times: 1 });
    await assert.rejects(kube.listConfigMap('nri', 'switches'), failsWith('other', /answered 404/));
  });

  it('classifies server errors and refusals', async () => {
    api.fault('nadGet', { status: 500, times: 1 });
    await assert.rejects(kube.getNad('default', 'net'), failsWith('server_error', /answered 500/));
    api.fault('nadList', { status: 403, times: 1 });
    await assert.rejects(kube.listNads(), failsWith('forbidden', /answered 403/));
  });
});
