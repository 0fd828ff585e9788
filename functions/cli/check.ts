// `nri check [-o text|json] [--webhook-configuration NAME] [--warn-days N]`: is nri doing its job
// in this cluster? Reads (never writes) the cluster KUBECONFIG names or the pod's service account,
// and runs the checks of core/check/ on what it read. Exit 0 healthy, 1 a check failed, 2 could not check.
import { loadClusterConfig, ownNamespace } from '../app.js';
import { DEVICE_CLASSES_PATH, readPodClaims } from '../adapters/kube/dra-index.js';
import { createKubeClient, type KubeApiError, type KubeClient } from '../adapters/kube/kube-client.js';
import { fetchServedCertificate } from '../adapters/kube/served-certificate.js';
import { checkEscapedPods, type ListedPod } from '../core/check/escaped-pods.js';
import { checkOfferedResources } from '../core/check/offered-resources.js';
import { checkOtherInjectors } from '../core/check/other-injectors.js';
import { checkReplicas } from '../core/check/replicas.js';
import { exitStatus, result, type CheckResult } from '../core/check/report.js';
import {
  checkRegistration,
  checkServedCertificate,
  WEBHOOK_CONFIGURATION,
  type Registration,
} from '../core/check/webhook.js';
import { readControlSwitches, type ControlSwitchesConfigMap } from '../core/control-switches.js';
import { deviceClassResource } from '../core/dra.js';
import { isObject } from '../core/json.js';
import { nadAnnotationsRead, nadKey, toNad } from '../core/nad.js';
import { nodeOffers } from '../core/check/offered-resources.js';
import { DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, type Nad, type Pod, type StringMap } from '../core/types.js';
import { parseSettings, type Settings } from '../config/settings.js';
import { eachFlag, HelpAsked, Usage } from './args.js';
import { checkReport } from './check-report.js';

export const CHECK_USAGE = `Usage: nri check [-o text|json] [--webhook-configuration NAME] [--warn-days N]

Checks, read-only, that nri does its job in the cluster KUBECONFIG names (or the
pod's service account): its webhook registration and caBundle, the certificate
it serves and its expiry, its ready replicas, NADs naming a resource no node
offers, pods that escaped injection, and other injectors on the same pods.

  -o, --output FORMAT             text (default) or json
  --webhook-configuration NAME    nri's MutatingWebhookConfiguration
                                  (default ${WEBHOOK_CONFIGURATION})
  --warn-days N                   warn when the certificate expires within N days (default 14)
  -h, --help                      this help
It needs read access only: bind the ClusterRole nri-check (knative/check-rbac.yaml).
Exit status: 0 healthy (warnings allowed), 1 a check failed, 2 could not check.
`;

interface CheckArgs {
  output: 'text' | 'json';
  configuration: string;
  warnDays: number;
}

function parseArgs(argv: readonly string[]): CheckArgs {
  const args: CheckArgs = { output: 'text', configuration: WEBHOOK_CONFIGURATION, warnDays: 14 };
  eachFlag(argv, (flag, value) => {
    if (flag === '-o' || flag === '--output') {
      const output = value();
      if (output !== 'text' && output !== 'json') throw new Usage(`-o ${output}: expected text or json`);
      args.output = output;
    } else if (flag === '--webhook-configuration') args.configuration = value();
    else if (flag === '--warn-days') {
      const days = value();
      if (!/^\d{1,4}$/.test(days)) throw new Usage(`--warn-days ${days}: expected a whole number of days`);
      args.warnDays = Number(days);
    } else throw new Usage(`unknown argument ${flag}`);
  });
  return args;
}

const MUTATING_WEBHOOKS = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const KNATIVE_SERVICE_LABEL = 'serving.knative.dev/service';

/** A check that could not read what it needed, saying what access would let it. */
function unreadable(name: CheckResult['name'], what: string, error: unknown): CheckResult {
  const kind = (error as KubeApiError).kind;
  return result(
    name,
    'unknown',
    `${what} could not be read: ${(error as Error).message}`,
    [],
    kind === 'forbidden'
      ? 'bind the read-only ClusterRole nri-check to the account running nri check (knative/check-rbac.yaml)'
      : undefined,
  );
}

async function listAll(kube: KubeClient, path: string): Promise<unknown[]> {
  const items: unknown[] = [];
  await kube.listAll(path, (page) => items.push(...page));
  return items;
}

/** nri's own settings where the cluster shows them (its Knative Service's plain env values), else this process's. */
function settingsOf(knativeService: unknown, own: Settings): { settings: Settings; from: string } {
  const containers = isObject(knativeService)
    ? (knativeService as { spec?: { template?: { spec?: { containers?: unknown } } } }).spec?.template?.spec?.containers
    : undefined;
  const container = Array.isArray(containers) ? containers.find(isObject) : undefined;
  if (container && Array.isArray(container.env)) {
    const env: Record<string, string> = {};
    for (const variable of container.env)
      if (isObject(variable) && typeof variable.name === 'string' && typeof variable.value === 'string')
        env[variable.name] = variable.value;
    const parsed = parseSettings(env);
    if (parsed.ok) return { settings: parsed.value, from: 'the Knative Service’s environment' };
  }
  return { settings: own, from: 'this environment' };
}

/** Runs every check; each one that cannot read what it needs says so and the others go on. */
async function runChecks(kube: KubeClient, args: CheckArgs, own: Settings): Promise<CheckResult[]> {
  const checks: CheckResult[] = [];
  let registration: Registration | undefined;
  let configuration: unknown;
  try {
    configuration = await kube.getObject(`${MUTATING_WEBHOOKS}/${encodeURIComponent(args.configuration)}`);
    const found = checkRegistration(args.configuration, configuration);
    checks.push(found.check);
    registration = found.registration;
  } catch (error) {
    checks.push(unreadable('webhook', `MutatingWebhookConfiguration ${args.configuration}`, error));
  }

  const target = registration?.target;
  if (!registration || !target) {
    checks.push(result('certificate', 'skip', 'no webhook registration to check against'));
  } else if (registration.caBundle.trim() === '') {
    checks.push(result('certificate', 'skip', 'no caBundle to verify with'));
  } else {
    const served = await fetchServedCertificate(target, kube, own.apiTimeoutMs).catch((error: Error) => error);
    checks.push(
      served instanceof Error
        ? result('certificate', 'unknown', `the certificate nri serves could not be read: ${served.message}`)
        : checkServedCertificate(registration, served, new Date(), args.warnDays),
    );
  }

  // nri's namespace: where the webhook's Service is, else NRI_NAMESPACE or the service account's.
  let knativeService: unknown;
  if (!target) checks.push(result('replicas', 'skip', 'no webhook registration to check against'));
  else if (target.kind === 'url') checks.push(checkReplicas(target, [], undefined, undefined));
  else {
    try {
      const service = await kube.getObject(
        `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/services/${encodeURIComponent(target.name)}`,
      );
      const selector =
        isObject(service) && isObject(service.spec) && isObject(service.spec.selector) ? service.spec.selector : {};
      const knativeName =
        typeof selector[KNATIVE_SERVICE_LABEL] === 'string' ? selector[KNATIVE_SERVICE_LABEL] : undefined;
      if (knativeName)
        knativeService = await kube
          .getObject(
            `/apis/serving.knative.dev/v1/namespaces/${encodeURIComponent(target.namespace)}/services/${encodeURIComponent(knativeName)}`,
          )
          .catch(() => undefined);
      const slices =
        service === undefined
          ? []
          : await listAll(
              kube,
              `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(target.namespace)}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${target.name}`)}`,
            );
      const check = checkReplicas(target, slices, knativeService, knativeName);
      if (service === undefined)
        check.summary = `Service ${target.namespace}/${target.name} does not exist: ${check.summary}`;
      checks.push(check);
    } catch (error) {
      checks.push(unreadable('replicas', `the replicas behind ${target.namespace}/${target.name}`, error));
    }
  }

  const { settings, from } = settingsOf(knativeService, own);
  const annotationsRead = nadAnnotationsRead(settings.core);
  const nads = new Map<string, Nad>();
  let resourceOfClass: Map<string, string> | undefined;
  let nadsRead = false;
  try {
    await kube.listNads((page) => {
      for (const item of page) {
        const nad = toNad(item, 'default', annotationsRead);
        if (nad) nads.set(nadKey(nad.namespace, nad.name), nad);
      }
    });
    nadsRead = true;
    const byNodes = new Map<string, number>();
    let nodeCount = 0;
    await kube.listAll('/api/v1/nodes', (page) => {
      for (const node of page) {
        nodeCount++;
        for (const resource of nodeOffers(node)) byNodes.set(resource, (byNodes.get(resource) ?? 0) + 1);
      }
    });
    // Without the DRA API or RBAC for it, only nodes offer resources (the check says so).
    resourceOfClass = await listAll(kube, DEVICE_CLASSES_PATH).then(
      (items) =>
        new Map(items.map(deviceClassResource).flatMap((mapped) => (mapped ? [[mapped.name, mapped.resource]] : []))),
      () => undefined,
    );
    checks.push(
      checkOfferedResources(
        [...nads.values()],
        { byNodes, resourceOfClass, nodeCount },
        settings.core.resourceNameKeys,
      ),
    );
  } catch (error) {
    checks.push(unreadable('resources', nadsRead ? 'Nodes' : 'NetworkAttachmentDefinitions', error));
  }

  if (!nadsRead) checks.push(result('pods', 'skip', 'without the NADs, what a pod lacks cannot be told'));
  else {
    try {
      const namespace = target?.kind === 'service' ? target.namespace : ownNamespace(settings, process.env);
      const switches = readControlSwitches(
        settings.envSwitches,
        (await kube.getConfigMap(namespace, settings.controlSwitchesConfigMap).catch(() => undefined)) as
          | ControlSwitchesConfigMap
          | undefined,
        `ConfigMap ${namespace}/${settings.controlSwitchesConfigMap}`,
      ).switches;
      const namespaceLabels = new Map<string, StringMap>();
      for (const item of await listAll(kube, '/api/v1/namespaces')) {
        const metadata = (item as { metadata?: { name?: string; labels?: StringMap } }).metadata;
        if (metadata?.name) namespaceLabels.set(metadata.name, metadata.labels ?? {});
      }
      const pods: ListedPod[] = [];
      await kube.listAll('/api/v1/pods', (page) => {
        for (const item of page as Pod[]) {
          const annotations = item?.metadata?.annotations ?? {};
          // Only pods that select networks are kept: a cluster's pods need not all fit in memory.
          if (Object.hasOwn(annotations, NETWORKS_ANNOTATION) || Object.hasOwn(annotations, DEFAULT_NETWORK_ANNOTATION))
            pods.push({ pod: item });
        }
      });
      // Read only for pods that claim devices, where a DeviceClass maps a resource (readPodClaims).
      if (resourceOfClass)
        for (const listed of pods)
          listed.claims = await readPodClaims(kube, resourceOfClass, listed.pod, listed.pod.metadata?.namespace ?? '');
      const check = checkEscapedPods(pods, nads, namespaceLabels, registration, {
        settings: settings.core,
        switches,
      });
      check.details.push(`judged with nri's settings from ${from}`);
      checks.push(check);
    } catch (error) {
      checks.push(unreadable('pods', 'Pods or Namespaces', error));
    }
  }

  try {
    const configurations = await listAll(kube, MUTATING_WEBHOOKS);
    const ours =
      isObject(configuration) && Array.isArray(configuration.webhooks)
        ? configuration.webhooks.find(isObject)
        : undefined;
    checks.push(
      checkOtherInjectors(configurations, {
        configurationName: args.configuration,
        reinvocationPolicy: typeof ours?.reinvocationPolicy === 'string' ? ours.reinvocationPolicy : undefined,
      }),
    );
  } catch (error) {
    checks.push(unreadable('injectors', 'MutatingWebhookConfigurations', error));
  }
  return checks;
}

/** Runs `nri check`; returns the exit status. */
export async function check(
  argv: readonly string[],
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  try {
    const args = parseArgs(argv);
    const parsed = parseSettings(process.env);
    if (!parsed.ok) throw new Usage(parsed.error);
    const cluster = await loadClusterConfig(process.env).catch((error: Error) => {
      throw new Usage(error.message);
    });
    if (!cluster) throw new Usage('no cluster to check: set KUBECONFIG, or run it in a pod with a service account');
    const kube = createKubeClient(cluster.config, parsed.value.apiTimeoutMs);
    const checks = await runChecks(kube, args, parsed.value);
    const status = exitStatus(checks);
    const server = kube.describe().server;
    out(
      args.output === 'json'
        ? `${JSON.stringify({ cluster: server, checks, exitStatus: status }, null, 2)}\n`
        : checkReport(server, checks, status),
    );
    return status;
  } catch (error) {
    if (error instanceof HelpAsked) {
      out(CHECK_USAGE);
      return 0;
    }
    if (!(error instanceof Usage)) throw error;
    err(`nri check: ${error.message}\nRun "nri check --help" for usage.\n`);
    return 2;
  }
}
