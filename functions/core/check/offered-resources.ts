// The resources check of `nri check`: NADs whose device-plugin resource no node offers and no
// DeviceClass provides. A pod selecting one gets the resource from nri and then stays Pending:
// no node fits. Pure.
import { isObject } from '../json.js';
import { nadDemands, nadKey } from '../nad.js';
import type { Nad } from '../types.js';
import { firstLines, result, type CheckResult } from './report.js';

/** The extended resources a Node offers: its allocatable quantities other than zero. */
export function nodeOffers(node: unknown): string[] {
  if (!isObject(node) || !isObject(node.status) || !isObject(node.status.allocatable)) return [];
  return Object.entries(node.status.allocatable)
    .filter(([, quantity]) => typeof quantity === 'string' && !/^0+(\.0*)?[a-zA-Z]*$/.test(quantity))
    .map(([resource]) => resource);
}

export interface OfferedResources {
  /** resource -> how many nodes offer it */
  byNodes: ReadonlyMap<string, number>;
  /** DeviceClass -> the extended resource it maps (deviceClassResource); undefined when DeviceClasses could not be read */
  resourceOfClass: ReadonlyMap<string, string> | undefined;
  nodeCount: number;
}

export function checkOfferedResources(
  nads: readonly Nad[],
  offered: OfferedResources,
  resourceNameKeys: readonly string[],
): CheckResult {
  const byDeviceClasses = offered.resourceOfClass && new Set(offered.resourceOfClass.values());
  const unoffered = new Map<string, string[]>();
  let withResources = 0;
  const invalid: string[] = [];
  for (const nad of nads) {
    const demands = nadDemands(nad, resourceNameKeys);
    if (!demands.ok) {
      invalid.push(demands.error);
      continue;
    }
    if (demands.value.resources.length > 0) withResources++;
    for (const resource of demands.value.resources) {
      if ((offered.byNodes.get(resource) ?? 0) > 0 || byDeviceClasses?.has(resource)) continue;
      const keys = unoffered.get(resource);
      if (keys) keys.push(nadKey(nad.namespace, nad.name));
      else unoffered.set(resource, [nadKey(nad.namespace, nad.name)]);
    }
  }
  const counted = `${nads.length} NADs, ${withResources} naming a resource; ${offered.nodeCount} nodes${
    offered.resourceOfClass ? `, ${offered.resourceOfClass.size} DeviceClasses mapping a resource` : ''
  }`;
  const details = firstLines([
    ...[...unoffered].map(
      ([resource, keys]) =>
        `${resource}: no node offers it${byDeviceClasses ? ' and no DeviceClass maps it' : ''}; named by ${firstLines(keys, 5).join(', ')}`,
    ),
    ...invalid.map((error) => `${error}: pods selecting it are refused`),
  ]);
  if (byDeviceClasses === undefined)
    details.push('DeviceClasses could not be read (no DRA API, or no RBAC for it): only nodes were looked at');
  if (unoffered.size > 0)
    return result(
      'resources',
      'fail',
      `${unoffered.size} resource${unoffered.size > 1 ? 's' : ''} named by NADs ${unoffered.size > 1 ? 'are' : 'is'} offered by no node: pods selecting ${unoffered.size > 1 ? 'them' : 'it'} stay Pending (${counted})`,
      details,
      'start the device plugin that advertises the resource on the nodes meant for it (kubectl get node -o yaml: status.allocatable), or correct the NAD’s resourceName annotation',
    );
  if (invalid.length > 0)
    return result(
      'resources',
      'fail',
      `${invalid.length} NAD${invalid.length > 1 ? 's are' : ' is'} invalid: nri refuses pods that select them (${counted})`,
      details,
      'correct the annotation named',
    );
  return result('resources', 'ok', `every resource a NAD names is offered (${counted})`, details);
}
