// Step 4 of a review: the plan as RFC 6902 operations against the pod the API
// server sent (existing lists and maps are appended to, never replaced), and
// the proof that they apply to it.
import jsonPatch, { type Operation } from 'fast-json-patch';
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

/** An RFC 6901 reference token, unescaped. */
const unescapeToken = (token: string): string => token.replace(/~1/g, '/').replace(/~0/g, '~');
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;
const MISSING = Symbol('missing');

/**
 * Undefined when the patch applies cleanly to the document, else why not:
 * each operation's path is walked, as RFC 6902 applies them in order, through
 * the document and through the values earlier operations add. Nothing is copied
 * and nothing written, so the proof holds for any patch whatever paths it
 * touches (tests check it agrees with fast-json-patch applying to a copy).
 * nri only adds: to an object member, or at the end of an array.
 */
export function patchProblem(document: unknown, ops: readonly Operation[]): string | undefined {
  /** every pointer resolved so far, and the values earlier operations put at a pointer */
  const known = new Map<string, unknown>();
  /** lengths of arrays earlier operations appended to */
  const lengths = new Map<string, number>();
  // Each pointer is resolved once, through its parent: a patch's paths share their prefixes.
  const resolve = (pointer: string): unknown => {
    if (pointer === '') return document;
    if (known.has(pointer)) return known.get(pointer);
    const cut = pointer.lastIndexOf('/');
    const parent = resolve(pointer.slice(0, cut));
    const token = pointer.slice(cut + 1);
    const key = token.includes('~') ? unescapeToken(token) : token;
    let value: unknown = MISSING;
    if (Array.isArray(parent)) {
      if (ARRAY_INDEX.test(key) && Number(key) < parent.length) value = parent[Number(key)];
    } else if (parent !== null && typeof parent === 'object' && Object.hasOwn(parent, key)) {
      value = (parent as Record<string, unknown>)[key];
    }
    known.set(pointer, value);
    return value;
  };
  for (let index = 0; index < ops.length; index++) {
    const op = ops[index]!;
    const fail = (why: string) => `operation ${index + 1} (${op.op} ${op.path}): ${why}`; // built only on failure
    if (op.op !== 'add' || (op as { value?: unknown }).value === undefined) return fail('only "add" with a value is expected');
    if (!op.path.startsWith('/')) return fail('a path must start with "/"');
    const cut = op.path.lastIndexOf('/');
    const parentPointer = op.path.slice(0, cut);
    const token = op.path.slice(cut + 1);
    const key = token.includes('~') ? unescapeToken(token) : token;
    if (key === '__proto__') return fail('"__proto__" is not a key a patch may write');
    const parent = resolve(parentPointer);
    if (Array.isArray(parent)) {
      const length = lengths.get(parentPointer) ?? parent.length;
      if (key !== '-' && key !== String(length)) return fail(`nri appends to arrays; index ${JSON.stringify(key)} is not the end (${length})`);
      known.set(`${parentPointer}/${length}`, op.value);
      lengths.set(parentPointer, length + 1);
    } else if (parent !== null && typeof parent === 'object') {
      if (known.has(op.path) || Object.hasOwn(parent, key)) {
        // what was resolved or added inside the value this one replaces no longer holds
        const inside = `${op.path}/`;
        for (const pointer of known.keys()) if (pointer.startsWith(inside)) known.delete(pointer);
        for (const pointer of lengths.keys()) if (pointer === op.path || pointer.startsWith(inside)) lengths.delete(pointer);
      }
      known.set(op.path, op.value);
    } else {
      return fail(parent === MISSING ? 'the parent does not exist' : 'the parent is not an object or array');
    }
  }
  return undefined;
}
