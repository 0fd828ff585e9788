// Knative Serving (v0.42.2, release knative-v1.15) and cert-manager (v1.21.2) run for real beside
// the e2e control plane: their own controllers, built from the Go module proxy by
// test/e2e/control-plane/build.sh, reconciling what nri's kustomization declares.
//
// What is simulated, and only this:
// - Knative's networking layer: none can be built here (design.md §6), so once the KIngress
//   Knative makes has been reconciled the test marks it Ready, as net-kourier would.
// - cert-manager's controller binary: its cmd/controller module is not published, so a thin
//   main (test/e2e/go/cert-manager/cert-manager-controller) runs cert-manager's own
//   pkg/controller reconcilers.
// Knative's webhook and nri's webhook are reached as kube-apiserver reaches any Service webhook:
// by name (`webhook.knative-serving.svc`, `nri-webhook.nri.svc`) with the TLS name checked; each
// Service is an ExternalName for localhost so that the name resolves on loopback.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../support/function-process.js';
import { cacheDir, type ControlPlane } from './control-plane.js';
import { startCainjector } from './deploy.js';

const bin = (name: string) => join(cacheDir(), 'bin', name);
const config = (name: string) => join(cacheDir(), 'knative-config', name);
export const KNATIVE_NAMESPACE = 'knative-serving';

const yamlObjects = (file: string): any[] =>
  parseAllDocuments(readFileSync(file, 'utf8'))
    .map((document) => document.toJS())
    .filter(Boolean);

/** The CRDs Knative Serving's controller waits for beyond its own (installCrds): networking's and caching's. */
export async function installKnativeCrds(cp: ControlPlane): Promise<void> {
  for (const file of ['networking-crds.yaml', 'caching-crds.yaml'])
    await cp.must(['apply', '--server-side', '-f', config(file)]);
  await cp.must(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
}

/**
 * Knative Serving's controller, webhook and HPA autoscaler with the ConfigMaps Serving ships,
 * two of them set as any real install must: a concrete queue-proxy image (the shipped value is a
 * ko:// placeholder) and no tag-to-digest resolution for `registries` (there is no registry to ask).
 */
export async function startKnative(
  cp: ControlPlane,
  registries: string[],
  queueImage = 'gcr.io/knative-releases/knative.dev/serving/cmd/queue:v1.15.2',
): Promise<void> {
  await cp.must(['create', 'namespace', KNATIVE_NAMESPACE]);
  for (const file of readdirSync(config('.')).filter(
    (name) => name.endsWith('.yaml') && !name.endsWith('-crds.yaml'),
  )) {
    await cp.must(['apply', '--server-side', '-f', config(file)]);
  }
  await cp.must([
    'patch',
    'configmap',
    'config-deployment',
    '-n',
    KNATIVE_NAMESPACE,
    '--type=merge',
    '-p',
    JSON.stringify({
      data: {
        'queue-sidecar-image': queueImage,
        'registries-skipping-tag-resolving': [
          'kind.local',
          'ko.local',
          'dev.local',
          'index.docker.io',
          ...registries,
        ].join(','),
      },
    }),
  ]);
  // The activator's Service must exist for the ServerlessService reconciler; with no activator
  // running its Endpoints stay empty and every revision is served directly ("Serve" mode).
  await cp.must(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'activator-service', namespace: KNATIVE_NAMESPACE },
          spec: { ports: [{ name: 'http', port: 80, targetPort: 8012 }], selector: { app: 'activator' } },
        },
      ],
    }),
  );

  const webhookPort = await freePort();
  await exposeOnLoopback(cp, KNATIVE_NAMESPACE, 'webhook', webhookPort);
  const env = (component: string) => ({
    SYSTEM_NAMESPACE: KNATIVE_NAMESPACE,
    KUBECONFIG: cp.adminKubeconfig,
    POD_NAME: `${component}-e2e`,
    CONFIG_LOGGING_NAME: 'config-logging',
    CONFIG_OBSERVABILITY_NAME: 'config-observability',
    METRICS_DOMAIN: 'knative.dev/internal/serving',
  });
  const ports = async () => ({
    METRICS_PROMETHEUS_PORT: String(await freePort()),
    PROFILING_PORT: String(await freePort()),
  });
  await cp.must(['apply', '--server-side', '-f', config('webhooks/secret.yaml')]);
  cp.spawn('knative-webhook', bin('knative-webhook'), [], {
    ...env('webhook'),
    ...(await ports()),
    WEBHOOK_NAME: 'webhook',
    WEBHOOK_PORT: String(webhookPort),
  });
  // The webhook configurations as Serving ships them, with the port the webhook listens on.
  for (const file of ['defaulting.yaml', 'resource-validation.yaml', 'configmap-validation.yaml']) {
    const [configuration] = yamlObjects(config(`webhooks/${file}`));
    for (const hook of configuration.webhooks) hook.clientConfig.service.port = webhookPort;
    await cp.must(['apply', '--server-side', '-f', '-'], JSON.stringify(configuration));
  }
  await cp.waitFor(
    "Knative's webhook to install its certificate",
    async () => {
      const hooks = (await cp.getJson(['mutatingwebhookconfiguration', 'webhook.serving.knative.dev'])).webhooks;
      return hooks.every((hook: any) => (hook.clientConfig.caBundle ?? '') !== '');
    },
    60000,
  );
  // The controller and autoscaler-hpa both bind a probe server on :8080; the second to start
  // loses it and goes on reconciling (design.md §6), so nothing in the suite may use 8080.
  cp.spawn('knative-controller', bin('knative-controller'), [], { ...env('controller'), ...(await ports()) });
  cp.spawn('knative-autoscaler-hpa', bin('knative-autoscaler-hpa'), [], {
    ...env('autoscaler-hpa'),
    ...(await ports()),
  });
}

/** cert-manager's certificate, issuer and request controllers, and its cainjector. */
export async function startCertManager(cp: ControlPlane): Promise<void> {
  await cp.must(['create', 'namespace', 'cert-manager']);
  cp.spawn('cert-manager-controller', bin('cert-manager-controller'), [
    '--kubeconfig',
    cp.adminKubeconfig,
    '--cluster-resource-namespace',
    'cert-manager',
  ]);
  startCainjector(cp);
}

/**
 * A Service kube-apiserver resolves to this machine: ExternalName `localhost`, so that a webhook
 * configured with `service: {name, namespace, port}` reaches a listener on `port` here, and
 * kube-apiserver still checks the certificate against `<name>.<namespace>.svc`.
 */
export async function exposeOnLoopback(cp: ControlPlane, namespace: string, name: string, port: number): Promise<void> {
  await cp.kubectl(['delete', 'service', name, '-n', namespace, '--ignore-not-found']);
  await cp.must(
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { type: 'ExternalName', externalName: 'localhost', ports: [{ name: 'https', port }] },
    }),
  );
}

/**
 * Knative's networking layer, simulated: every KIngress whose spec Knative has changed is marked
 * reconciled and Ready with a cluster-local load balancer, as net-kourier marks it. Stops when
 * the returned function is called.
 */
export function simulateIngressLayer(cp: Pick<ControlPlane, 'getJson' | 'kubectl'>): () => void {
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const list = await cp.getJson(['ingresses.networking.internal.knative.dev', '-A']).catch(() => ({ items: [] }));
      for (const ingress of list.items) {
        const ready = ingress.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
        if (ready && ingress.status?.observedGeneration === ingress.metadata.generation) continue;
        const balancer = { ingress: [{ domainInternal: `kourier-internal.kourier-system.svc.cluster.local` }] };
        const now = new Date().toISOString();
        const condition = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
        const status = {
          observedGeneration: ingress.metadata.generation,
          conditions: ['LoadBalancerReady', 'NetworkConfigured', 'Ready'].map(condition),
          privateLoadBalancer: balancer,
          publicLoadBalancer: balancer,
        };
        await cp.kubectl([
          'patch',
          'ingresses.networking.internal.knative.dev',
          ingress.metadata.name,
          '-n',
          ingress.metadata.namespace,
          '--subresource=status',
          '--type=merge',
          '-p',
          JSON.stringify({ status }),
        ]);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  void loop();
  return () => {
    stopped = true;
  };
}
