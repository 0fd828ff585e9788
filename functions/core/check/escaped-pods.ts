// The pods check of `nri check`: pods that select networks but whose containers lack a resource
// their NADs name. They were created while nri did not see them (the webhook missing, off,
// failing open under failurePolicy Ignore, or timed out) and will fail later in the CNI, far from
// the cause. Judged by the same core as a review: what nri would add to the pod today. Pure.
import type { ClaimsFound } from '../dra.js';
import { isObject } from '../json.js';
import { matchesLabelSelector } from '../label-selector.js';
import { nadKey } from '../nad.js';
import { reviewPod, type ReviewContext } from '../review.js';
import type { Container, Nad, NadLookupOutcome, Pod, StringMap } from '../types.js';
import { count, firstLines, result, type CheckResult } from './report.js';
import type { Registration } from './webhook.js';

export interface ListedPod {
  pod: Pod;
  /** what its own ResourceClaims provide, when it has any */
  claims?: ClaimsFound;
}

/** "Kind/name" of the pod's controller, or "no owner". */
export function ownerOf(pod: Pod): string {
  const owners = (pod.metadata as { ownerReferences?: unknown }).ownerReferences;
  const list = Array.isArray(owners) ? owners.filter(isObject) : [];
  const owner = list.find((reference) => reference.controller === true) ?? list[0];
  return owner ? `${String(owner.kind)}/${String(owner.name)}` : 'no owner';
}

/** Whether the pod still runs or will: finished and deleting pods need nothing. */
export function isLive(pod: Pod): boolean {
  const phase = (pod as { status?: { phase?: unknown } }).status?.phase;
  return (
    !(pod.metadata as { deletionTimestamp?: unknown }).deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed'
  );
}

/** The resources `pod` lacks that nri would add today; empty when it has them or nri would add none. */
export function missingResources(
  pod: Pod,
  nads: ReadonlyMap<string, Nad>,
  context: ReviewContext,
  claims?: ClaimsFound,
): string[] {
  const namespace = pod.metadata?.namespace;
  const verdict = reviewPod(
    { pod, namespace, operation: 'CREATE' },
    context,
    (refs) => {
      const out = new Map<string, NadLookupOutcome>();
      for (const { namespace: ns, name } of refs) {
        const nad = nads.get(nadKey(ns, name));
        out.set(nadKey(ns, name), nad ? { status: 'found', nad } : { status: 'missing' });
      }
      return out;
    },
    claims,
  );
  if (verdict.decision.type !== 'patched') return [];
  const containers = [
    ...(pod.spec?.containers ?? []),
    ...((pod.spec?.initContainers as Container[] | undefined) ?? []),
  ];
  const requested = (resource: string) =>
    containers.some(
      (container) =>
        Object.hasOwn(container.resources?.requests ?? {}, resource) ||
        Object.hasOwn(container.resources?.limits ?? {}, resource),
    );
  return [...verdict.facts.injected.keys()].filter((resource) => !requested(resource));
}

export function checkEscapedPods(
  pods: readonly ListedPod[],
  nads: ReadonlyMap<string, Nad>,
  namespaceLabels: ReadonlyMap<string, StringMap>,
  registration: Pick<Registration, 'namespaceSelector' | 'objectSelector'> | undefined,
  context: ReviewContext,
): CheckResult {
  const escaped: string[] = [];
  let judged = 0;
  for (const { pod, claims } of pods) {
    if (!isLive(pod)) continue;
    const namespace = pod.metadata?.namespace ?? 'default';
    if (registration) {
      // Pods the webhook is not registered for were never meant to pass through nri.
      if (!matchesLabelSelector(registration.namespaceSelector, namespaceLabels.get(namespace) ?? {})) continue;
      if (!matchesLabelSelector(registration.objectSelector, pod.metadata?.labels ?? {})) continue;
    }
    judged++;
    const missing = missingResources(pod, nads, context, claims);
    if (missing.length > 0)
      escaped.push(
        `${namespace}/${pod.metadata?.name} (${ownerOf(pod)}) lacks ${missing.join(', ')}${
          typeof pod.metadata?.creationTimestamp === 'string' ? `; created ${pod.metadata.creationTimestamp}` : ''
        }`,
      );
  }
  if (escaped.length > 0)
    return result(
      'pods',
      'fail',
      `${count(escaped.length, 'pod')} that select${escaped.length === 1 ? 's' : ''} networks lack${escaped.length === 1 ? 's' : ''} a resource its NADs name: created while nri did not see ${escaped.length === 1 ? 'it, it gets' : 'them, they get'} no device`,
      firstLines(escaped),
      'delete each pod so that its owner creates it again through nri (recreate a pod with no owner); then find why nri missed it: failurePolicy Ignore, a timeout, or the webhook missing at the time',
    );
  return result(
    'pods',
    'ok',
    `${count(judged, 'pod')} with networks the webhook sees, none lacking a resource its NADs name`,
  );
}
