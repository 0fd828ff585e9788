// DRA (KEP-5004): which of a NAD's extended resources a pod's own ResourceClaims already provide.
// A DeviceClass whose `extendedResourceName` is a NAD's resource lets the scheduler satisfy that
// resource from DRA devices. A pod that claims such a class itself (spec.resourceClaims) and also
// gets the extended resource injected would be given two devices: one for its claim, one more
// for the extended resource. So nri leaves that resource out and says why (plan.ts).
// Pure: objects in, names out; the adapter (kube/dra-index.ts) reads them.
import { isObject } from './json.js';
import { isDnsSubdomain } from './names.js';
import type { Pod } from './types.js';

/** One entry of a pod's spec.resourceClaims: the claim it names, or the template one is made from. */
export interface PodClaimRef {
  /** the entry's name within the pod */
  name: string;
  kind: 'ResourceClaim' | 'ResourceClaimTemplate';
  /** the object's name, in the pod's namespace */
  object: string;
}

/** What the pod's claims provide: extended resource -> the claim and DeviceClass that provide it. */
export type ClaimedResources = ReadonlyMap<string, string>;

/** What the adapter found of the pod's claims, and what it could not read (said to the user). */
export interface ClaimsFound {
  provided: ClaimedResources;
  warnings: readonly string[];
}

export const NO_CLAIMS: ClaimsFound = { provided: new Map(), warnings: [] };

/** The pod's claim entries that name an object (a DNS subdomain, checked before it reaches a URL). */
export function podClaimRefs(pod: Pod): PodClaimRef[] {
  const entries = (pod.spec as { resourceClaims?: unknown }).resourceClaims;
  if (!Array.isArray(entries)) return [];
  const refs: PodClaimRef[] = [];
  for (const entry of entries) {
    if (!isObject(entry) || typeof entry.name !== 'string') continue;
    const { resourceClaimName: claim, resourceClaimTemplateName: template } = entry;
    if (typeof claim === 'string' && isDnsSubdomain(claim))
      refs.push({ name: entry.name, kind: 'ResourceClaim', object: claim });
    else if (typeof template === 'string' && isDnsSubdomain(template))
      refs.push({ name: entry.name, kind: 'ResourceClaimTemplate', object: template });
  }
  return refs;
}

/**
 * The DeviceClasses a ResourceClaim or a ResourceClaimTemplate (resource.k8s.io/v1) asks devices of:
 * each request's `exactly.deviceClassName`, and every alternative of its `firstAvailable`.
 */
export function requestedDeviceClasses(object: unknown): string[] {
  if (!isObject(object) || !isObject(object.spec)) return [];
  // A template holds the claim's spec one level down.
  const claimSpec = object.kind === 'ResourceClaimTemplate' ? object.spec.spec : object.spec;
  const devices = isObject(claimSpec) ? claimSpec.devices : undefined;
  const requests = isObject(devices) && Array.isArray(devices.requests) ? devices.requests : [];
  const classes: string[] = [];
  for (const request of requests) {
    if (!isObject(request)) continue;
    const choices = [request.exactly, ...(Array.isArray(request.firstAvailable) ? request.firstAvailable : [])];
    for (const choice of choices)
      if (isObject(choice) && typeof choice.deviceClassName === 'string') classes.push(choice.deviceClassName);
  }
  return classes;
}

/** A DeviceClass's name and the extended resource it maps, when it maps one. */
export function deviceClassResource(object: unknown): { name: string; resource: string } | undefined {
  if (!isObject(object) || !isObject(object.metadata) || !isObject(object.spec)) return undefined;
  const { name } = object.metadata;
  const resource = object.spec.extendedResourceName;
  return typeof name === 'string' && typeof resource === 'string' && resource !== '' ? { name, resource } : undefined;
}

/** The extended resources the pod's claims provide, given each claim's requested classes and each class's resource. */
export function claimedResources(
  claims: ReadonlyArray<{ ref: PodClaimRef; classes: readonly string[] }>,
  resourceOfClass: ReadonlyMap<string, string>,
): ClaimedResources {
  const provided = new Map<string, string>();
  for (const { ref, classes } of claims)
    for (const deviceClass of classes) {
      const resource = resourceOfClass.get(deviceClass);
      if (resource && !provided.has(resource))
        provided.set(resource, `${ref.kind} ${ref.object} (pod claim "${ref.name}", DeviceClass ${deviceClass})`);
    }
  return provided;
}
