// Readiness that follows the Knative Service's traffic (K_SERVICE, K_REVISION set as Knative sets
// them), against the fake API server: a superseded revision reports not ready, says why, and ends
// each HTTPS connection after its answer; routed again, it is ready again. Unreadable Service or
// no Knative: readiness is never held back. (Proven with Knative's own controllers in
// test/e2e/knative.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { metricValue } from '../support/metrics.js';
import { admissionReview, eventually, send, startFunction, type RunningFunction } from '../support/function-process.js';

const pki = createPki();
const routedTo = (revision: string, latest = revision) => ({
  latestCreatedRevisionName: latest,
  latestReadyRevisionName: latest,
  traffic: [{ revisionName: revision, percent: 100 }],
});
const knativeEnv = (api: FakeApiServer) => ({
  KUBECONFIG: api.kubeconfigPath,
  NRI_NAMESPACE: 'nri',
  K_SERVICE: 'nri',
  K_REVISION: 'nri-00001',
  K_CONFIGURATION: 'nri',
  NRI_TLS_CERT_FILE: pki.serverCert,
  NRI_TLS_KEY_FILE: pki.serverKey,
  NRI_TLS_PORT: '0',
  NRI_WATCH_TIMEOUT_SECONDS: '5',
});
const review = (fn: RunningFunction) =>
  send(`https://localhost:${fn.tlsPort}/mutate`, {
    body: admissionReview({ metadata: { name: 'p', namespace: 'default' }, spec: { containers: [{ name: 'c' }] } }),
    headers: { connection: 'keep-alive' },
    tls: { ca: pki.caPem },
  });

describe('readiness follows the Knative Service', () => {
  const api = new FakeApiServer(pki);
  let fn: RunningFunction;

  before(async () => {
    await api.start();
    api.upsertKnativeService('nri', 'nri', {}, routedTo('nri-00001'));
    fn = await startFunction(knativeEnv(api));
    await eventually(
      () => send(`${fn.url}/readyz`),
      (result) => result.status === 200,
      10000,
    );
  });
  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  it('reads only its own Service, by name, in its namespace', () => {
    assert.ok(
      api.requests.some((line) =>
        line.startsWith('GET /apis/serving.knative.dev/v1/namespaces/nri/services?fieldSelector=metadata.name%3Dnri'),
      ),
    );
  });

  it('routed: ready, and HTTPS connections are kept alive', async () => {
    assert.equal(metricValue((await send(`${fn.url}/metrics`)).text, 'nri_knative_revision_serving'), 1);
    assert.equal((await review(fn)).headers.connection, 'keep-alive');
  });

  it('superseded: not ready with the reason, metric 0, each answer closes its connection, reviews still answered', async () => {
    api.upsertKnativeService('nri', 'nri', {}, routedTo('nri-00002'));
    const ready = await eventually(
      () => send(`${fn.url}/readyz`),
      (result) => result.status === 503,
      10000,
    );
    assert.match(ready.text, /revision nri-00001 is superseded: Knative Service nri routes traffic to nri-00002/);
    await fn.waitForLog(
      /not ready from now on, so that the webhook Service sends reviews to the current revision only/,
    );
    assert.equal(metricValue((await send(`${fn.url}/metrics`)).text, 'nri_knative_revision_serving'), 0);
    const answer = await review(fn);
    assert.equal(answer.status, 200);
    assert.equal(answer.json.response.allowed, true);
    assert.equal(answer.headers.connection, 'close');
  });

  it('routed again (a roll back): ready again, connections kept alive again', async () => {
    api.upsertKnativeService(
      'nri',
      'nri',
      { traffic: [{ revisionName: 'nri-00001', percent: 100 }] },
      routedTo('nri-00001', 'nri-00002'),
    );
    await eventually(
      () => send(`${fn.url}/readyz`),
      (result) => result.status === 200,
      10000,
    );
    await fn.waitForLog(/answering reviews again/);
    assert.equal((await review(fn)).headers.connection, 'keep-alive');
  });
});

describe('readiness when the Knative Service is slow to read, unreadable, or not there', () => {
  const api = new FakeApiServer(pki);
  let fn: RunningFunction | undefined;
  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  it('RBAC forbids it: ready, one warning naming what to grant, no retry loop', async () => {
    await api.start();
    api.fault('ksvcList', { status: 403, times: 1000 });
    fn = await startFunction(knativeEnv(api));
    await fn.waitForLog(
      /cannot watch Knative Service nri\/nri; readiness will not follow its traffic \(grant get\/list\/watch on it/,
    );
    assert.equal(
      (
        await eventually(
          () => send(`${fn!.url}/readyz`),
          (result) => result.status === 200,
          10000,
        )
      ).status,
      200,
    );
    const lists = api.counts.ksvcList;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(api.counts.ksvcList, lists);
  });

  it('not ready until the Service has been read once (a restarted superseded replica never rejoins for a moment)', async () => {
    const slow = new FakeApiServer(pki);
    await slow.start();
    slow.upsertKnativeService('nri', 'nri', {}, routedTo('nri-00002'));
    slow.fault('ksvcList', { delayMs: 1500, times: 1 });
    const restarted = await startFunction(knativeEnv(slow));
    try {
      await restarted.waitForLog(/NAD watch cache synced/);
      const early = await send(`${restarted.url}/readyz`);
      assert.equal(early.status, 503);
      assert.match(early.text, /Knative Service nri\/nri not read yet/);
      const later = await eventually(
        () => send(`${restarted.url}/readyz`),
        (result) => /superseded/.test(result.text),
        10000,
      );
      assert.equal(later.status, 503);
    } finally {
      await restarted.stop();
      await slow.stop();
    }
  });

  it('no such Knative Service: nothing to follow, ready', async () => {
    const empty = new FakeApiServer(pki);
    await empty.start();
    const orphan = await startFunction(knativeEnv(empty));
    try {
      assert.equal(
        (
          await eventually(
            () => send(`${orphan.url}/readyz`),
            (result) => result.status === 200,
            10000,
          )
        ).status,
        200,
      );
      assert.ok(empty.counts.ksvcList >= 1);
    } finally {
      await orphan.stop();
      await empty.stop();
    }
  });

  it('off Knative (no K_SERVICE) or NRI_FOLLOW_KNATIVE_TRAFFIC=false: the Service is never asked for', async () => {
    for (const env of [{ K_SERVICE: '' }, { NRI_FOLLOW_KNATIVE_TRAFFIC: 'false' }]) {
      const other = new FakeApiServer(pki);
      await other.start();
      const plain = await startFunction({ ...knativeEnv(other), ...env });
      try {
        await eventually(
          () => send(`${plain.url}/readyz`),
          (result) => result.status === 200,
          10000,
        );
        assert.equal(other.counts.ksvcList + other.counts.ksvcWatch, 0);
        assert.equal(metricValue((await send(`${plain.url}/metrics`)).text, 'nri_knative_revision_serving'), 1);
      } finally {
        await plain.stop();
        await other.stop();
      }
    }
  });
});
