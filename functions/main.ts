// Process entry point (`npm start`, the container). Serves the functions-framework
// function on $PORT, and the same core over HTTPS for kube-apiserver when a
// certificate is configured. Unlike the functions-framework CLI it caps request
// bodies before buffering them, answers malformed JSON with JSON, drains
// in-flight reviews on SIGTERM and never exits on an unhandled rejection.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getApp, StartupError, type App } from './app.js';
import { createListener, sendJson } from './adapters/http/listener.js';
import { closeGracefully, createPlainServer, createSecureServer, type SecureServer } from './adapters/http/servers.js';

/**
 * The functions-framework pipeline that runs `mutate`, loaded on the first
 * review sent to the plain port. kube-apiserver only ever calls the HTTPS
 * listener and probes are answered before this point, so a webhook replica
 * neither pays for loading Express at cold start nor runs under the Node
 * domain that functions-framework wraps every call in (README, "Benchmarks").
 */
function lazyFunctionsFramework(logger: App['logger']): (request: IncomingMessage, response: ServerResponse) => void {
  let pipeline: Promise<RequestListener> | undefined;
  let loaded: RequestListener | undefined; // once loaded, called directly: no promise per request
  return (request, response) => {
    if (loaded) return loaded(request, response);
    pipeline ??= (async () => {
      const [{ FUNCTION_NAME }, testing] = await Promise.all([import('./index.js'), import('@google-cloud/functions-framework/testing')]);
      // getTestServer is functions-framework's public factory for exactly the
      // server its CLI listens with; we take its request listener. (CommonJS:
      // bundled, its exports may sit on `default`.)
      const { getTestServer } = 'getTestServer' in testing ? testing : (testing as unknown as { default: typeof testing }).default;
      return getTestServer(FUNCTION_NAME).listeners('request')[0] as RequestListener;
    })();
    pipeline.then(
      (listener) => (loaded = listener)(request, response),
      (error: unknown) => {
        logger.error({ err: error }, 'cannot load functions-framework');
        pipeline = undefined;
        sendJson(response, { status: 500, body: { error: 'internal', message: 'functions-framework could not be loaded; see the log' } });
      },
    );
  };
}

// Registered before anything else can fail: a rejection nobody handles is a
// bug to log, not a reason to stop admitting pods.
let logUnhandled: (reason: unknown) => void = (reason) => void process.stderr.write(`nri: unhandled promise rejection (serving continues): ${String(reason)}\n`);
process.on('unhandledRejection', (reason) => logUnhandled(reason));

async function main(): Promise<void> {
  let app: App;
  try {
    app = await getApp();
  } catch (error) {
    if (error instanceof StartupError) {
      process.stderr.write(`nri: ${error.message}\n`);
      process.exit(2);
    }
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
    createListener({ runtime, transport: 'http', maxBodyBytes: settings.maxBodyBytes, maxInFlight: settings.maxInFlight, probes, forward: lazyFunctionsFramework(logger) }),
  );
  let secure: SecureServer | undefined;
  if (settings.tls) {
    try {
      secure = createSecureServer(settings.tls, createListener({ runtime, transport: 'https', maxBodyBytes: settings.maxBodyBytes, maxInFlight: settings.maxInFlight }), logger, app.metrics);
    } catch (error) {
      process.stderr.write(`nri: ${(error as Error).message}\n`);
      process.exit(2);
    }
    app.addReadinessCheck(secure.readiness);
  }

  const listen = (server: typeof plain, port: number, name: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, () => {
        server.off('error', reject);
        logger.info({ port: (server.address() as { port: number }).port, startupMs: Math.round(performance.now()) }, `${name} listening`);
        resolve();
      });
    });
  try {
    await listen(plain, settings.port, 'functions-framework HTTP');
    if (secure && settings.tls) await listen(secure.server, settings.tls.port, 'HTTPS webhook');
  } catch (error) {
    process.stderr.write(`nri: cannot listen: ${(error as Error).message}\n`);
    process.exit(2);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing reviews in flight');
    app.markShuttingDown();
    secure?.stopWatching();
    await Promise.all([closeGracefully(plain, settings.shutdownTimeoutMs), secure ? closeGracefully(secure.server, settings.shutdownTimeoutMs) : undefined]);
    await app.stop();
    logger.info('stopped');
    logger.flush();
    setTimeout(() => process.exit(0), 50).unref();
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void main();
