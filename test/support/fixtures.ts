// Pods, NADs and reviews for tests: minimal ones and the shape kube-apiserver really sends.
import type { ClaimsFound } from '../../functions/core/dra.js';
import { readFileSync } from 'node:fs';
import jsonPatch, { type Operation } from 'fast-json-patch';
import type { Decision, Verdict } from '../../functions/core/decision.js';
import { reviewPod } from '../../functions/core/review.js';
import type {
  CoreSettings,
  Nad,
  NadLookupOutcome,
  NadRef,
  Pod,
  StringMap,
  Switches,
} from '../../functions/core/types.js';

export const repoRoot = new URL('../../../', import.meta.url);

export const defaultSettings: CoreSettings = {
  resourceNameKeys: ['k8s.v1.cni.cncf.io/resourceName'],
  excludedNamespaces: new Set(['kube-system']),
  multusNamespace: 'kube-system',
};

export const defaultSwitches: Switches = {
  honorExistingResources: false,
  hugePageDownApi: false,
  userDefinedInjections: new Map(),
};

export function nad(namespace: string, name: string, annotations: StringMap = {}): Nad {
  return { namespace, name, annotations };
}

export function sriovNad(namespace: string, name: string, resource: string, extra: StringMap = {}): Nad {
  return nad(namespace, name, { 'k8s.v1.cni.cncf.io/resourceName': resource, ...extra });
}

export function pod(
  annotations: StringMap = {},
  overrides: Partial<Pod['spec']> = {},
  metadata: Record<string, unknown> = {},
): Pod {
  return {
    metadata: { name: 'p', namespace: 'default', annotations, ...metadata },
    spec: { containers: [{ name: 'app', image: 'busybox' }], ...overrides },
  };
}

/** The StatefulSet pod from shared/examples, as the API server sends it. */
export function realisticReview(): {
  apiVersion: string;
  kind: string;
  request: { uid: string; namespace: string; object: Pod; [k: string]: unknown };
} {
  const path = new URL('test/fixtures/admission-review-statefulset.json', repoRoot);
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** A NAD source held in memory, as the core's third argument; it records what it was asked. */
export function lookupFrom(
  nads: Nad[],
  failures: Record<string, string> = {},
): ((refs: readonly NadRef[]) => Map<string, NadLookupOutcome>) & { calls: string[] } {
  const byKey = new Map(nads.map((item) => [`${item.namespace}/${item.name}`, item]));
  const calls: string[] = [];
  const lookup = (refs: readonly NadRef[]) => {
    const out = new Map<string, NadLookupOutcome>();
    for (const { namespace, name } of refs) {
      const key = `${namespace}/${name}`;
      calls.push(key);
      if (failures[key]) out.set(key, { status: 'error', reason: failures[key]! });
      else if (byKey.has(key)) out.set(key, { status: 'found', nad: byKey.get(key)! });
      else out.set(key, { status: 'missing' });
    }
    return out;
  };
  return Object.assign(lookup, { calls });
}

/** The document with the patch applied by fast-json-patch, on a copy: the reference the core's proof must agree with. */
export function applyPatchCopy<T>(document: T, ops: Operation[]): T {
  return jsonPatch.applyPatch(document, ops, true, false).newDocument;
}

export interface RunOptions {
  nads?: Nad[];
  settings?: Partial<CoreSettings>;
  switches?: Partial<Switches>;
  namespace?: string;
  operation?: string;
  /** what the pod's own ResourceClaims provide (core/dra.ts) */
  claims?: ClaimsFound;
}

export function verdictOf(target: Pod, options: RunOptions = {}): Verdict {
  return reviewPod(
    {
      pod: target,
      namespace: options.namespace ?? 'default',
      ...(options.operation ? { operation: options.operation } : {}),
    },
    { settings: { ...defaultSettings, ...options.settings }, switches: { ...defaultSwitches, ...options.switches } },
    lookupFrom(options.nads ?? []),
    options.claims,
  );
}

export async function run(target: Pod, options: RunOptions = {}): Promise<Decision> {
  return verdictOf(target, options).decision;
}

export function patchedPod(target: Pod, decision: Decision): Pod {
  if (decision.type !== 'patched') throw new Error(`expected a patch, got ${JSON.stringify(decision)}`);
  return applyPatchCopy(target, decision.ops);
}

export function opsOf(decision: Decision): Operation[] {
  return decision.type === 'patched' ? decision.ops : [];
}
