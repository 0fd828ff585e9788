// Process entry point (`npm start`, the container). Serves reviews, probes and
// metrics on $PORT (Knative's declared port) and reviews over HTTPS for
// kube-apiserver when a certificate is configured, through one listener
// (adapters/http/listener.ts) around the same review path as the
// functions-framework function (index.ts). Unlike the functions-framework CLI
// it caps request bodies before buffering them, answers malformed JSON with
// JSON, drains in-flight reviews on SIGTERM and never exits on an unhandled
// rejection.
import { exitUnlessSupportedNode } from './config/node-runtime.js';
import { getApp, StartupError, type App } from './app.js';
import { inFlagTerms } from './config/upstream-flags.js';
import type { IncomingMessage } from 'node:http';
import { connectionAgeLimit } from './adapters/http/connection-age.js';
import { createListener } from './adapters/http/listener.js';
import { closeGracefully, createPlainServer, createSecureServer, type SecureServer } from './adapters/http/servers.js';

exitUnlessSupportedNode('nri');

// Registered before anything else can fail: a rejection nobody handles is a
// bug to log, not a reason to stop admitting pods.
let logUnhandled: (reason: unknown) => void = (reason) =>
  void process.stderr.write(`nri: unhandled promise rejection (serving continues): ${String(reason)}\n`);
process.on('unhandledRejection', (reason) => logUnhandled(reason));

/** A startup failure on stderr, in the terms the user started nri with (variables, or webhook's flags). */
function exitStarting(message: string): never {
  process.stderr.write(`nri: ${inFlagTerms(message, process.env)}\n`);
  process.exit(2);
}

/** On SIGTERM, how long kept-alive HTTPS connections get to be ended by an answer. */
const DRAIN_MS = 3000;

async function main(): Promise<void> {
  let app: App;
  try {
    app = await getApp();
  } catch (error) {
    if (error instanceof StartupError) exitStarting(error.message);
    throw error;
  }
  const { settings, logger, runtime, probes } = app;

  logUnhandled = (reason) => logger.error({ err: reason }, 'unhandled promise rejection (serving continues)');
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception; exiting so that the platform restarts a clean process');
    logger.flush();
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  });

  const plain = createPlainServer(
    createListener({
      runtime,
      transport: 'http',
      maxBodyBytes: settings.maxBodyBytes,
      maxInFlight: settings.maxInFlight,
      probes,
      reviews: settings.httpReviews,
    }),
  );
  let secure: SecureServer | undefined;
  if (settings.tls) {
    try {
      // A superseded revision's replica closes each connection after its answer, so kube-apiserver's
      // next review opens a new one, which reaches the current revision once this one is unready.
      // Idle connections are left for kube-apiserver to close: closing one under it can fail a
      // review it is writing at that moment (seen in test/e2e/knative.test.ts); it reuses its most
      // recently used connection first, which after the switch leads to the current revision.
      // So does every replica once it is shutting down (below), and any connection past its age
      // (adapters/http/connection-age.ts), so that replicas added under load get their share.
      const tooOld = connectionAgeLimit(settings.maxConnectionAgeSeconds);
      const closeAfterAnswer = (request: IncomingMessage) =>
        app.isShuttingDown() || (app.traffic !== undefined && !app.traffic.serves()) || tooOld(request);
      secure = createSecureServer(
        settings.tls,
        createListener({
          runtime,
          transport: 'https',
          maxBodyBytes: settings.maxBodyBytes,
          maxInFlight: settings.maxInFlight,
          closeAfterAnswer,
        }),
        logger,
        app.metrics,
      );
    } catch (error) {
      exitStarting((error as Error).message);
    }
    app.addReadinessCheck(secure.readiness);
  }

  /** Listens on port; a port in use is refused naming the setting that chose it. */
  const listen = (server: typeof plain, port: number, name: string, setting: string) =>
    new Promise<void>((resolve, reject) => {
      const refused = (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(`port ${port} (${setting}) is already in use: set ${setting} to a free port`)
            : error,
        );
      server.once('error', refused);
      server.listen(port, settings.bindAddress, () => {
        server.off('error', refused);
        logger.info(
          { port: (server.address() as { port: number }).port, startupMs: Math.round(performance.now()) },
          `${name} listening`,
        );
        resolve();
      });
    });
  try {
    const served = settings.httpReviews ? 'reviews, probes, metrics' : 'probes, metrics';
    await listen(plain, settings.port, `HTTP (${served})`, 'PORT');
    if (secure && settings.tls) await listen(secure.server, settings.tls.port, 'HTTPS webhook', 'NRI_TLS_PORT');
  } catch (error) {
    exitStarting(`cannot listen: ${(error as Error).message}`);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing reviews in flight');
    app.markShuttingDown();
    secure?.stopWatching();
    // kube-apiserver keeps connections alive and writes its next review into the one it used
    // last. Closing such a connection under it fails that review, so first each connection is
    // ended by an answer that says so (Connection: close, above); only what is still open after
    // DRAIN_MS is closed by the server.
    await secure?.drained(Math.min(DRAIN_MS, settings.shutdownTimeoutMs));
    await Promise.all([
      closeGracefully(plain, settings.shutdownTimeoutMs),
      secure ? closeGracefully(secure.server, settings.shutdownTimeoutMs) : undefined,
    ]);
    await app.stop();
    logger.info('stopped');
    logger.flush();
    setTimeout(() => process.exit(0), 50).unref();
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void main();
