// Step 4 of a review: the plan as RFC 6902 operations against the pod the API
// server sent (existing lists and maps are appended to, never replaced), and
// the proof that they apply to it.
import jsonPatch, { type Operation } from 'fast-json-patch';
import type { InjectionPlan } from './plan.js';
import { PODNETINFO_MOUNT_PATH, PODNETINFO_VOLUME, type Pod } from './types.js';

const escapePointer = jsonPatch.escapePathComponent;

/**
 * A map as a plain object. Object.fromEntries defines own properties, so a
 * "__proto__" key stays a key and cannot reach the prototype.
 */
const toObject = (map: ReadonlyMap<string, string>): Record<string, string> => Object.fromEntries(map);

/** Add each entry to the map at `path`, creating the map when the pod has none. */
function addToMap(
  ops: Operation[],
  path: string,
  existing: object | undefined,
  entries: ReadonlyMap<string, string>,
): void {
  if (entries.size === 0) return;
  if (existing === undefined || existing === null) {
    ops.push({ op: 'add', path, value: toObject(entries) });
    return;
  }
  for (const [key, value] of entries) ops.push({ op: 'add', path: `${path}/${escapePointer(key)}`, value });
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
    appendToList(ops, '/spec/volumes', pod.spec.volumes, {
      name: PODNETINFO_VOLUME,
      downwardAPI: { items: plan.volumeItems },
    });
  }
  for (const index of plan.mountContainers) {
    const mount = { name: PODNETINFO_VOLUME, mountPath: PODNETINFO_MOUNT_PATH, readOnly: true };
    appendToList(ops, `/spec/containers/${index}/volumeMounts`, pod.spec.containers[index]!.volumeMounts, mount);
  }
  for (const index of plan.envContainers) {
    const container = pod.spec.containers[index]!;
    appendToList(ops, `/spec/containers/${index}/env`, container.env, {
      name: 'CONTAINER_NAME',
      value: container.name,
    });
  }
  return ops;
}

/** An RFC 6901 reference token, unescaped. */
const unescapeToken = (token: string): string =>
  token.includes('~') ? token.replace(/~1/g, '/').replace(/~0/g, '~') : token;
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;
const MISSING = Symbol('missing');

/** The member or element `token` names in `value`, or MISSING. */
function child(value: unknown, token: string): unknown {
  const key = unescapeToken(token);
  if (Array.isArray(value)) return ARRAY_INDEX.test(key) && Number(key) < value.length ? value[Number(key)] : MISSING;
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, key))
    return (value as Record<string, unknown>)[key];
  return MISSING;
}

/** Why operation `index` does not apply, in words that name it. */
const refusal = (index: number, op: Operation, why: string) => `operation ${index + 1} (${op.op} ${op.path}): ${why}`;

/**
 * Whether `pointer` is `prefix` or lies inside it. Compared from the end of
 * the prefix, where a patch's paths differ (startsWith costs several times more).
 */
function within(pointer: string, prefix: string): boolean {
  if (pointer.length < prefix.length || (pointer.length > prefix.length && pointer.charCodeAt(prefix.length) !== 47))
    return false;
  for (let at = prefix.length - 1; at >= 0; at--) if (pointer.charCodeAt(at) !== prefix.charCodeAt(at)) return false;
  return true;
}

/**
 * Undefined when the patch applies cleanly to the document, else why not:
 * operations are checked in order, as RFC 6902 applies them, each path walked
 * through the document and through the values earlier operations added.
 * Nothing is copied and nothing written, so the proof holds for any patch
 * whatever paths it touches (tests check it agrees with fast-json-patch
 * applying to a copy). nri only adds: to an object member, or at the end of an array.
 * fast-json-patch's validate() would answer the same by deep-copying the pod and the patch and
 * applying it: 62.6 µs per review against 4.7 µs here, three times the whole rest of a review
 * (`npm run bench:patch-check`, docs/benchmarks.md), so the proof stays ours.
 */
export function patchProblem(document: unknown, ops: readonly Operation[]): string | undefined {
  /** where each earlier operation put its value (an append's "-" replaced by its index) */
  const placed: string[] = [];
  /** the array each earlier append grew, else undefined */
  const grew: Array<string | undefined> = [];
  /**
   * The value at `pointer` as the operations before `before` leave it, and
   * which operation put it there (-1: the document). The latest operation
   * that wrote at or above the pointer decides: anything earlier beneath it
   * was replaced, and anything written lower on this path comes later.
   */
  const lookup = (pointer: string, before: number): [unknown, number] => {
    let from = before - 1;
    while (from >= 0 && !within(pointer, placed[from]!)) from--;
    let value: unknown = from < 0 ? document : (ops[from] as { value: unknown }).value;
    let at = from < 0 ? 0 : placed[from]!.length; // where the rest of the pointer starts
    while (at < pointer.length && value !== MISSING) {
      const next = pointer.indexOf('/', at + 1);
      const end = next < 0 ? pointer.length : next;
      value = child(value, pointer.slice(at + 1, end));
      at = end;
    }
    return [value, from];
  };
  for (let index = 0; index < ops.length; index++) {
    const op = ops[index]!;
    if (op.op !== 'add' || (op as { value?: unknown }).value === undefined)
      return refusal(index, op, 'only "add" with a value is expected');
    if (!op.path.startsWith('/')) return refusal(index, op, 'a path must start with "/"');
    const cut = op.path.lastIndexOf('/');
    const parentPointer = op.path.slice(0, cut);
    // Left escaped: a token holding "~" decodes to a key holding "~" or "/",
    // which is neither "__proto__", "-" nor an index, all this checks it against.
    const key = op.path.slice(cut + 1);
    if (key === '__proto__') return refusal(index, op, '"__proto__" is not a key a patch may write');
    const [parent, from] = lookup(parentPointer, index);
    if (Array.isArray(parent)) {
      let length = parent.length;
      for (let earlier = from + 1; earlier < index; earlier++) if (grew[earlier] === parentPointer) length++;
      if (key !== '-' && key !== String(length))
        return refusal(index, op, `nri appends to arrays; index ${JSON.stringify(key)} is not the end (${length})`);
      placed.push(`${parentPointer}/${length}`);
      grew.push(parentPointer);
    } else if (parent !== null && typeof parent === 'object') {
      placed.push(op.path);
      grew.push(undefined);
    } else {
      return refusal(
        index,
        op,
        parent === MISSING ? 'the parent does not exist' : 'the parent is not an object or array',
      );
    }
  }
  return undefined;
}
