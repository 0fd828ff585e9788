// Step 2 of a review: given the selected networks and their NADs, decide what
// the pod must gain. The plan is data; patch.ts turns it into JSONPatch.
import { isLabelValue, isQualifiedName, isResourceName } from './names.js';
import { isZeroQuantity, wholeQuantity } from './quantity.js';
import { fail, ok, quote, type Result } from './result.js';
import type { Selection } from './selection.js';
import {
  NODE_SELECTOR_ANNOTATION,
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
}

export type DenialKind = 'invalid_nad' | 'conflict' | 'unknown_container' | 'invalid_quantity';
export type PlanResult = Result<InjectionPlan> & { kind?: DenialKind };

export const nadKey = (namespace: string, name: string): string => `${namespace}/${name}`;

const deny = (kind: DenialKind, error: string): PlanResult => ({ ...fail(error), kind });

export function planInjection(
  pod: Pod,
  selection: Selection,
  nads: ReadonlyMap<string, Nad>,
  settings: CoreSettings,
  switches: Switches,
): PlanResult {
  const counts = new Map<string, number>();
  const nodeSelector = new Map<string, string>();
  const selectorOwner = new Map<string, string>();
  for (const ref of selection.networks) {
    const key = nadKey(ref.namespace, ref.name);
    const nad = nads.get(key);
    if (!nad) return deny('invalid_nad', `NetworkAttachmentDefinition ${key} was not looked up`);
    const { resources, selector } = factsOf(nad, settings.resourceNameKeys);
    if (!resources.ok) return deny('invalid_nad', resources.error);
    for (const resource of resources.value) counts.set(resource, (counts.get(resource) ?? 0) + 1);
    if (!selector.ok) return deny('invalid_nad', selector.error);
    if (selector.value) {
      const [label, value] = selector.value;
      const own = pod.spec.nodeSelector ?? {};
      if (Object.hasOwn(own, label) && own[label] !== value) {
        return deny('conflict', `NetworkAttachmentDefinition ${key} needs nodeSelector ${label}=${quote(value)} but the pod sets ${label}=${quote(own[label])}`);
      }
      const earlier = nodeSelector.get(label);
      if (earlier !== undefined && earlier !== value) {
        return deny('conflict', `NetworkAttachmentDefinitions ${selectorOwner.get(label)} and ${key} need different nodeSelector values for ${label}: ${quote(earlier)} and ${quote(value)}`);
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
      return deny('unknown_container', `annotation "${TARGET_CONTAINER_ANNOTATION}" names container ${quote(targetName)}, but the pod has only ${containers.map((c) => quote(c.name)).join(', ')}`);
    }
  }

  const resources = planResources(containers, targetIndex, counts, switches.honorExistingResources);
  if (!resources.ok) return deny('invalid_quantity', resources.error);
  const { change, injected } = resources.value;

  const plan: InjectionPlan = {
    annotations: selection.injectedAnnotations,
    nodeSelector,
    mountContainers: [],
    envContainers: [],
    injected,
  };
  if (change) plan.resources = change;
  if (injected.size > 0) addPodNetInfo(plan, pod, selection, switches.hugePageDownApi);
  return ok(plan);
}

interface NadFacts {
  keys: readonly string[];
  resources: Result<string[]>;
  selector: Result<[string, string] | undefined>;
}

/**
 * What a review needs from a NAD, worked out once per NAD object: the cache
 * hands out the same object until the NAD changes, so steady-state reviews
 * skip the parsing and validation. Weak keys: a replaced NAD's entry goes with it.
 */
const factsCache = new WeakMap<Nad, NadFacts>();

function factsOf(nad: Nad, keys: readonly string[]): NadFacts {
  const known = factsCache.get(nad);
  if (known && known.keys === keys) return known;
  const facts = { keys, resources: resourceNamesOf(nad, keys), selector: nodeSelectorOf(nad) };
  factsCache.set(nad, facts);
  return facts;
}

/** The resources a NAD names, once each, checked for a valid resource name. */
function resourceNamesOf(nad: Nad, keys: readonly string[]): Result<string[]> {
  const names = new Set<string>();
  for (const key of keys) {
    if (!Object.hasOwn(nad.annotations, key)) continue;
    const resource = nad.annotations[key]!.trim();
    if (resource === '') continue;
    if (!isResourceName(resource)) {
      return fail(`NetworkAttachmentDefinition ${nad.namespace}/${nad.name} annotation "${key}" value ${quote(resource)} is not a valid resource name`);
    }
    names.add(resource);
  }
  return ok([...names]);
}

function nodeSelectorOf(nad: Nad): Result<[string, string] | undefined> {
  const raw = Object.hasOwn(nad.annotations, NODE_SELECTOR_ANNOTATION) ? nad.annotations[NODE_SELECTOR_ANNOTATION]!.trim() : '';
  if (raw === '') return ok(undefined);
  const where = `NetworkAttachmentDefinition ${nad.namespace}/${nad.name} annotation "${NODE_SELECTOR_ANNOTATION}" value ${quote(raw)}`;
  const parts = raw.split('=');
  // The second sentence is upstream's, for runbooks built on it.
  if (parts.length > 2) return fail(`${where} has more than one '=' (expected key=value or key); node selector in net-attach-def ${nad.name} has more than one label`);
  const label = parts[0]!.trim();
  const value = (parts[1] ?? '').trim();
  if (!isQualifiedName(label)) return fail(`${where} has an invalid label key ${quote(label)}`);
  if (!isLabelValue(value)) return fail(`${where} has an invalid label value ${quote(value)}`);
  return ok([label, value]);
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
): Result<{ change?: ResourceChange; injected: Map<string, number> }> {
  const target = containers[targetIndex]!;
  const requests = new Map<string, string>();
  const limits = new Map<string, string>();
  const injected = new Map<string, number>();
  for (const [resource, count] of counts) {
    if (!honorExisting) {
      // Whatever the user set for this resource, in any container, stands.
      if (containers.some((container) => hasResource(container, resource))) continue;
      requests.set(resource, String(count));
      limits.set(resource, String(count));
    } else {
      for (const [field, out] of [['requests', requests], ['limits', limits]] as const) {
        const current = target.resources?.[field];
        const existing = current && Object.hasOwn(current, resource) ? current[resource]! : '0';
        const units = wholeQuantity(existing);
        if (units === undefined) {
          return fail(`container ${quote(target.name)} ${field} ${resource}=${quote(existing)} is not a whole number, so ${count} cannot be added to it`);
        }
        out.set(resource, String(units + BigInt(count)));
      }
    }
    injected.set(resource, count);
  }
  return requests.size === 0 ? ok({ injected }) : ok({ change: { containerIndex: targetIndex, requests, limits }, injected });
}

function addPodNetInfo(plan: InjectionPlan, pod: Pod, selection: Selection, hugePageDownApi: boolean): void {
  const containers = pod.spec.containers;
  if (!(pod.spec.volumes ?? []).some((volume) => volume.name === PODNETINFO_VOLUME)) {
    const items: DownwardItem[] = [];
    if (Object.keys(pod.metadata?.labels ?? {}).length > 0) items.push({ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } });
    if (selection.annotations.size > 0) items.push({ path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } });
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
    const taken = mounts.some((mount) => mount.name === PODNETINFO_VOLUME || mount.mountPath.replace(/\/+$/, '') === PODNETINFO_MOUNT_PATH);
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
