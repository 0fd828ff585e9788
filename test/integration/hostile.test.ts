// Hostile and malformed requests, over both transports: each gets a clear 4xx
// with a JSON reason or a clear denial, the process stays up, and the next
// good review is served. Plus process faults and what must never reach a log.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { repoRoot } from '../support/fixtures.js';
import {
  admissionReview,
  decodePatch,
  send,
  startFunction,
  type RunningFunction,
} from '../support/function-process.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const good = (networks = 'foo-network') => ({
  metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: networks } },
  spec: { containers: [{ name: 'c' }] },
});
const envelope = (request: unknown) =>
  JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
const withPod = (object: unknown) =>
  envelope({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'default', object });

const BAD_REQUESTS: Array<[string, string | Buffer, RegExp]> = [
  ['not JSON', 'hello there', /not valid JSON/],
  ['truncated JSON', admissionReview(good()).slice(0, 80), /not valid JSON/],
  ['an empty body', '', /empty/],
  ['a JSON array', '[1,2,3]', /must be a JSON object/],
  ['a JSON number', '42', /must be a JSON object/],
  ['JSON null', 'null', /must be a JSON object/],
  [
    'the wrong kind',
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: {} }),
    /field "kind" must be "AdmissionReview"|AdmissionReview field "kind"/,
  ],
  [
    'the wrong apiVersion',
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }),
    /apiVersion/,
  ],
  [
    'no request',
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }),
    /has no "request", which is required/,
  ],
  ['no uid', envelope({ kind: { kind: 'Pod' }, object: good() }), /has no "uid", which is required/],
  ['no object', envelope({ uid: 'u', kind: { kind: 'Pod' } }), /has no "object", which is required/],
  [
    'an object that is not a Pod',
    envelope({ uid: 'u', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, object: { spec: {} } }),
    /nri reviews Pods only; this review is for a apps\/v1 Deployment: check the webhook's rules/,
  ],
  [
    'annotations that are numbers',
    withPod({ metadata: { annotations: { [NETWORKS]: 5 } }, spec: { containers: [{ name: 'c' }] } }),
    /annotations.*must be a string/,
  ],
  ['containers that are an object', withPod({ spec: { containers: { name: 'c' } } }), /containers" must be an array/],
  ['zero containers', withPod({ spec: { containers: [] } }), /containers" must have at least 1 item/],
  ['a null container', withPod({ spec: { containers: [null] } }), /containers.0" must be an object/],
  [
    'labels that are a list',
    withPod({ metadata: { labels: ['a'] }, spec: { containers: [{ name: 'c' }] } }),
    /labels" must be an object/,
  ],
  [
    'resource quantities that are numbers',
    withPod({ spec: { containers: [{ name: 'c', resources: { limits: { cpu: 1 } } }] } }),
    /must be a string/,
  ],
  ['a uid that is not a string', envelope({ uid: 7, kind: { kind: 'Pod' }, object: good() }), /uid" must be a string/],
  ['very deep nesting', '['.repeat(100000) + ']'.repeat(100000), /must be a JSON object/],
];

function chunked(url: string, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
      (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (c) => (body += c))
          .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // A reset while still sending may come before the answer is read; give it a moment, never hang.
    req.on('error', (error) =>
      /EPIPE|ECONNRESET/.test(String(error)) ? setTimeout(() => reject(error), 2000).unref() : reject(error),
    );
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('hostile requests (offline NADs, HTTP and HTTPS)', () => {
  const pki = createPki();
  let fn: RunningFunction;
  before(async () => {
    fn = await startFunction({
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
      NRI_MAX_BODY_BYTES: String(1024 * 1024),
    });
  });
  after(async () => {
    await fn?.stop();
  });
  const urls = () => [
    { name: 'http', url: `${fn.url}/mutate`, tls: {} },
    { name: 'https', url: `https://localhost:${fn.tlsPort}/mutate`, tls: { ca: pki.caPem } },
  ];

  for (const [title, body, reason] of BAD_REQUESTS) {
    it(`answers ${title} with 400 and a JSON reason`, async () => {
      for (const { name, url, tls } of urls()) {
        const result = await send(url, { method: 'POST', body, tls });
        assert.equal(result.status, 400, `${name}: ${result.text.slice(0, 200)}`);
        assert.equal(typeof result.json?.message, 'string', name);
        assert.match(result.json.message, reason, name);
      }
      assert.equal((await send(`${fn.url}/mutate`, { body: admissionReview(good()) })).json.response.allowed, true);
    });
  }

  it('answers a body not declared JSON with 415 naming the Content-Type, as upstream does; JSON with parameters is served', async () => {
    for (const { name, url, tls } of urls()) {
      for (const contentType of ['text/plain', 'application/yaml', 'application/x-www-form-urlencoded', undefined]) {
        const result = await send(url, {
          body: admissionReview(good()),
          headers: { 'content-type': contentType },
          tls,
        });
        assert.equal(result.status, 415, `${name}, ${contentType}: ${result.text.slice(0, 200)}`);
        assert.equal(result.json.error, 'unsupported_media_type');
        assert.match(result.json.message, /Content-Type: application\/json/);
        assert.match(result.json.message, contentType ? new RegExp(`"${contentType}"`) : /is missing/);
      }
      for (const contentType of ['application/json; charset=utf-8', 'Application/JSON']) {
        const result = await send(url, {
          body: admissionReview(good()),
          headers: { 'content-type': contentType },
          tls,
        });
        assert.equal(result.status, 200, `${name}, ${contentType}`);
        assert.ok(result.json.response.patch, `${name}, ${contentType}`);
      }
    }
  });

  it('answers oversized bodies with 413, with or without a Content-Length', async () => {
    for (const { url, tls } of urls()) {
      const declared = await send(url, { body: '{}', headers: { 'content-length': 2 * 1024 * 1024 }, tls });
      assert.equal(declared.status, 413);
      assert.equal(declared.json.error, 'too_large');
    }
    const streamed = await chunked(`${fn.url}/mutate`, 3 * 1024 * 1024);
    assert.equal(streamed.status, 413);
    assert.equal(JSON.parse(streamed.body).error, 'too_large');
    assert.equal((await send(`${fn.url}/mutate`, { body: admissionReview(good()) })).status, 200);
  });

  it('answers a declared oversized body with 413 that reaches a client still sending it, not a reset', async () => {
    // A client that writes its whole body before reading (as many do): the answer must wait in its
    // socket, which only works if nri reads what keeps arriving instead of closing on it.
    const size = 2 * 1024 * 1024;
    const exchange = (socket: Socket) =>
      new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.on('error', reject);
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.pause();
        socket.write(
          `POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`,
        );
        const piece = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const more = () => {
          if (sent >= size) return void setTimeout(() => socket.resume(), 50);
          sent += piece.length;
          socket.write(piece, () => setTimeout(more, 5));
        };
        setTimeout(more, 100); // the answer is already on its way when the body starts
      });
    for (const [name, open] of [
      ['http', () => connectTcp(fn.port, '127.0.0.1')],
      ['https', () => connectTls({ port: fn.tlsPort!, host: '127.0.0.1', servername: 'localhost', ca: pki.caPem })],
    ] as const) {
      const answer = await exchange(open());
      assert.match(answer, /^HTTP\/1\.1 413 /, name);
      assert.match(answer, /\r\nconnection: close\r\n/i, name);
      assert.match(answer, /"error":"too_large"/, name);
    }
    await fn.waitForLog(/"reason":"too_large".*exceeds the limit/);
  });

  it('treats a client that hangs up mid-body as a disconnect, not a failure', async () => {
    for (const { url, tls } of urls()) {
      await new Promise<void>((resolve) => {
        const requester = url.startsWith('https:') ? httpsRequest : httpRequest;
        const req = requester(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': 5000 },
          ...tls,
        });
        req.on('error', () => resolve());
        req.write(admissionReview(good()).slice(0, 100), () => setTimeout(() => req.destroy(), 50));
        req.on('close', () => resolve());
      });
    }
    const disconnects = () => fn.logs.filter((line) => line.includes('before sending the whole body'));
    for (let waited = 0; disconnects().length < 2 && waited < 3000; waited += 50)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = disconnects().map((line) => JSON.parse(line));
    assert.equal(lines.length, 2, 'one line per transport');
    assert.ok(
      lines.every((line) => line.level === 'warn'),
      JSON.stringify(lines),
    );
    assert.ok(!fn.logs.some((line) => line.includes('request failed')));
    assert.equal((await send(`${fn.url}/mutate`, { body: admissionReview(good()) })).json.response.allowed, true);
  });

  it('serves a pod with a field nested 100,000 levels deep like any other (nothing walks it recursively)', async () => {
    const deep = JSON.stringify(good()).replace(
      '"name":"c"',
      `"name":"c","args":${'['.repeat(100000)}${']'.repeat(100000)}`,
    );
    for (const { name, url, tls } of urls()) {
      for (let round = 0; round < 2; round++) {
        const result = await send(url, { body: withPod('POD').replace('"POD"', deep), tls });
        assert.equal(result.status, 200, `${name}: ${result.text.slice(0, 200)}`);
        assert.equal(result.json.response.allowed, true, name);
        assert.ok(
          decodePatch(result).some((op: { path: string }) => op.path.includes('resources')),
          name,
        );
      }
    }
  });

  it('answers other paths and methods with JSON 404 and 405', async () => {
    const notFound = await send(`${fn.url}/../../etc/passwd`, { body: admissionReview(good()) });
    assert.equal(notFound.status, 404);
    assert.equal(notFound.json.error, 'not_found');
    const wrongMethod = await send(`https://localhost:${fn.tlsPort}/mutate`, {
      method: 'PUT',
      body: '{}',
      tls: { ca: pki.caPem },
    });
    assert.equal(wrongMethod.status, 405);
  });

  it('denies names that try path traversal or URL tricks, quoting them', async () => {
    for (const value of [
      '[{"name":"../../secrets"}]',
      '[{"name":"a","namespace":"kube-system/secrets"}]',
      'a%2Fb',
      'foo?watch=1',
      'foo#frag',
      '..',
      'ns/../x',
    ]) {
      const result = await send(`${fn.url}/mutate`, { body: admissionReview(good(value)) });
      assert.equal(result.status, 200);
      assert.equal(result.json.response.allowed, false, value);
      assert.match(result.json.response.status.message, /^annotation "k8s.v1.cni.cncf.io\/networks"/);
    }
  });

  it('handles thousands of networks in one annotation within bounds', async () => {
    const many = await send(`${fn.url}/mutate`, {
      body: admissionReview(good(Array(1000).fill('foo-network').join(','))),
    });
    assert.equal(decodePatch(many)[0].value.limits['example.com/foo'], '1000');
    const tooMany = await send(`${fn.url}/mutate`, {
      body: admissionReview(good(Array(5000).fill('foo-network').join(','))),
    });
    assert.equal(tooMany.json.response.allowed, false);
    assert.match(tooMany.json.response.status.message, /lists 5000 networks; at most 1024/);
  });

  it('does not let __proto__ or constructor keys pollute later reviews', async () => {
    const hostile = {
      metadata: {
        name: 'p',
        namespace: 'default',
        labels: JSON.parse('{"__proto__":"true","constructor":"true"}'),
        annotations: JSON.parse(`{"__proto__":"x","constructor":"y","${NETWORKS}":"foo-network"}`),
      },
      spec: {
        nodeSelector: JSON.parse('{"__proto__":"z"}'),
        containers: [{ name: 'c', resources: { requests: JSON.parse('{"__proto__":"1"}') } }],
      },
    };
    const first = await send(`${fn.url}/mutate`, {
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u', kind: { kind: 'Pod' }, namespace: 'default', object: hostile },
      }).replace('"labels":{', '"labels":{"__proto__":"true",'),
    });
    assert.equal(first.status, 200);
    const clean = await send(`${fn.url}/mutate`, {
      body: admissionReview({ metadata: { name: 'q', namespace: 'default' }, spec: { containers: [{ name: 'c' }] } }),
    });
    assert.equal(clean.json.response.allowed, true);
    assert.equal(clean.json.response.patch, undefined, 'nothing leaked into an unrelated pod');
  });

  it('survives hundreds of concurrent garbage requests, then serves a good review', async () => {
    const garbage = Array.from({ length: 300 }, (_, i) => BAD_REQUESTS[i % BAD_REQUESTS.length]![1]);
    const results = await Promise.all(
      garbage.map((body, i) =>
        i % 2
          ? send(`${fn.url}/mutate`, { body })
          : send(`https://localhost:${fn.tlsPort}/mutate`, { body, tls: { ca: pki.caPem } }),
      ),
    );
    assert.ok(results.every((r) => r.status === 400));
    assert.equal((await send(`${fn.url}/mutate`, { body: admissionReview(good()) })).json.response.allowed, true);
    assert.equal(fn.child.exitCode, null);
  });

  it('never logs pod specs or secret-looking data', async () => {
    const marker = `TOPSECRET-${Math.random().toString(16).slice(2)}`;
    const pod = {
      ...good(),
      spec: { containers: [{ name: 'c', env: [{ name: 'PASSWORD', value: marker }], args: [marker] }] },
    };
    await send(`${fn.url}/mutate`, { body: admissionReview(pod) });
    await send(`${fn.url}/mutate`, {
      body: admissionReview({ ...pod, metadata: { ...pod.metadata, annotations: { [NETWORKS]: 'ghost' } } }),
    });
    await send(`${fn.url}/mutate`, { body: admissionReview(pod).replace('"uid"', '"uid":5,"x"') });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(fn.logs.length > 0);
    assert.ok(!fn.logs.some((line) => line.includes(marker)), 'the marker never reaches a log line');
  });
});

describe('names never reach the API server unvalidated', () => {
  it('sends only well-formed NAD paths', async () => {
    const pki = createPki();
    const api = new FakeApiServer(pki);
    await api.start();
    api.fault('nadList', { status: 403 }); // force a GET for every lookup
    const fn = await startFunction({ KUBECONFIG: api.kubeconfigPath });
    try {
      for (const value of [
        '[{"name":"../../../api/v1/secrets"}]',
        '[{"name":"x","namespace":"..%2F..%2Fapi"}]',
        'a%2Fb',
        'foo?x=1',
        'ok-name',
        'other/ok-name',
      ]) {
        await send(`${fn.url}/mutate`, { body: admissionReview(good(value)) });
      }
      const gets = api.requests.filter((line) => line.includes('/namespaces/') && !line.includes('configmaps'));
      assert.deepEqual(gets, [
        'GET /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/ok-name',
        'GET /apis/k8s.cni.cncf.io/v1/namespaces/other/network-attachment-definitions/ok-name',
      ]);
    } finally {
      await fn.stop();
      await api.stop();
    }
  });
});

describe('process faults', () => {
  it('keeps memory bounded over a long run of mixed good and bad input', async () => {
    // Under a 48 MiB old-space cap a leak ends in an out-of-memory crash long
    // before 5000 requests; garbage, however much, is collected.
    const fn = await startFunction({ NODE_OPTIONS: '--max-old-space-size=48', NRI_LOG_LEVEL: 'info' });
    try {
      for (let i = 0; i < 5000; i += 50) {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            send(`${fn.url}/mutate`, {
              body:
                (i + j) % 3
                  ? admissionReview(good(j % 2 ? 'foo-network,sriov-net-a' : 'ghost'))
                  : BAD_REQUESTS[(i + j) % BAD_REQUESTS.length]![1],
            }),
          ),
        );
        assert.ok(results.every((r) => r.status === 200 || r.status === 400));
      }
      const metrics = (await send(`${fn.url}/metrics`)).text;
      const heap = Number(/nodejs_heap_size_used_bytes (\d+)/.exec(metrics)![1]);
      assert.ok(heap < 48 * 1024 * 1024, `heap in use ${(heap / 1048576).toFixed(1)} MiB`);
      assert.equal(fn.child.exitCode, null);
    } finally {
      await fn.stop();
    }
  });

  it('logs an unhandled rejection and keeps serving', async () => {
    const preload = fileURLToPath(new URL('test/fixtures/unhandled-rejection.mjs', repoRoot));
    const fn = await startFunction({ NODE_OPTIONS: `--import=${preload}` });
    try {
      await fn.waitForLog(/unhandled promise rejection \(serving continues\)/);
      assert.equal((await send(`${fn.url}/mutate`, { body: admissionReview(good()) })).json.response.allowed, true);
      assert.equal(fn.child.exitCode, null);
    } finally {
      await fn.stop();
    }
  });
});
