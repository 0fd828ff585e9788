// The two listeners: plain HTTP for functions-framework (Knative's declared
// port, probes, metrics) and HTTPS for kube-apiserver. Both get timeouts and
// a graceful close that lets reviews in flight finish.
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TlsSettings } from '../../config/settings.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { loadTlsMaterial, watchTlsMaterial, type TlsMaterial } from './tls-material.js';

/**
 * How long an idle kept-alive connection stays open. kube-apiserver's webhook client keeps Go's
 * http.DefaultTransport IdleConnTimeout of 90 s (k8s.io/apimachinery util/net SetOldTransportDefaults),
 * and it writes its next review into a connection it still counts as open. Only the client may close
 * first: a server that closes an idle connection at the moment a review is written into it fails that
 * pod creation. So nri waits longer than kube-apiserver does.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000;

/** Slow or stalled clients are cut off well inside the API server's 10 s webhook timeout budget. */
function applyTimeouts(server: Server): void {
  server.headersTimeout = 10000;
  server.requestTimeout = 15000;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxHeadersCount = 100;
}

export function createPlainServer(listener: RequestListener): Server {
  const server = createHttpServer({ maxHeaderSize: 16384 }, listener);
  applyTimeouts(server);
  return server;
}

export interface SecureServer {
  server: Server;
  /** null when a valid certificate is being served */
  readiness(): string | null;
  stopWatching(): void;
  /** resolves once no connection is open, or after ms */
  drained(ms: number): Promise<void>;
}

export function createSecureServer(
  tls: TlsSettings,
  listener: RequestListener,
  logger: Logger,
  metrics: Metrics,
  pollMs?: number,
): SecureServer {
  let material: TlsMaterial = loadTlsMaterial(tls); // at startup a bad pair is fatal
  metrics.certificateExpiry.set(material.notAfter.getTime() / 1000);
  const requireClientCert = tls.clientCaFiles.length > 0;
  const server = createHttpsServer(
    {
      ...material.options,
      ALPNProtocols: ['http/1.1'],
      requestCert: requireClientCert,
      rejectUnauthorized: requireClientCert,
      maxHeaderSize: 16384,
    },
    listener,
  );
  applyTimeouts(server);
  server.on('tlsClientError', (error) => logger.debug({ error: error.message }, 'TLS handshake failed'));
  let open = 0;
  server.on('connection', (socket) => {
    open++;
    socket.once('close', () => open--);
  });
  const watcher = watchTlsMaterial(
    tls,
    () => material,
    (next) => {
      // New connections get the new pair; open ones keep theirs until they close.
      server.setSecureContext({ ...next.options });
      material = next;
      metrics.certificateExpiry.set(next.notAfter.getTime() / 1000);
      logger.info({ notAfter: next.notAfter.toISOString() }, 'serving certificate reloaded');
    },
    (error) => logger.error({ error: error.message }, 'new serving certificate rejected; keeping the current one'),
    pollMs,
  );
  return {
    server,
    readiness: () =>
      material.notAfter.getTime() > Date.now()
        ? null
        : `serving certificate expired at ${material.notAfter.toISOString()}`,
    stopWatching: () => watcher.stop(),
    async drained(ms) {
      const deadline = Date.now() + ms;
      while (open > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    },
  };
}

/** Stop accepting, let requests in flight finish, then close what is left. */
export function closeGracefully(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const deadline = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, timeoutMs);
    deadline.unref();
    server.close(() => {
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
    // Connections that finish their request later are closed as they go idle.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    sweep.unref();
    server.once('close', () => clearInterval(sweep));
  });
}
