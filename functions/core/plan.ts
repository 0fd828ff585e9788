// Step 3 of a review: given the selected networks and their NADs, decide what
// the pod must gain. The plan is data; patch.ts turns it into JSONPatch.
import type { DenialKind as AnyDenialKind } from './decision.js';
import { NO_CLAIMS, type ClaimsFound } from './dra.js';
import { nadDemands, nadKey } from './nad.js';
import { isZeroQuantity, wholeQuantity } from './quantity.js';
import { fail, ok, quote, type Result } from './result.js';
import type { Selection } from './selection.js';
import {
  INJECT_ANNOTATION,
  PODNETINFO_MOUNT_PATH,
  PODNETINFO_VOLUME,
  TARGET_CONTAINER_ANNOTATION,
  type Container,
  type CoreSettings,
  type Nad,
  type Pod,
  type Switches,
} from './types.js';

export interface DownwardItem {
  path: string;
  fieldRef?: { fieldPath: string };
  resourceFieldRef?: { containerName: string; resource: string; divisor: string };
}

export interface ResourceChange {
  containerIndex: number;
  /** final request and limit per resource for the target container */
  requests: Map<string, string>;
  limits: Map<string, string>;
}

export interface InjectionPlan {
  annotations: Map<string, string>;
  nodeSelector: Map<string, string>;
  resources?: ResourceChange;
  /** the podnetinfo volume to add, absent when the pod has one or nothing was injected */
  volumeItems?: DownwardItem[];
  mountContainers: number[];
  envContainers: number[];
  /** units injected per resource, for logs and metrics */
  injected: Map<string, number>;
  /** what the user should hear about: NADs that add no resource, resources left as the pod sets them */
  warnings: string[];
}

export type DenialKind = Extract<
  AnyDenialKind,
  'invalid_nad' | 'conflict' | 'unknown_container' | 'invalid_quantity' | 'internal'
>;
export type PlanResult = Result<InjectionPlan> & { kind?: DenialKind };

const deny = (kind: DenialKind, error: string): PlanResult => ({ ...fail(error), kind });

export function planInjection(
  pod: Pod,
  selection: Selection,
  nads: ReadonlyMap<string, Nad>,
  settings: CoreSettings,
  switches: Switches,
  /** extended resources the pod's own ResourceClaims provide (dra.ts): not added again */
  claims: ClaimsFound = NO_CLAIMS,
): PlanResult {
  const counts = new Map<string, number>();
  const nodeSelector = new Map<string, string>();
  const selectorOwner = new Map<string, string>();
  const warnings: string[] = [];
  const told = new Set<string>();
  for (const ref of selection.networks) {
    const key = nadKey(ref.namespace, ref.name);
    const nad = nads.get(key);
    if (!nad)
      return deny(
        'internal',
        `internal error: the pod names NetworkAttachmentDefinition ${key} but the injector did not read it; please report this`,
      );
    const demands = nadDemands(nad, settings.resourceNameKeys);
    if (!demands.ok) return deny('invalid_nad', demands.error);
    if (demands.value.resources.length === 0 && !told.has(key)) {
      told.add(key);
      warnings.push(
        demands.value.optedOut
          ? `NetworkAttachmentDefinition ${key} opts out (${INJECT_ANNOTATION}: "false"): no resource added for it`
          : `NetworkAttachmentDefinition ${key} names no resource (${settings.resourceNameKeys.join(', ')}): none added for it`,
      );
    }
    for (const resource of demands.value.resources) counts.set(resource, (counts.get(resource) ?? 0) + 1);
    if (demands.value.nodeSelector) {
      const [label, value] = demands.value.nodeSelector;
      const own = pod.spec.nodeSelector ?? {};
      if (Object.hasOwn(own, label) && own[label] !== value) {
        return deny(
          'conflict',
          `NetworkAttachmentDefinition ${key} needs nodeSelector ${label}=${quote(value)} but the pod sets ${label}=${quote(own[label])}`,
        );
      }
      const earlier = nodeSelector.get(label);
      if (earlier !== undefined && earlier !== value) {
        return deny(
          'conflict',
          `NetworkAttachmentDefinitions ${selectorOwner.get(label)} and ${key} need different nodeSelector values for ${label}: ${quote(earlier)} and ${quote(value)}`,
        );
      }
      if (!Object.hasOwn(own, label)) {
        nodeSelector.set(label, value);
        selectorOwner.set(label, key);
      }
    }
  }

  const containers = pod.spec.containers;
  let targetIndex = 0;
  const targetName = selection.networks.length > 0 ? selection.annotations.get(TARGET_CONTAINER_ANNOTATION) : undefined;
  if (targetName !== undefined) {
    targetIndex = containers.findIndex((container) => container.name === targetName);
    if (targetIndex < 0) {
      return deny(
        'unknown_container',
        `annotation "${TARGET_CONTAINER_ANNOTATION}" names container ${quote(targetName)}, but the pod has only ${containers.map((c) => quote(c.name)).join(', ')}`,
      );
    }
  }

  // A resource the pod's own claims provide through a DeviceClass: adding it would book a second device.
  warnings.push(...claims.warnings);
  const fromClaims = [...counts.keys()].filter((resource) => claims.provided.has(resource));
  for (const resource of fromClaims) {
    warnings.push(
      `${resource} is provided by the pod's ${claims.provided.get(resource)}: ${counts.get(resource)} not added, so no second device is booked`,
    );
    counts.delete(resource);
  }
  const resources = planResources(containers, targetIndex, counts, switches.honorExistingResources);
  if (!resources.ok) return deny('invalid_quantity', resources.error);
  const { change, injected } = resources.value;
  warnings.push(...resources.value.warnings);

  const plan: InjectionPlan = {
    annotations: selection.injectedAnnotations,
    nodeSelector,
    mountContainers: [],
    envContainers: [],
    injected,
    warnings,
  };
  if (change) plan.resources = change;
  // The networks still get their devices (from the claims), so their Downward-API files too.
  if (injected.size > 0 || fromClaims.length > 0) addPodNetInfo(plan, pod, selection, switches.hugePageDownApi);
  return ok(plan);
}

function hasResource(container: Container, resource: string): boolean {
  const { requests, limits } = container.resources ?? {};
  return (!!requests && Object.hasOwn(requests, resource)) || (!!limits && Object.hasOwn(limits, resource));
}

function planResources(
  containers: Container[],
  targetIndex: number,
  counts: Map<string, number>,
  honorExisting: boolean,
): Result<{ change?: ResourceChange; injected: Map<string, number>; warnings: string[] }> {
  const target = containers[targetIndex]!;
  const requests = new Map<string, string>();
  const limits = new Map<string, string>();
  const injected = new Map<string, number>();
  const warnings: string[] = [];
  for (const [resource, count] of counts) {
    if (!honorExisting) {
      // Whatever the user set for this resource, in any container, stands.
      const setter = containers.find((container) => hasResource(container, resource));
      if (setter) {
        warnings.push(
          `${resource} is left as container ${quote(setter.name, 64)} sets it: ${count} not added (honour mode would add)`,
        );
        continue;
      }
      requests.set(resource, String(count));
      limits.set(resource, String(count));
    } else {
      for (const [field, out] of [
        ['requests', requests],
        ['limits', limits],
      ] as const) {
        const current = target.resources?.[field];
        const existing = current && Object.hasOwn(current, resource) ? current[resource]! : '0';
        const units = wholeQuantity(existing);
        if (units === undefined) {
          return fail(
            `container ${quote(target.name)} ${field} ${resource}=${quote(existing)} is not a whole number, so ${count} cannot be added to it`,
          );
        }
        out.set(resource, String(units + BigInt(count)));
      }
    }
    injected.set(resource, count);
  }
  return requests.size === 0
    ? ok({ injected, warnings })
    : ok({ change: { containerIndex: targetIndex, requests, limits }, injected, warnings });
}

function addPodNetInfo(plan: InjectionPlan, pod: Pod, selection: Selection, hugePageDownApi: boolean): void {
  const containers = pod.spec.containers;
  if (!(pod.spec.volumes ?? []).some((volume) => volume.name === PODNETINFO_VOLUME)) {
    const items: DownwardItem[] = [];
    if (Object.keys(pod.metadata?.labels ?? {}).length > 0)
      items.push({ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } });
    if (selection.annotations.size > 0)
      items.push({ path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } });
    if (hugePageDownApi) {
      containers.forEach((container, index) => {
        const hugeItems = hugePageItems(container);
        if (hugeItems.length === 0) return;
        items.push(...hugeItems);
        if (!(container.env ?? []).some((env) => env.name === 'CONTAINER_NAME')) plan.envContainers.push(index);
      });
    }
    plan.volumeItems = items;
  }
  containers.forEach((container, index) => {
    const mounts = container.volumeMounts ?? [];
    const taken = mounts.some(
      (mount) => mount.name === PODNETINFO_VOLUME || mount.mountPath.replace(/\/+$/, '') === PODNETINFO_MOUNT_PATH,
    );
    if (!taken) plan.mountContainers.push(index);
  });
}

const HUGEPAGES = /^hugepages-(.+)$/;

function hugePageItems(container: Container): DownwardItem[] {
  const items: DownwardItem[] = [];
  for (const field of ['requests', 'limits'] as const) {
    const list = container.resources?.[field] ?? {};
    for (const [resource, amount] of Object.entries(list)) {
      const size = HUGEPAGES.exec(resource)?.[1];
      if (!size || isZeroQuantity(amount)) continue;
      items.push({
        path: `hugepages_${size.replace('i', '')}_${field === 'requests' ? 'request' : 'limit'}_${container.name}`,
        resourceFieldRef: { containerName: container.name, resource: `${field}.${resource}`, divisor: '1Mi' },
      });
    }
  }
  return items;
}
