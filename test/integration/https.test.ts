// The HTTPS listener kube-apiserver calls: TLS versions, client certificates,
// certificate rotation through the kubelet's "..data" symlink swap, and a
// graceful SIGTERM with a review in flight.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request as httpsRequest } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { loadTlsMaterial } from '../../functions/adapters/http/tls-material.js';
import { createPki, issue, type TestPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import {
  admissionReview,
  decodePatch,
  eventually,
  send,
  startFunction,
  type RunningFunction,
} from '../support/function-process.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const pod = (networks = 'foo-network') => ({
  metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: networks } },
  spec: { containers: [{ name: 'c' }] },
});

/** A Secret volume as the kubelet lays it out: files behind a "..data" symlink. */
class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'nri-secret-'));
  private generation = 0;
  constructor(cert: string, key: string) {
    const first = this.write(cert, key);
    symlinkSync(first, join(this.dir, '..data'));
    symlinkSync('..data/tls.crt', join(this.dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(this.dir, 'tls.key'));
  }
  private write(cert: string, key: string): string {
    const name = `..gen_${++this.generation}`;
    mkdirSync(join(this.dir, name));
    copyFileSync(cert, join(this.dir, name, 'tls.crt'));
    copyFileSync(key, join(this.dir, name, 'tls.key'));
    return name;
  }
  /** The kubelet's atomic update: new directory, new symlink, one rename. */
  swap(cert: string, key: string): void {
    const name = this.write(cert, key);
    symlinkSync(name, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
  }
  get certFile() {
    return join(this.dir, 'tls.crt');
  }
  get keyFile() {
    return join(this.dir, 'tls.key');
  }
}

function peerCertificate(port: number, pki: TestPki): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.caPem }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

function handshake(port: number, options: import('node:tls').ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...options }, () => {
      const protocol = socket.getProtocol() ?? '';
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}

describe('HTTPS listener', () => {
  const pki = createPki();
  const volume = new SecretVolume(pki.serverCert, pki.serverKey);
  let fn: RunningFunction;

  before(async () => {
    fn = await startFunction({
      NRI_TLS_CERT_FILE: volume.certFile,
      NRI_TLS_KEY_FILE: volume.keyFile,
      NRI_TLS_PORT: '0',
    });
  });
  after(async () => {
    await fn?.stop();
  });

  it('patches a review sent over TLS, verified against the CA', async () => {
    const result = await send(`https://localhost:${fn.tlsPort}/mutate`, {
      body: admissionReview(pod()),
      tls: { ca: pki.caPem },
    });
    assert.equal(result.status, 200);
    assert.equal(decodePatch(result)[0].value.limits['example.com/foo'], '1');
  });

  it('with NRI_HTTP_REVIEWS=false (as the ksvc sets it), the plain port serves probes and metrics but no review', async () => {
    const locked = await startFunction({
      NRI_TLS_CERT_FILE: volume.certFile,
      NRI_TLS_KEY_FILE: volume.keyFile,
      NRI_TLS_PORT: '0',
      NRI_HTTP_REVIEWS: 'false',
    });
    try {
      const plain = await send(`${locked.url}/mutate`, { body: admissionReview(pod()) });
      assert.equal(plain.status, 404);
      assert.equal(plain.json.error, 'reviews_off');
      assert.match(plain.json.message, /probes and metrics only \(NRI_HTTP_REVIEWS=false\)/);
      assert.equal((await send(`${locked.url}/readyz`)).status, 200);
      assert.equal((await send(`${locked.url}/metrics`)).status, 200);
      const secure = await send(`https://localhost:${locked.tlsPort}/mutate`, {
        body: admissionReview(pod()),
        tls: { ca: pki.caPem },
      });
      assert.equal(decodePatch(secure)[0].value.limits['example.com/foo'], '1');
    } finally {
      await locked.stop();
    }
  });

  it("hands its TLS context an empty CA list without client CAs, so Node's public roots are never parsed", () => {
    const tls = {
      port: 0,
      certFile: volume.certFile,
      keyFile: volume.keyFile,
      clientCaFiles: [],
      minVersion: 'TLSv1.2' as const,
    };
    assert.deepEqual(loadTlsMaterial(tls).options.ca, []);
    assert.equal((loadTlsMaterial({ ...tls, clientCaFiles: [pki.caCert] }).options.ca as Buffer[]).length, 1);
  });

  it('speaks TLS 1.2 and 1.3 and refuses TLS 1.1', async () => {
    assert.equal(
      await handshake(fn.tlsPort!, { ca: pki.caPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
      'TLSv1.2',
    );
    assert.equal(await handshake(fn.tlsPort!, { ca: pki.caPem, minVersion: 'TLSv1.3' }), 'TLSv1.3');
    // SECLEVEL=0 lets this client offer TLS 1.1 at all; the server must still say no.
    await assert.rejects(
      handshake(fn.tlsPort!, {
        ca: pki.caPem,
        minVersion: 'TLSv1.1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      }),
      /protocol|version|alert/i,
    );
  });

  it('only offers HTTP/1.1 over ALPN', async () => {
    const protocol = await new Promise<string | false>((resolve, reject) => {
      const socket = connect(
        {
          host: '127.0.0.1',
          port: fn.tlsPort!,
          servername: 'localhost',
          ca: pki.caPem,
          ALPNProtocols: ['h2', 'http/1.1'],
        },
        () => {
          resolve(socket.alpnProtocol ?? false);
          socket.end();
        },
      );
      socket.on('error', reject);
    });
    assert.equal(protocol, 'http/1.1');
  });

  it('serves no probes or metrics on the TLS port', async () => {
    const result = await send(`https://localhost:${fn.tlsPort}/metrics`, { tls: { ca: pki.caPem } });
    assert.equal(result.status, 404);
  });

  it('answers GET /served-certificate on the TLS port only, with the certificate that connection was served (nri check)', async () => {
    const result = await send(`https://localhost:${fn.tlsPort}/served-certificate`, { tls: { ca: pki.caPem } });
    assert.equal(result.status, 200);
    const served = new X509Certificate(result.json.certificate);
    assert.equal(served.serialNumber, (await peerCertificate(fn.tlsPort!, pki)).serialNumber);
    const plain = await send(`${fn.url}/served-certificate`);
    assert.equal(plain.status, 404);
  });

  it('picks up a rotated pair after an atomic ..data swap, without a restart', async () => {
    const before = await peerCertificate(fn.tlsPort!, pki);
    const next = issue(pki.dir, 'server-rotated', '/CN=localhost', {
      ca: { cert: pki.caCert, key: pki.caKey },
      san: 'DNS:localhost,IP:127.0.0.1',
    });
    volume.swap(next.cert, next.key);
    const expected = new X509Certificate(readFileSync(next.cert)).serialNumber;
    const after = await eventually(
      () => peerCertificate(fn.tlsPort!, pki),
      (cert) => cert.serialNumber === expected,
      10000,
      200,
    );
    assert.notEqual(after.serialNumber, before.serialNumber);
    await fn.waitForLog(/serving certificate reloaded/);
    const metrics = await send(`${fn.url}/metrics`);
    assert.match(metrics.text, /nri_serving_certificate_expiry_timestamp_seconds \d+/);
  });

  it('keeps the working pair when the new one is broken', async () => {
    const current = await peerCertificate(fn.tlsPort!, pki);
    const other = issue(pki.dir, 'server-other', '/CN=localhost', {
      ca: { cert: pki.caCert, key: pki.caKey },
      san: 'DNS:localhost',
    });
    volume.swap(pki.serverCert, other.key); // a certificate with somebody else's key
    await fn.waitForLog(/new serving certificate rejected/, 10000);
    assert.equal((await peerCertificate(fn.tlsPort!, pki)).serialNumber, current.serialNumber);
    assert.equal(
      (await send(`https://localhost:${fn.tlsPort}/mutate`, { body: admissionReview(pod()), tls: { ca: pki.caPem } }))
        .status,
      200,
    );
    assert.equal((await send(`${fn.url}/readyz`)).status, 200);
  });
});

describe('HTTPS listener with client authentication', () => {
  const pki = createPki();
  let fn: RunningFunction;
  before(async () => {
    fn = await startFunction({
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
      NRI_TLS_CLIENT_CA_FILE: pki.caCert,
    });
  });
  after(async () => {
    await fn?.stop();
  });

  it('refuses a client without a certificate', async () => {
    await assert.rejects(
      send(`https://localhost:${fn.tlsPort}/mutate`, { body: admissionReview(pod()), tls: { ca: pki.caPem } }),
      /certificate|socket hang up|ECONNRESET|alert/i,
    );
  });

  it('accepts a client with a certificate from the client CA', async () => {
    const result = await send(`https://localhost:${fn.tlsPort}/mutate`, {
      body: admissionReview(pod()),
      tls: { ca: pki.caPem, cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) },
    });
    assert.equal(result.status, 200);
  });

  it('refuses a client certificate from another CA', async () => {
    const stranger = createPki('nri-stranger-');
    await assert.rejects(
      send(`https://localhost:${fn.tlsPort}/mutate`, {
        body: admissionReview(pod()),
        tls: { ca: pki.caPem, cert: readFileSync(stranger.clientCert), key: readFileSync(stranger.clientKey) },
      }),
      /certificate|socket hang up|ECONNRESET|alert/i,
    );
  });
});

describe('graceful shutdown', () => {
  it('finishes a review in flight on SIGTERM, then exits 0', async () => {
    const pki = createPki();
    const api = new FakeApiServer(pki);
    await api.start();
    api.upsertNad('default', 'slow', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/slow' });
    const fn = await startFunction({
      KUBECONFIG: api.kubeconfigPath,
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
    });
    try {
      await fn.waitForLog(/NAD watch cache synced/);
      api.deleteNad('default', 'slow');
      await eventually(
        () => send(`${fn.url}/mutate`, { body: admissionReview(pod('slow')) }),
        (r) => r.json.response.allowed === false,
      );
      // The next lookup misses the cache and waits 1.5 s on a slow GET.
      api.upsertNad('default', 'slow2', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/slow' });
      api.fault('nadGet', { delayMs: 1500 });
      const inFlight = send(`https://localhost:${fn.tlsPort}/mutate`, {
        body: admissionReview(pod('late')),
        tls: { ca: pki.caPem },
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      fn.child.kill('SIGTERM');
      const result = await inFlight;
      assert.equal(result.status, 200, 'the review in flight is answered');
      assert.equal(result.json.response.allowed, false);
      assert.match(result.json.response.status.message, /default\/late/);
      assert.equal(await fn.exited, 0);
      await fn.waitForLog(/"msg":"stopped"/);
    } finally {
      await fn.stop();
      await api.stop();
    }
  });

  it('never closes a kept-alive connection under kube-apiserver: its next answer says Connection: close, then it is closed', async () => {
    // kube-apiserver sends review after review on the connection it used last. A connection closed
    // by the server between two of them fails the review being written into it (a pod creation
    // refused). On SIGTERM each connection must be ended by an answer saying so, never under the client.
    const pki = createPki();
    const fn = await startFunction({
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.caPem });
    const body = admissionReview(pod());
    const post = () =>
      new Promise<{ status: number; connection: string | undefined; reused: boolean }>((resolve, reject) => {
        const req = httpsRequest(
          `https://localhost:${fn.tlsPort}/mutate`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, reused: req.reusedSocket }),
            );
          },
        );
        req.on('error', (error) => reject(Object.assign(error, { reused: req.reusedSocket })));
        req.end(body);
      });
    try {
      let answered = 0;
      let endedByAnswer = false;
      const failures: string[] = [];
      setTimeout(() => fn.child.kill('SIGTERM'), 300);
      for (;;) {
        try {
          const result = await post();
          assert.equal(result.status, 200);
          answered++;
          if (result.connection === 'close') {
            endedByAnswer = true;
            break;
          }
        } catch (error) {
          // A new connection refused after the server has gone is no failure of a review in flight.
          if (!(error as { reused?: boolean }).reused && (error as { code?: string }).code === 'ECONNREFUSED') break;
          failures.push(`${(error as Error).message} (reused connection: ${(error as { reused?: boolean }).reused})`);
          break;
        }
      }
      assert.deepEqual(failures, []);
      assert.ok(answered > 10, `${answered} reviews on the kept-alive connection`);
      assert.ok(endedByAnswer, 'the last answer said Connection: close');
      assert.equal(await fn.exited, 0);
    } finally {
      agent.destroy();
      await fn.stop();
    }
  });
});
