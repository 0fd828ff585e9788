// What a NetworkAttachmentDefinition means to nri, in one place: which of its
// annotations are read, how an object from the API or a file becomes the
// core's Nad, and what a Nad asks of a pod (resources, a node selector).
import { validateNad } from '../validation/validators.js';
import { isLabelValue, isQualifiedName, isResourceName } from './names.js';
import { fail, ok, quote, type Result } from './result.js';
import {
  INJECT_ANNOTATION,
  NODE_SELECTOR_ANNOTATION,
  type CoreSettings,
  type Nad,
  type NetworkRef,
  type StringMap,
} from './types.js';

export const nadKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/**
 * The NAD annotations nri reads: the resource-name keys and the node selector.
 * Every NAD source (the watch cache, files) keeps exactly these, so a NAD means
 * the same wherever it comes from, and a cache of thousands stays small.
 */
export function nadAnnotationsRead(settings: Pick<CoreSettings, 'resourceNameKeys'>): ReadonlySet<string> {
  return new Set([...settings.resourceNameKeys, NODE_SELECTOR_ANNOTATION, INJECT_ANNOTATION]);
}

interface NadObject {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
}

/** A NetworkAttachmentDefinition object as the core reads it, or undefined when it is not shaped like one. */
export function toNad(object: unknown, fallbackNamespace: string, read: ReadonlySet<string>): Nad | undefined {
  if (!validateNad(object)) return undefined;
  const { metadata } = object as unknown as NadObject;
  const annotations: StringMap = {};
  for (const [key, value] of Object.entries(metadata.annotations ?? {})) {
    // defined, not assigned: a "__proto__" key stays a key
    if (read.has(key))
      Object.defineProperty(annotations, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return { namespace: metadata.namespace || fallbackNamespace, name: metadata.name, annotations };
}

/** What a NAD asks of a pod that selects it. */
export interface NadDemands {
  /** device-plugin resources, once each */
  resources: string[];
  /** a node label (key, value) the pod must be scheduled by */
  nodeSelector?: [string, string];
  /** the NAD says nri.k8s.cni.cncf.io/inject: "false": no resource, though its node selector applies */
  optedOut?: true;
}

/** The nri.k8s.cni.cncf.io/inject annotation of a pod or a NAD: true unless it says "false"; any other value is an error. */
export function injectionWanted(annotations: Readonly<StringMap>): Result<boolean> {
  if (!Object.hasOwn(annotations, INJECT_ANNOTATION)) return ok(true);
  const value = annotations[INJECT_ANNOTATION]!.trim();
  if (value === 'true' || value === 'false') return ok(value === 'true');
  return fail(`annotation "${INJECT_ANNOTATION}" value ${quote(value)} must be "true" or "false"`);
}

/** "namespace/name", and "@interface" when the selection names one. */
export const refLabel = (ref: NetworkRef): string =>
  `${nadKey(ref.namespace, ref.name)}${ref.interface ? `@${ref.interface}` : ''}`;

export function nadDemands(nad: Nad, resourceNameKeys: readonly string[]): Result<NadDemands> {
  const wanted = injectionWanted(nad.annotations);
  if (!wanted.ok) return fail(`NetworkAttachmentDefinition ${nadKey(nad.namespace, nad.name)} ${wanted.error}`);
  const resources = new Set<string>();
  for (const key of wanted.value ? resourceNameKeys : []) {
    if (!Object.hasOwn(nad.annotations, key)) continue;
    const resource = nad.annotations[key]!.trim();
    if (resource === '') continue;
    if (!isResourceName(resource)) {
      return fail(
        `NetworkAttachmentDefinition ${nadKey(nad.namespace, nad.name)} annotation "${key}" value ${quote(resource)} is not a valid resource name`,
      );
    }
    resources.add(resource);
  }
  const selector = nodeSelectorOf(nad);
  if (!selector.ok) return selector;
  const demands: NadDemands = selector.value
    ? { resources: [...resources], nodeSelector: selector.value }
    : { resources: [...resources] };
  if (!wanted.value) demands.optedOut = true;
  return ok(demands);
}

function nodeSelectorOf(nad: Nad): Result<[string, string] | undefined> {
  const raw = Object.hasOwn(nad.annotations, NODE_SELECTOR_ANNOTATION)
    ? nad.annotations[NODE_SELECTOR_ANNOTATION]!.trim()
    : '';
  if (raw === '') return ok(undefined);
  const where = `NetworkAttachmentDefinition ${nadKey(nad.namespace, nad.name)} annotation "${NODE_SELECTOR_ANNOTATION}" value ${quote(raw)}`;
  const parts = raw.split('=');
  // The second sentence is upstream's, for runbooks built on it.
  if (parts.length > 2)
    return fail(
      `${where} has more than one '=' (expected key=value or key); node selector in net-attach-def ${nad.name} has more than one label`,
    );
  const label = parts[0]!.trim();
  const value = (parts[1] ?? '').trim();
  if (!isQualifiedName(label)) return fail(`${where} has an invalid label key ${quote(label)}`);
  if (!isLabelValue(value)) return fail(`${where} has an invalid label value ${quote(value)}`);
  return ok([label, value]);
}
