// The replicas check of `nri check`: how many nri replicas are ready behind the Service
// kube-apiserver calls, and, on Knative, which revision its traffic goes to. Pure.
import { isObject } from '../json.js';
import { result, type CheckResult } from './report.js';
import type { WebhookTarget } from './webhook.js';

/** Ready endpoints of a Service, from its EndpointSlices (a missing `ready` condition means ready). */
export function readyEndpoints(slices: readonly unknown[]): string[] {
  const ready = new Set<string>();
  for (const slice of slices) {
    if (!isObject(slice) || !Array.isArray(slice.endpoints)) continue;
    for (const endpoint of slice.endpoints) {
      if (!isObject(endpoint) || (isObject(endpoint.conditions) && endpoint.conditions.ready === false)) continue;
      const target =
        isObject(endpoint.targetRef) && typeof endpoint.targetRef.name === 'string' ? endpoint.targetRef.name : '';
      const address = Array.isArray(endpoint.addresses) ? String(endpoint.addresses[0]) : '';
      ready.add(target || address);
    }
  }
  return [...ready].sort();
}

/** "100% to nri-00002" from a Knative Service's status.traffic, and whether its latest revision is ready. */
export function knativeRouting(service: unknown): { routed: string; latestNotReady?: string } | undefined {
  if (!isObject(service) || !isObject(service.status)) return undefined;
  const traffic = Array.isArray(service.status.traffic) ? service.status.traffic.filter(isObject) : [];
  const routed = traffic
    .filter((target) => typeof target.percent === 'number' && target.percent > 0)
    .map((target) => `${target.percent}% to ${String(target.revisionName)}`)
    .join(', ');
  const { latestCreatedRevisionName: created, latestReadyRevisionName: ready } = service.status;
  return typeof created === 'string' && created !== ready
    ? { routed: routed || 'no traffic', latestNotReady: created }
    : { routed: routed || 'no traffic' };
}

export function checkReplicas(
  target: WebhookTarget,
  slices: readonly unknown[],
  knativeService: unknown,
  knativeName: string | undefined,
): CheckResult {
  if (target.kind === 'url')
    return result(
      'replicas',
      'skip',
      `the webhook calls a URL (${target.url}), not a Service: nri check cannot count the replicas behind it`,
    );
  const where = `Service ${target.namespace}/${target.name}`;
  const ready = readyEndpoints(slices);
  const details = [...ready.map((name) => `ready: ${name}`)];
  const routing = knativeName ? knativeRouting(knativeService) : undefined;
  if (knativeName && routing)
    details.push(`Knative Service ${target.namespace}/${knativeName} routes ${routing.routed}`);
  if (ready.length === 0)
    return result(
      'replicas',
      'fail',
      `no nri replica is ready behind ${where}: every review fails (or, under failurePolicy Ignore, pods are admitted without devices)`,
      details,
      `kubectl get pods -n ${target.namespace} -l serving.knative.dev/service=${knativeName ?? 'nri'}; kubectl logs one of them (README, "Troubleshoot")`,
    );
  if (routing?.latestNotReady)
    return result(
      'replicas',
      'warn',
      `${ready.length} replica${ready.length > 1 ? 's' : ''} ready behind ${where}, but revision ${routing.latestNotReady} is not ready: an upgrade is stuck`,
      details,
      `kubectl describe revision ${routing.latestNotReady} -n ${target.namespace}`,
    );
  return result(
    'replicas',
    ready.length === 1 ? 'warn' : 'ok',
    `${ready.length} replica${ready.length > 1 ? 's' : ''} ready behind ${where}${ready.length === 1 ? ': one replica is one restart away from an outage' : ''}`,
    details,
    ready.length === 1 ? 'keep the ksvc’s min-scale at 2 or more (knative/service.yaml)' : undefined,
  );
}
