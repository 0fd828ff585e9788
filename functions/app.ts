// Composition root: settings -> logger, metrics, NAD source, switch source and
// the review runtime both transports share. The only place adapters are wired.
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseSettings, type Settings } from './config/settings.js';
import { nadAnnotationsRead } from './core/nad.js';
import type { ReviewContext } from './core/review.js';
import type { Probes } from './adapters/http/listener.js';
import type { ReviewRuntime } from './adapters/http/review-endpoint.js';
import { ControlSwitchesWatch, StaticSwitches, type SwitchSource } from './adapters/kube/control-switches-watch.js';
import { KnativeTrafficWatch } from './adapters/kube/knative-traffic-watch.js';
import { createKubeClient } from './adapters/kube/kube-client.js';
import { loadClientNode } from './adapters/kube/load-client-node.js';
import { NadCache } from './adapters/kube/nad-cache.js';
import type { NadSource } from './adapters/nad-source.js';
import { createLogger, type Logger } from './adapters/observability/logger.js';
import { createMetrics, type Metrics } from './adapters/observability/metrics.js';
import { NO_CLAIM_SOURCE, type ClaimSource } from './adapters/claim-source.js';
import { DraIndex } from './adapters/kube/dra-index.js';
import { loadOfflineNads, OfflineNadSource } from './adapters/offline-nads.js';
import { serviceAccountDir } from './config/service-account.js';

export const DEFAULT_OFFLINE_NADS = 'examples/nads';

export interface App {
  settings: Settings;
  logger: Logger;
  metrics: Metrics;
  nads: NadSource;
  switches: SwitchSource;
  /** on Knative: whether this revision still answers reviews (readiness follows it) */
  traffic?: KnativeTrafficWatch;
  runtime: ReviewRuntime;
  probes: Probes;
  /** extra readiness checks (the HTTPS listener adds its certificate) */
  addReadinessCheck(check: () => string | null): void;
  markShuttingDown(): void;
  isShuttingDown(): boolean;
  stop(): Promise<void>;
}

export class StartupError extends Error {}

type Env = Record<string, string | undefined>;

/**
 * The cluster nri reads NADs from, only when one is chosen explicitly: the file
 * KUBECONFIG names, or the service account of the pod nri runs in. A
 * ~/.kube/config alone is never used, so `npm start` on a laptop with a
 * kubeconfig still runs on the example NADs (README, "Quick start").
 */
export async function loadClusterConfig(env: Env) {
  const inCluster = !!env.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir(env), 'token'));
  if (!env.KUBECONFIG && !inCluster) return undefined;
  const lib = await loadClientNode();
  const config = new lib.KubeConfig();
  try {
    // A list of files (a:b) is merged the way kubectl merges it.
    if (env.KUBECONFIG)
      env.KUBECONFIG.includes(delimiter) ? config.loadFromDefault() : config.loadFromFile(env.KUBECONFIG);
    else config.loadFromCluster(env.NRI_MOUNT_ROOT ?? '');
  } catch (error) {
    throw new StartupError(
      `${env.KUBECONFIG ? 'KUBECONFIG' : 'in-cluster configuration'}: cannot load the cluster configuration: ${(error as Error).message}`,
    );
  }
  if (!config.getCurrentCluster()) throw new StartupError('KUBECONFIG: the configuration names no current cluster');
  return { config, origin: env.KUBECONFIG ? `KUBECONFIG=${env.KUBECONFIG}` : 'in-cluster service account' };
}

/** Where nri's own objects (the control-switch ConfigMap) live: NRI_NAMESPACE, else the service account's namespace, else kube-system. */
export function ownNamespace(settings: Settings, env: Env): string {
  if (settings.namespace) return settings.namespace;
  try {
    return readFileSync(join(serviceAccountDir(env), 'namespace'), 'utf8').trim() || 'kube-system';
  } catch {
    return 'kube-system';
  }
}

export async function createApp(env: Env, options: { logDestination?: NodeJS.WritableStream } = {}): Promise<App> {
  const parsed = parseSettings(env);
  if (!parsed.ok) throw new StartupError(parsed.error);
  const settings = parsed.value;
  const logger = createLogger(settings.logLevel, options.logDestination);
  const metrics = createMetrics();
  metrics.revisionServing.set(1); // a KnativeTrafficWatch, when there is one, says otherwise

  let nads: NadSource;
  let switches: SwitchSource;
  let traffic: KnativeTrafficWatch | undefined;
  let claims: ClaimSource = NO_CLAIM_SOURCE;
  const cluster = settings.nadsPath ? undefined : await loadClusterConfig(env);
  const namespace = ownNamespace(settings, env);
  if (cluster) {
    const kube = createKubeClient(cluster.config, settings.apiTimeoutMs);
    nads = new NadCache({
      kube,
      metrics,
      logger,
      annotationsRead: nadAnnotationsRead(settings.core),
      watchTimeoutSeconds: settings.watchTimeoutSeconds,
      streamingList: settings.streamingList,
    });
    claims = new DraIndex({ kube, watchTimeoutSeconds: settings.watchTimeoutSeconds, logger, metrics });
    switches = new ControlSwitchesWatch({
      kube,
      namespace,
      name: settings.controlSwitchesConfigMap,
      envSwitches: settings.envSwitches,
      watchTimeoutSeconds: settings.watchTimeoutSeconds,
      pollSeconds: settings.switchesPollSeconds,
      logger,
      metrics,
    });
    if (settings.knative)
      traffic = new KnativeTrafficWatch({
        kube,
        namespace,
        ...settings.knative,
        watchTimeoutSeconds: settings.watchTimeoutSeconds,
        logger,
        metrics,
      });
  } else {
    const path = settings.nadsPath ?? DEFAULT_OFFLINE_NADS;
    try {
      nads = new OfflineNadSource(await loadOfflineNads(path, nadAnnotationsRead(settings.core)), path, metrics);
    } catch (error) {
      if (settings.nadsPath) throw new StartupError((error as Error).message);
      // Nothing the user set: say what nri looked for, not the path of a default they never chose.
      throw new StartupError(
        `no cluster to read NetworkAttachmentDefinitions from (KUBECONFIG is unset and this is not a pod with a service account), and the example NADs (${DEFAULT_OFFLINE_NADS}/, in a checkout) are not in ${process.cwd()}: set KUBECONFIG, or NRI_NADS to a file or folder of NADs`,
      );
    }
    switches = new StaticSwitches(settings.envSwitches);
  }

  const readinessChecks: Array<() => string | null> = [() => nads.readiness()];
  if (traffic) readinessChecks.push(() => traffic.readiness());
  let shuttingDown = false;
  const runtime: ReviewRuntime = {
    context: (): ReviewContext => ({ settings: settings.core, switches: switches.current() }),
    nads,
    claims,
    metrics,
    logger,
  };
  const probes: Probes = {
    readiness: () => {
      if (shuttingDown) return 'shutting down';
      for (const check of readinessChecks) {
        const reason = check();
        if (reason !== null) return reason;
      }
      return null;
    },
    metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
  };

  nads.start();
  switches.start();
  traffic?.start();
  claims.start();
  logger.info(
    {
      config: {
        port: settings.port,
        https: settings.tls
          ? {
              port: settings.tls.port,
              minVersion: settings.tls.minVersion,
              clientAuth: settings.tls.clientCaFiles.length > 0,
            }
          : false,
        resourceNameKeys: settings.core.resourceNameKeys,
        excludedNamespaces: [...settings.core.excludedNamespaces],
        multusNamespace: settings.core.multusNamespace,
        honorExistingResources: settings.envSwitches.honorExistingResources,
        hugePageDownApi: settings.envSwitches.hugePageDownApi,
        namespace,
        controlSwitches: switches.describe(),
        knativeTraffic: traffic?.describe() ?? (settings.knative ? 'no cluster' : 'off'),
        logLevel: settings.logLevel,
        apiTimeoutMs: settings.apiTimeoutMs,
        watchTimeoutSeconds: settings.watchTimeoutSeconds,
        streamingList: settings.streamingList,
        shutdownTimeoutMs: settings.shutdownTimeoutMs,
        maxBodyBytes: settings.maxBodyBytes,
        maxInFlight: settings.maxInFlight,
        clusterConfig: cluster?.origin ?? 'none',
      },
      nads: nads.describe(),
    },
    cluster
      ? 'nri starting with NADs from the cluster'
      : 'nri starting without a cluster: NADs come from files (read once; restart to reload them)',
  );

  return {
    settings,
    logger,
    metrics,
    nads,
    switches,
    ...(traffic ? { traffic } : {}),
    runtime,
    probes,
    addReadinessCheck: (check) => void readinessChecks.push(check),
    markShuttingDown: () => {
      shuttingDown = true;
    },
    isShuttingDown: () => shuttingDown,
    async stop() {
      await Promise.all([nads.stop(), switches.stop(), traffic?.stop(), claims.stop()]);
    },
  };
}

let shared: Promise<App> | undefined;

/** One app per process, whichever entry point (main or the functions-framework CLI) asks first. */
export function getApp(env: Env = process.env): Promise<App> {
  shared ??= createApp(env);
  return shared;
}
