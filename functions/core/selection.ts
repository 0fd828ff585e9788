// Step 1 of a review: which annotations the pod will carry (its own plus
// user-defined injections) and which networks they select.
import { parseNetworkSelection } from './network-selection.js';
import { fail, ok, quote, type Result } from './result.js';
import {
  DEFAULT_NETWORK_ANNOTATION,
  NETWORKS_ANNOTATION,
  type CoreSettings,
  type NetworkRef,
  type Pod,
  type Switches,
} from './types.js';

export interface Selection {
  /** the namespace the pod will live in */
  namespace: string;
  /** annotations user-defined injections set (new keys, or another value than the pod's) */
  injectedAnnotations: Map<string, string>;
  /** the pod's annotations as they will be after the patch */
  annotations: Map<string, string>;
  networks: NetworkRef[];
  /** what the user should hear about: user-defined injections that replaced the pod's own values */
  warnings: string[];
}

export function podNamespace(pod: Pod, requestNamespace: string | undefined): string {
  return pod.metadata?.namespace || requestNamespace || 'default';
}

/**
 * Annotations every user-defined injection whose label is "true" (any case)
 * sets. As upstream's JSONPatch "add", a configured value replaces the pod's
 * own; a value the pod already has needs no operation.
 */
export function userDefinedAnnotations(pod: Pod, switches: Switches): Map<string, string> {
  const labels = pod.metadata?.labels ?? {};
  const own = pod.metadata?.annotations ?? {};
  const added = new Map<string, string>();
  // Sorted so that two injections setting one key resolve the same way every time.
  for (const labelKey of [...switches.userDefinedInjections.keys()].sort()) {
    if (!Object.hasOwn(labels, labelKey) || labels[labelKey]!.toLowerCase() !== 'true') continue;
    for (const [key, value] of Object.entries(switches.userDefinedInjections.get(labelKey)!)) {
      if (added.has(key) || (Object.hasOwn(own, key) && own[key] === value)) continue;
      added.set(key, value);
    }
  }
  return added;
}

export function selectNetworks(
  pod: Pod,
  requestNamespace: string | undefined,
  settings: CoreSettings,
  switches: Switches,
): Result<Selection> {
  const namespace = podNamespace(pod, requestNamespace);
  const injectedAnnotations = userDefinedAnnotations(pod, switches);
  const own = pod.metadata?.annotations ?? {};
  const annotations = new Map(Object.entries(own));
  const warnings: string[] = [];
  for (const [key, value] of injectedAnnotations) {
    if (Object.hasOwn(own, key))
      warnings.push(
        `annotation ${key} was replaced by a user-defined injection (${quote(own[key], 60)} -> ${quote(value, 60)})`,
      );
    annotations.set(key, value);
  }

  const networks: NetworkRef[] = [];
  const requested = annotations.get(NETWORKS_ANNOTATION);
  if (requested !== undefined) {
    const parsed = parseNetworkSelection(requested, namespace, 'networks');
    if (!parsed.ok) return fail(`annotation "${NETWORKS_ANNOTATION}" ${parsed.error}`);
    networks.push(...parsed.value);
  }
  const defaultNetwork = annotations.get(DEFAULT_NETWORK_ANNOTATION);
  if (defaultNetwork !== undefined) {
    // Multus resolves an un-namespaced default network in its own namespace.
    const parsed = parseNetworkSelection(defaultNetwork, settings.multusNamespace, 'default-network');
    if (!parsed.ok) return fail(`annotation "${DEFAULT_NETWORK_ANNOTATION}" ${parsed.error}`);
    if (parsed.value.length > 1) {
      return fail(
        `annotation "${DEFAULT_NETWORK_ANNOTATION}" names ${parsed.value.length} networks; Multus accepts exactly one`,
      );
    }
    networks.push(...parsed.value);
  }
  return ok({ namespace, injectedAnnotations, annotations, networks, warnings });
}
