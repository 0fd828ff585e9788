// Why core/patch.ts proves patches itself instead of calling fast-json-patch's validate():
// both on the same 20,000 unique reviews shaped as kube-apiserver sends them (a DPDK
// StatefulSet pod and a KubeVirt virt-launcher pod), with the whole review for scale.
// `npm run bench:patch-check`; the figures are in docs/benchmarks.md.
import jsonPatch, { type Operation } from 'fast-json-patch';
import { patchProblem } from '../functions/core/patch.js';
import { reviewPod } from '../functions/core/review.js';
import type { Pod } from '../functions/core/types.js';
import { defaultSettings, defaultSwitches, lookupFrom, sriovNad } from '../test/support/fixtures.js';
import { dpdkReview, fill, virtLauncherReview } from './reviews.js';
import { STATEFULSET_FIXTURE } from './targets.js';

const REVIEWS = 20000;
const context = { settings: defaultSettings, switches: defaultSwitches };
const nads = lookupFrom([
  sriovNad('bench', 'sriov-a', 'intel.com/sriov_a'),
  sriovNad('infra', 'sriov-b', 'intel.com/sriov_b', { 'k8s.v1.cni.cncf.io/nodeSelector': 'sriov=true' }),
]);
const templates = [dpdkReview('bench', STATEFULSET_FIXTURE), virtLauncherReview('bench')];

const cases: Array<[Pod, Operation[]]> = [];
for (let i = 0; i < REVIEWS; i++) {
  const pod = JSON.parse(fill(templates[i % templates.length]!, i)).request.object as Pod;
  const { decision } = reviewPod({ pod, namespace: 'bench' }, context, nads);
  if (decision.type !== 'patched') throw new Error(`review ${i} was not patched: ${JSON.stringify(decision)}`);
  cases.push([pod, decision.ops]);
}

/** Microseconds per review, the median of five rounds, the three measured in turn within each round. */
const rounds: Record<string, number[]> = {
  'core/patch.ts patchProblem': [],
  'fast-json-patch validate': [],
  'the whole review (reviewPod, its proof included)': [],
};
const checks: Record<string, (pod: Pod, ops: Operation[]) => unknown> = {
  'core/patch.ts patchProblem': (pod, ops) => patchProblem(pod, ops),
  'fast-json-patch validate': (pod, ops) => jsonPatch.validate(ops, pod),
  'the whole review (reviewPod, its proof included)': (pod) =>
    reviewPod({ pod, namespace: 'bench' }, context, nads).decision.type === 'patched' ? undefined : 'not patched',
};
for (let round = 0; round < 5; round++) {
  for (const [name, check] of Object.entries(checks)) {
    const started = process.hrtime.bigint();
    for (const [pod, ops] of cases)
      if (check(pod, ops) !== undefined) throw new Error(`${name} refused a patch nri built`);
    rounds[name]!.push(Number(process.hrtime.bigint() - started) / 1000 / REVIEWS);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ours = median(rounds['core/patch.ts patchProblem']!);
for (const [name, values] of Object.entries(rounds)) {
  process.stdout.write(
    `${name.padEnd(50)} ${median(values).toFixed(1).padStart(6)} µs per review  (${(median(values) / ours).toFixed(1)}x patchProblem)\n`,
  );
}
