// Pods, NADs and reviews for tests: minimal ones and the shape kube-apiserver really sends.
import { readFileSync } from 'node:fs';
import type { Operation } from 'fast-json-patch';
import { applyPatchCopy } from '../../functions/core/patch.js';
import { reviewPod, type Decision, type NadLookup, type NadLookupOutcome } from '../../functions/core/review.js';
import type { CoreSettings, Nad, Pod, StringMap, Switches } from '../../functions/core/types.js';

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

export function pod(annotations: StringMap = {}, overrides: Partial<Pod['spec']> = {}, metadata: Record<string, unknown> = {}): Pod {
  return {
    metadata: { name: 'p', namespace: 'default', annotations, ...metadata },
    spec: { containers: [{ name: 'app', image: 'busybox' }], ...overrides },
  };
}

/** The StatefulSet pod from shared/examples, as the API server sends it. */
export function realisticReview(): { apiVersion: string; kind: string; request: { uid: string; namespace: string; object: Pod; [k: string]: unknown } } {
  const path = new URL('test/fixtures/admission-review-statefulset.json', repoRoot);
  return JSON.parse(readFileSync(path, 'utf8'));
}

export function lookupFrom(nads: Nad[], failures: Record<string, string> = {}): NadLookup & { calls: string[] } {
  const byKey = new Map(nads.map((item) => [`${item.namespace}/${item.name}`, item]));
  const calls: string[] = [];
  const lookup = async (refs: ReadonlyArray<{ namespace: string; name: string }>) => {
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

export interface RunOptions {
  nads?: Nad[];
  settings?: Partial<CoreSettings>;
  switches?: Partial<Switches>;
  namespace?: string;
  operation?: string;
}

export async function run(target: Pod, options: RunOptions = {}): Promise<Decision> {
  return reviewPod(
    { pod: target, namespace: options.namespace ?? 'default', ...(options.operation ? { operation: options.operation } : {}) },
    {
      settings: { ...defaultSettings, ...options.settings },
      switches: { ...defaultSwitches, ...options.switches },
      lookupNads: lookupFrom(options.nads ?? []),
    },
  );
}

export function patchedPod(target: Pod, decision: Decision): Pod {
  if (decision.type !== 'patched') throw new Error(`expected a patch, got ${JSON.stringify(decision)}`);
  return applyPatchCopy(target, decision.ops);
}

export function opsOf(decision: Decision): Operation[] {
  return decision.type === 'patched' ? decision.ops : [];
}
