// Step 3 of a review: the plan as RFC 6902 operations against the pod the API
// server sent. Existing lists and maps are appended to, never replaced.
import jsonPatch, { type Operation, type Validator } from 'fast-json-patch';
import type { InjectionPlan } from './plan.js';
import { PODNETINFO_MOUNT_PATH, PODNETINFO_VOLUME, type Pod } from './types.js';

const escape = jsonPatch.escapePathComponent;

/**
 * A map as a plain object. Object.fromEntries defines own properties, so a
 * "__proto__" key stays a key and cannot reach the prototype.
 */
const toObject = (map: ReadonlyMap<string, string>): Record<string, string> => Object.fromEntries(map);

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

/**
 * A copy of each object an injection patch can write into; the rest is shared,
 * not cloned. Copies start from an empty object (Object.assign) rather than a
 * spread: V8 adds a new key to a spread copy of a JSON.parse'd object on its
 * slow path, which made the proof the most expensive step of a review.
 */
function writableSkeleton(pod: Pod): Pod {
  const copy = <T extends object>(value: T | undefined): T | undefined => (value === undefined || value === null ? value : Array.isArray(value) ? (value.slice() as T) : Object.assign({}, value));
  const spec: Pod['spec'] = Object.assign({}, pod.spec);
  if (spec.nodeSelector) spec.nodeSelector = copy(spec.nodeSelector)!;
  if (spec.volumes) spec.volumes = copy(spec.volumes)!;
  spec.containers = spec.containers.map((container) => {
    const out = Object.assign({}, container);
    if (out.volumeMounts) out.volumeMounts = copy(out.volumeMounts)!;
    if (out.env) out.env = copy(out.env)!;
    if (out.resources) {
      out.resources = Object.assign({}, out.resources);
      if (out.resources.requests) out.resources.requests = copy(out.resources.requests)!;
      if (out.resources.limits) out.resources.limits = copy(out.resources.limits)!;
    }
    return out;
  });
  const skeleton: Pod = Object.assign({}, pod, { spec });
  if (pod.metadata) {
    skeleton.metadata = Object.assign({}, pod.metadata);
    if (pod.metadata.annotations) skeleton.metadata.annotations = copy(pod.metadata.annotations)!;
  }
  return skeleton;
}

/**
 * fast-json-patch's per-operation check, narrowed to the one operation we emit.
 * fast-json-patch itself still walks every path and refuses a missing parent,
 * a non-container parent, a bad array index and one past the end; this adds
 * what its generic validator would: an `add` with a value whose parent exists.
 * (The generic validator splits every path twice per call, which cost more than
 * applying the patch.) `existing` is the deepest prefix of the path that exists.
 */
const checkAdd: Validator<Pod> = (operation, index, document, existing) => {
  if (operation.op !== 'add' || operation.value === undefined) {
    throw new jsonPatch.JsonPatchError('only `add` operations with a value are expected', 'OPERATION_OP_INVALID', index, operation, document);
  }
  if (existing !== operation.path && existing.length !== operation.path.lastIndexOf('/')) {
    throw new jsonPatch.JsonPatchError('Cannot perform an `add` operation at the desired path', 'OPERATION_PATH_CANNOT_ADD', index, operation, document);
  }
};

/**
 * Undefined when the patch applies cleanly to the pod, else why it does not.
 * It is applied with fast-json-patch to a skeleton that copies only what the
 * patch may write into: the same check as on a deep clone, at a fraction of
 * the cost on the hot path.
 */
export function patchProblem(pod: Pod, ops: Operation[]): string | undefined {
  try {
    jsonPatch.applyPatch(writableSkeleton(pod), ops, checkAdd, true);
    return undefined;
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  }
}

/** The pod with the patch applied (a copy); for tests and the reference checks. */
export function applyPatchCopy<T>(document: T, ops: Operation[]): T {
  return jsonPatch.applyPatch(document, ops, true, false).newDocument;
}
