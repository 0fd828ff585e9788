// Step 3 of a review: the plan as RFC 6902 operations against the pod the API
// server sent. Existing lists and maps are appended to, never replaced.
import jsonPatch, { type Operation } from 'fast-json-patch';
import type { InjectionPlan } from './plan.js';
import { PODNETINFO_MOUNT_PATH, PODNETINFO_VOLUME, type Pod } from './types.js';

const escape = jsonPatch.escapePathComponent;

/** A map as a plain object that cannot be polluted through "__proto__" keys. */
function toObject(map: ReadonlyMap<string, string>): Record<string, string> {
  const object: Record<string, string> = {};
  for (const [key, value] of map) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return object;
}

/** Add each entry to the map at `path`, creating the map when the pod has none. */
function addToMap(ops: Operation[], path: string, existing: object | undefined, entries: ReadonlyMap<string, string>): void {
  if (entries.size === 0) return;
  if (existing === undefined || existing === null) {
    ops.push({ op: 'add', path, value: toObject(entries) });
    return;
  }
  for (const [key, value] of entries) ops.push({ op: 'add', path: `${path}/${escape(key)}`, value });
}

/** Append to the list at `path`, creating it when the pod has none. */
function appendToList(ops: Operation[], path: string, existing: unknown[] | undefined, value: unknown): void {
  ops.push(existing ? { op: 'add', path: `${path}/-`, value } : { op: 'add', path, value: [value] });
}

export function buildPatch(pod: Pod, plan: InjectionPlan): Operation[] {
  const ops: Operation[] = [];
  addToMap(ops, '/metadata/annotations', pod.metadata?.annotations, plan.annotations);
  addToMap(ops, '/spec/nodeSelector', pod.spec.nodeSelector, plan.nodeSelector);

  if (plan.resources) {
    const { containerIndex, requests, limits } = plan.resources;
    const path = `/spec/containers/${containerIndex}/resources`;
    const current = pod.spec.containers[containerIndex]!.resources;
    if (!current) {
      ops.push({ op: 'add', path, value: { requests: toObject(requests), limits: toObject(limits) } });
    } else {
      addToMap(ops, `${path}/requests`, current.requests, requests);
      addToMap(ops, `${path}/limits`, current.limits, limits);
    }
  }

  if (plan.volumeItems) {
    appendToList(ops, '/spec/volumes', pod.spec.volumes, { name: PODNETINFO_VOLUME, downwardAPI: { items: plan.volumeItems } });
  }
  for (const index of plan.mountContainers) {
    const mount = { name: PODNETINFO_VOLUME, mountPath: PODNETINFO_MOUNT_PATH, readOnly: true };
    appendToList(ops, `/spec/containers/${index}/volumeMounts`, pod.spec.containers[index]!.volumeMounts, mount);
  }
  for (const index of plan.envContainers) {
    const container = pod.spec.containers[index]!;
    appendToList(ops, `/spec/containers/${index}/env`, container.env, { name: 'CONTAINER_NAME', value: container.name });
  }
  return ops;
}

/** Undefined when the patch applies cleanly to the pod, else why it does not. */
export function patchProblem(pod: Pod, ops: Operation[]): string | undefined {
  try {
    jsonPatch.applyPatch(pod, ops, true, false);
    return undefined;
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  }
}

/** The pod with the patch applied (a copy); for tests and the reference checks. */
export function applyPatchCopy<T>(document: T, ops: Operation[]): T {
  return jsonPatch.applyPatch(document, ops, true, false).newDocument;
}
