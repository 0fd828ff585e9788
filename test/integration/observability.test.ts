// Metrics and logs after a known sequence of reviews: names, labels, values.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { admissionReview, send, startFunction, type RunningFunction } from '../support/function-process.js';
import { metricValue } from '../support/metrics.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const pod = (annotations: Record<string, string>, name = 'web-1') => ({
  metadata: { name, namespace: 'default', annotations },
  spec: { containers: [{ name: 'c' }] },
});

describe('metrics and logs', () => {
  const pki = createPki();
  const api = new FakeApiServer(pki);
  let fn: RunningFunction;
  let metrics = '';
  const uids: Record<string, string> = {};

  before(async () => {
    await api.start();
    api.upsertNad('default', 'foo-network', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/foo' });
    api.upsertNad('default', 'plain');
    fn = await startFunction({
      KUBECONFIG: api.kubeconfigPath,
      NRI_LOG_LEVEL: 'info',
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
    });
    await fn.waitForLog(/NAD watch cache synced/);
    const review = async (name: string, object: unknown, https = false) => {
      const body = admissionReview(object);
      uids[name] = JSON.parse(body).request.uid;
      const url = https ? `https://localhost:${fn.tlsPort}/mutate` : `${fn.url}/mutate`;
      return send(url, { body, tls: { ca: pki.caPem } });
    };
    await review('patched1', pod({ [NETWORKS]: 'foo-network' }));
    await review('patched2', pod({ [NETWORKS]: 'foo-network,foo-network' }, 'web-2'), true);
    await review('missing', pod({ [NETWORKS]: 'ghost' }));
    await review('bad', pod({ [NETWORKS]: 'a/b/c' }));
    await review('none', pod({}));
    await review('unchanged', pod({ [NETWORKS]: 'plain' }));
    // A burst of one template (generateName, no name): decided twice, then recalled.
    for (let replica = 0; replica < 4; replica++)
      await review(
        `burst${replica}`,
        {
          ...pod({ [NETWORKS]: 'foo-network' }),
          metadata: { generateName: 'burst-', namespace: 'default', annotations: { [NETWORKS]: 'foo-network' } },
        },
        true,
      );
    await send(`${fn.url}/mutate`, { body: 'not json' });
    metrics = (await send(`${fn.url}/metrics`)).text;
  });
  after(async () => {
    await fn?.stop();
    await api.stop();
  });

  it('counts reviews by outcome and bounded reason', () => {
    const expected: Array<[string, number]> = [
      ['outcome="patched",reason="injected"', 6],
      ['outcome="denied",reason="nad_not_found"', 1],
      ['outcome="denied",reason="invalid_annotation"', 1],
      ['outcome="allowed_unchanged",reason="no_networks"', 1],
      ['outcome="allowed_unchanged",reason="unchanged"', 1],
      ['outcome="bad_request",reason="invalid_json"', 1],
    ];
    for (const [labels, value] of expected)
      assert.equal(metricValue(metrics, 'nri_admission_reviews_total', labels), value, labels);
  });

  it('times reviews per transport', () => {
    assert.equal(metricValue(metrics, 'nri_admission_review_duration_seconds_count', 'transport="http"'), 5);
    assert.equal(metricValue(metrics, 'nri_admission_review_duration_seconds_count', 'transport="https"'), 5);
    assert.match(metrics, /nri_admission_review_duration_seconds_bucket\{le="0.005",transport="http"\} \d+/);
  });

  it('reports the NAD cache, the certificate and the process', () => {
    assert.equal(metricValue(metrics, 'nri_nad_cache_synced'), 1);
    assert.equal(metricValue(metrics, 'nri_nad_cache_objects'), 2);
    assert.equal(metricValue(metrics, 'nri_nad_cache_hits_total'), 7, 'one per distinct NAD per review');
    assert.equal(metricValue(metrics, 'nri_nad_cache_misses_total'), 1, 'the ghost');
    assert.equal(metricValue(metrics, 'nri_nad_api_reads_total'), 1);
    assert.ok(metricValue(metrics, 'nri_serving_certificate_expiry_timestamp_seconds') > Date.now() / 1000);
    assert.match(metrics, /^# TYPE nri_watch_restarts_total counter$/m);
    assert.match(metrics, /^# TYPE nri_kubernetes_api_errors_total counter$/m);
    assert.match(metrics, /^process_cpu_user_seconds_total /m);
    assert.match(metrics, /^nodejs_heap_size_used_bytes /m);
  });

  it('never puts user-controlled strings in labels', () => {
    for (const needle of ['web-1', 'ghost', 'foo-network', 'a/b/c', 'default'])
      assert.ok(!metrics.includes(needle), `${needle} is not in /metrics`);
  });

  it('logs one structured line per review with what an operator needs', async () => {
    await fn.waitForLog(new RegExp(uids.unchanged!)); // lines are buffered for up to half a second
    const lines = fn.logs.map((line) => JSON.parse(line));
    const byUid = (name: string) => lines.filter((line) => line.uid === uids[name]);
    const patched = byUid('patched2');
    assert.equal(patched.length, 1);
    assert.deepEqual(
      { ...patched[0], time: undefined, durationMs: undefined },
      {
        level: 'info',
        time: undefined,
        component: 'nri',
        uid: uids.patched2,
        namespace: 'default',
        podName: 'web-2',
        networks: ['default/foo-network', 'default/foo-network'],
        resources: { 'example.com/foo': 2 },
        decision: 'patched',
        durationMs: undefined,
        transport: 'https',
        msg: 'review patched',
      },
    );
    assert.equal(typeof patched[0].durationMs, 'number');
    const denied = byUid('missing')[0];
    assert.equal(denied.level, 'warn');
    assert.equal(denied.decision, 'denied');
    assert.match(denied.reason, /NetworkAttachmentDefinition not found: default\/ghost/);
    for (const name of Object.keys(uids)) assert.equal(byUid(name).length, 1, `one line for review ${name}`);
    assert.equal(byUid('none')[0].reason, 'no_networks');
    assert.equal(lines.filter((line) => line.config).length, 1, 'the effective configuration, once');
    const config = lines.find((line) => line.config).config;
    assert.deepEqual(config.resourceNameKeys, ['k8s.v1.cni.cncf.io/resourceName']);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.watchTimeoutSeconds, 300);
    assert.equal(config.shutdownTimeoutMs, 20000);
  });

  it('names a pod by generateName when it has no name yet', async () => {
    const body = admissionReview({
      metadata: { generateName: 'dpdk-7c9f-', namespace: 'default', annotations: { [NETWORKS]: 'foo-network' } },
      spec: { containers: [{ name: 'c' }] },
    });
    await send(`${fn.url}/mutate`, { body });
    const line = await fn.waitForLog(new RegExp(JSON.parse(body).request.uid));
    assert.equal(JSON.parse(line).podName, 'dpdk-7c9f-*');
  });
});

describe('log level', () => {
  it('follows NRI_LOG_LEVEL', async () => {
    const fn = await startFunction({ NRI_LOG_LEVEL: 'warn' });
    try {
      await send(`${fn.url}/mutate`, { body: admissionReview(pod({ [NETWORKS]: 'foo-network' })) });
      await send(`${fn.url}/mutate`, { body: admissionReview(pod({ [NETWORKS]: 'ghost' })) });
      await fn.waitForLog(/review denied/);
      assert.ok(!fn.logs.some((line) => line.includes('review patched')), 'info lines are not written at warn');
    } finally {
      await fn.stop();
    }
  });
});
