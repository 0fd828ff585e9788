// A kept-alive HTTPS connection outlives kube-apiserver's own idle limit. Its webhook client keeps
// Go's http.DefaultTransport IdleConnTimeout (90 s) and may write a review into any connection
// idle for less than that; if nri closed it first, that review would fail. This file takes about
// 95 s of waiting, so it runs on its own beside the other files.
import assert from 'node:assert/strict';
import { connect, type TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import { KEEP_ALIVE_TIMEOUT_MS } from '../../functions/adapters/http/servers.js';
import { createPki } from '../support/certs.js';
import { admissionReview, startFunction } from '../support/function-process.js';

/** Go's http.DefaultTransport IdleConnTimeout, which kube-apiserver's webhook client keeps. */
const KUBE_APISERVER_IDLE_MS = 90_000;

const review = admissionReview({
  metadata: { name: 'p', namespace: 'default', annotations: { 'k8s.v1.cni.cncf.io/networks': 'foo-network' } },
  spec: { containers: [{ name: 'c' }] },
});

/** One POST written on an open socket; resolves with the status line once the whole answer has arrived. */
async function postOn(socket: TLSSocket): Promise<string> {
  const head = await answerHeadOn(socket);
  return head.slice(0, head.indexOf('\r\n'));
}

/** One POST written on an open socket; resolves with the answer's status line and headers once all of it has arrived. */
function answerHeadOn(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const head = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (head >= 0 && length && text.length >= head + 4 + Number(length[1])) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(text.slice(0, head));
      }
    };
    const onClose = () => reject(new Error('the server closed the connection before answering'));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(
      `POST /mutate?timeout=10s HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(review)}\r\n\r\n${review}`,
    );
  });
}

async function openSocket(port: number, caPem: string): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    const opened = connect(
      { host: '127.0.0.1', port, servername: 'localhost', ca: caPem, ALPNProtocols: ['http/1.1'] },
      () => resolve(opened),
    );
    opened.once('error', reject);
  });
}

describe('kept-alive connections', () => {
  it('outlast kube-apiserver’s idle limit', () => {
    assert.ok(
      KEEP_ALIVE_TIMEOUT_MS > KUBE_APISERVER_IDLE_MS,
      `${KEEP_ALIVE_TIMEOUT_MS} ms must exceed ${KUBE_APISERVER_IDLE_MS} ms`,
    );
  });

  it('answer a review on a connection left idle for longer than kube-apiserver keeps one', async () => {
    const pki = createPki();
    const fn = await startFunction({
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
    });
    const socket = await openSocket(fn.tlsPort!, pki.caPem);
    let closedAt: number | undefined;
    socket.once('close', () => (closedAt = Date.now()));
    try {
      assert.equal(await postOn(socket), 'HTTP/1.1 200 OK');
      const idleSince = Date.now();
      await new Promise((resolve) => setTimeout(resolve, KUBE_APISERVER_IDLE_MS + 1000));
      assert.equal(
        closedAt,
        undefined,
        `nri closed the idle connection after ${((closedAt ?? 0) - idleSince) / 1000} s`,
      );
      assert.equal(await postOn(socket), 'HTTP/1.1 200 OK', 'the same connection carries the next review');
    } finally {
      socket.destroy();
      await fn.stop();
    }
  });

  it('are closed by an answer once older than NRI_MAX_CONNECTION_AGE_SECONDS (±25%), so new replicas get reviews', async () => {
    const pki = createPki();
    const fn = await startFunction({
      NRI_TLS_CERT_FILE: pki.serverCert,
      NRI_TLS_KEY_FILE: pki.serverKey,
      NRI_TLS_PORT: '0',
      NRI_MAX_CONNECTION_AGE_SECONDS: '2',
    });
    const socket = await openSocket(fn.tlsPort!, pki.caPem);
    try {
      const opened = Date.now();
      const heads: Array<{ afterMs: number; closes: boolean }> = [];
      // Reviews every 100 ms until an answer says Connection: close; none may be refused.
      for (;;) {
        const head = await answerHeadOn(socket);
        assert.match(head, /^HTTP\/1\.1 200 OK/);
        heads.push({ afterMs: Date.now() - opened, closes: /\r\nconnection: close/i.test(head) });
        if (heads.at(-1)!.closes || Date.now() - opened > 5000) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const closing = heads.at(-1)!;
      assert.ok(closing.closes, 'an answer closed the connection');
      assert.ok(heads.slice(0, -1).every((head) => !head.closes));
      // Its age, from the first review on it: between 1.5 s and 2.5 s, plus one interval.
      assert.ok(closing.afterMs >= 1500 && closing.afterMs <= 2700, `closed after ${closing.afterMs} ms`);
      await new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));
    } finally {
      socket.destroy();
      await fn.stop();
    }
  });
});
