// The whole decision for one Pod review, as a function of the pod, the settings,
// the switches and a NAD lookup port. No I/O here: the lookup is injected.
import type { Operation } from 'fast-json-patch';
import { encodePatch } from './admission-response.js';
import { buildPatch, patchProblem } from './patch.js';
import { nadKey, planInjection, type DenialKind as PlanDenialKind } from './plan.js';
import { podNamespace, selectNetworks, type Selection } from './selection.js';
import type { CoreSettings, Nad, NetworkRef, Pod, Switches } from './types.js';

export type NadLookupOutcome = { status: 'found'; nad: Nad } | { status: 'missing' } | { status: 'error'; reason: string };

/**
 * Resolves each distinct namespace/name; keys of the result are "namespace/name".
 * A source that can answer from memory answers synchronously, sparing the hot
 * path the promises (which Node's domains, once on, make expensive).
 */
export type NadLookup = (refs: ReadonlyArray<{ namespace: string; name: string }>) => Map<string, NadLookupOutcome> | Promise<Map<string, NadLookupOutcome>>;

export type DenialKind = PlanDenialKind | 'invalid_annotation' | 'nad_not_found' | 'nad_lookup_failed' | 'internal';
export type AllowReason = 'not_create' | 'excluded_namespace' | 'no_networks' | 'unchanged';

export type Decision = (
  | { type: 'allowed'; reason: AllowReason }
  | { type: 'denied'; kind: DenialKind; message: string }
  | { type: 'patched'; ops: Operation[]; /** the ops as the base64 JSON an AdmissionReview carries */ patch: string }
) & { networks: NetworkRef[]; injected: Map<string, number> };

export interface PodReview {
  /** absent only when the operation is not CREATE (kube-apiserver sends object: null on DELETE) */
  pod: Pod | null;
  namespace?: string;
  operation?: string;
}

export interface ReviewContext {
  settings: CoreSettings;
  switches: Switches;
  lookupNads: NadLookup;
}

const none = { networks: [] as NetworkRef[], injected: new Map<string, number>() };

/** The decision; synchronous unless a NAD has to be read from the API. */
export function reviewPod(review: PodReview, context: ReviewContext): Decision | Promise<Decision> {
  if (review.operation !== undefined && review.operation !== 'CREATE') return { type: 'allowed', reason: 'not_create', ...none };
  const { pod } = review;
  if (pod === null) return { type: 'denied', kind: 'internal', message: 'internal error: a CREATE review reached the injector without its pod; please report this', ...none };

  if (context.settings.excludedNamespaces.has(podNamespace(pod, review.namespace))) return { type: 'allowed', reason: 'excluded_namespace', ...none };
  const selected = selectNetworks(pod, review.namespace, context.settings, context.switches);
  if (!selected.ok) return { type: 'denied', kind: 'invalid_annotation', message: selected.error, ...none };
  const selection = selected.value;
  const { networks } = selection;
  if (networks.length === 0 && selection.injectedAnnotations.size === 0) return { type: 'allowed', reason: 'no_networks', ...none };

  if (networks.length === 0) return decide(pod, selection, new Map(), context);
  const distinct = new Map(networks.map((ref) => [nadKey(ref.namespace, ref.name), ref]));
  const outcomes = context.lookupNads([...distinct.values()]);
  const withNads = (found: Map<string, NadLookupOutcome>): Decision => {
    const nads = new Map<string, Nad>();
    const missing: string[] = [];
    for (const key of distinct.keys()) {
      const outcome = found.get(key) ?? { status: 'error', reason: 'no answer from the NAD source' };
      if (outcome.status === 'found') nads.set(key, outcome.nad);
      else if (outcome.status === 'missing') missing.push(key);
      else {
        const message = `NetworkAttachmentDefinition ${key} could not be read: ${outcome.reason} (${upstreamNadPhrase(key)})`;
        return { type: 'denied', kind: 'nad_lookup_failed', message, networks, injected: none.injected };
      }
    }
    if (missing.length > 0) {
      const message = `NetworkAttachmentDefinition${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')} (${missing.map(upstreamNadPhrase).join('; ')})`;
      return { type: 'denied', kind: 'nad_not_found', message, networks, injected: none.injected };
    }
    return decide(pod, selection, nads, context);
  };
  return outcomes instanceof Promise ? outcomes.then(withNads) : withNads(outcomes);
}

/** The words the upstream injector denies with, which runbooks and alerts built for it search for. */
const upstreamNadPhrase = (key: string) => `could not get Network Attachment Definition ${key}`;

/** Plan, patch and prove the patch, once every NAD is known. */
function decide(pod: Pod, selection: Selection, nads: ReadonlyMap<string, Nad>, context: ReviewContext): Decision {
  const { networks } = selection;
  const planned = planInjection(pod, selection, nads, context.settings, context.switches);
  if (!planned.ok) return { type: 'denied', kind: planned.kind ?? 'invalid_nad', message: planned.error, networks, injected: none.injected };
  const plan = planned.value;
  const ops = buildPatch(pod, plan);
  if (ops.length === 0) return { type: 'allowed', reason: 'unchanged', networks, injected: plan.injected };
  const problem = patchProblem(pod, ops);
  if (problem !== undefined) {
    return { type: 'denied', kind: 'internal', message: `internal error: the injector built a patch that does not apply (${problem}); please report this`, networks, injected: plan.injected };
  }
  return { type: 'patched', ops, patch: encodePatch(ops), networks, injected: plan.injected };
}
