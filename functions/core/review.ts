// The decision for one Pod review, in phases. No I/O here, and nothing waits:
//   1. select   (selection.ts)  which annotations the pod will carry and which networks they name
//   2. resolve  (an adapter)    the NADs those networks reference: from memory, or from the API
//   3. plan     (plan.ts)       what the pod must gain: resources, node selector, Downward API
//   4. patch    (patch.ts)      the plan as JSONPatch, proved to apply to the pod
// select() ends a review early or says which NADs to resolve; decide() takes
// what the adapter resolved and runs steps 3 and 4.
import { allow, deny, NO_FACTS, patch, type Verdict } from './decision.js';
import { injectionWanted, nadKey } from './nad.js';
import { NO_CLAIMS, type ClaimsFound } from './dra.js';
import { buildPatch, patchProblem } from './patch.js';
import { planInjection } from './plan.js';
import { podNamespace, selectNetworks, type Selection } from './selection.js';
import {
  INJECT_ANNOTATION,
  type CoreSettings,
  type Nad,
  type NadLookupOutcome,
  type NadRef,
  type Pod,
  type Switches,
} from './types.js';

export interface PodReview {
  /** absent only when the operation is not CREATE (kube-apiserver sends object: null on DELETE) */
  pod: Pod | null;
  namespace?: string;
  operation?: string;
}

export interface ReviewContext {
  settings: CoreSettings;
  switches: Switches;
}

/** A review that needs NADs: what decide() continues from. */
export interface Pending {
  pod: Pod;
  selection: Selection;
  /** each distinct NAD the selection references, to resolve */
  refs: NadRef[];
}

export type Selected = { verdict: Verdict } | { pending: Pending };

const early = (decision: Verdict['decision']): Selected => ({ verdict: { decision, facts: NO_FACTS } });

/** Step 1: the review decided already, or the NADs it needs. */
export function select(review: PodReview, context: ReviewContext): Selected {
  if (review.operation !== undefined && review.operation !== 'CREATE') return early(allow('not_create'));
  const { pod } = review;
  if (pod === null)
    return early(
      deny('internal', 'internal error: a CREATE review reached the injector without its pod; please report this'),
    );
  if (context.settings.excludedNamespaces.has(podNamespace(pod, review.namespace)))
    return early(allow('excluded_namespace'));
  const wanted = injectionWanted(pod.metadata?.annotations ?? {});
  if (!wanted.ok) return early(deny('invalid_annotation', wanted.error));
  if (!wanted.value)
    return {
      verdict: {
        decision: allow('opted_out'),
        facts: { ...NO_FACTS, warnings: [`the pod opts out (${INJECT_ANNOTATION}: "false"): nri changed nothing`] },
      },
    };
  const selected = selectNetworks(pod, review.namespace, context.settings, context.switches);
  if (!selected.ok) return early(deny('invalid_annotation', selected.error));
  const selection = selected.value;
  if (selection.networks.length === 0 && selection.injectedAnnotations.size === 0) return early(allow('no_networks'));
  const refs = new Map<string, NadRef>();
  for (const { namespace, name } of selection.networks) refs.set(nadKey(namespace, name), { namespace, name });
  return { pending: { pod, selection, refs: [...refs.values()] } };
}

/** The words the upstream injector denies with, which runbooks and alerts built for it search for. */
const upstreamNadPhrase = (key: string) => `could not get Network Attachment Definition ${key}`;

/** Steps 3 and 4, once every NAD of `pending.refs` is resolved (keys "namespace/name"). */
export function decide(
  pending: Pending,
  resolved: ReadonlyMap<string, NadLookupOutcome>,
  context: ReviewContext,
  /** what the pod's own ResourceClaims provide (dra.ts), when the adapter looked */
  claims: ClaimsFound = NO_CLAIMS,
): Verdict {
  const { pod, selection } = pending;
  /** the facts of a review decided before a plan: the networks it named, nothing injected */
  const unplanned = { networks: selection.networks, injected: NO_FACTS.injected, warnings: selection.warnings };
  const nads = new Map<string, Nad>();
  const missing: string[] = [];
  for (const { namespace, name } of pending.refs) {
    const key = nadKey(namespace, name);
    const outcome = resolved.get(key) ?? {
      status: 'error',
      reason: 'the injector got no answer for it, which is a bug: please report it',
    };
    if (outcome.status === 'found') nads.set(key, outcome.nad);
    else if (outcome.status === 'missing') missing.push(key);
    else
      return {
        decision: deny(
          'nad_lookup_failed',
          `NetworkAttachmentDefinition ${key} could not be read: ${outcome.reason} (${upstreamNadPhrase(key)})`,
        ),
        facts: unplanned,
      };
  }
  if (missing.length > 0) {
    const message = `NetworkAttachmentDefinition${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')} (${missing.map(upstreamNadPhrase).join('; ')})`;
    return { decision: deny('nad_not_found', message), facts: unplanned };
  }

  const planned = planInjection(pod, selection, nads, context.settings, context.switches, claims);
  if (!planned.ok) return { decision: deny(planned.kind ?? 'invalid_nad', planned.error), facts: unplanned };
  const facts = {
    networks: selection.networks,
    injected: planned.value.injected,
    warnings: [...selection.warnings, ...planned.value.warnings],
  };
  const ops = buildPatch(pod, planned.value);
  if (ops.length === 0) return { decision: allow('unchanged'), facts };
  const problem = patchProblem(pod, ops);
  if (problem !== undefined)
    return {
      decision: deny(
        'internal',
        `internal error: the injector built a patch that does not apply (${problem}); please report this`,
      ),
      facts,
    };
  return { decision: patch(ops), facts };
}

/** All phases with a NAD source that answers at once (tests, and sources held in memory). */
export function reviewPod(
  review: PodReview,
  context: ReviewContext,
  resolve: (refs: NadRef[]) => ReadonlyMap<string, NadLookupOutcome>,
  claims: ClaimsFound = NO_CLAIMS,
): Verdict {
  const selected = select(review, context);
  return 'verdict' in selected
    ? selected.verdict
    : decide(selected.pending, resolve(selected.pending.refs), context, claims);
}
