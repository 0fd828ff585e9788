// Pod creation never fails because nri's pods are disrupted the way operators disrupt them: a
// `kubectl drain` of the node (the PodDisruptionBudget lets one replica go at a time, its preStop
// drains it) and a kubelet restart, each under a steady stream of pod creations through
// kube-apiserver. Creations are server-side dry runs: admitted exactly as real ones (nri is called,
// its patch applied), nothing stored, so the stream can run as long as the disruption does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../support/fixtures.js';
import { creationStream, type Outcome } from './creations.js';
import { attachRealNode, NODE_NAME, NRI_PODS, readyNriPods, RealNode, TEST_IMAGE } from './node.js';

const cp = attachRealNode();

/** Pod creations, two in flight, until stop(): each must be admitted with example.com/foo injected. */
const steadyCreations = () =>
  creationStream(cp, {
    workers: 2,
    pauseMs: 20,
    resource: 'example.com/foo',
    pod: (n) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `stream-${n}`,
        namespace: 'default',
        annotations: { 'k8s.v1.cni.cncf.io/networks': 'foo-network' },
      },
      spec: { containers: [{ name: 'app', image: TEST_IMAGE }] },
    }),
  });

const readyReplicas = () => readyNriPods(cp);

const assertAllAdmitted = (outcomes: Outcome[], what: string) => {
  const failed = outcomes.filter((outcome) => !outcome.ok);
  assert.ok(outcomes.length > 100, `${outcomes.length} creations during ${what}`);
  assert.deepEqual(failed, [], `${failed.length} of ${outcomes.length} creations failed during ${what}`);
  process.stderr.write(`# ${what}: ${outcomes.length} pod creations, all admitted with their resources\n`);
};

describe('disruptions of the node under a steady stream of pod creations', () => {
  before(async () => {
    await cp.must(['apply', '-f', fileURLToPath(new URL('examples/nads/foo-network.yaml', repoRoot))]);
    await cp.waitFor('two ready nri replicas', async () => (await readyReplicas()).length >= 2, 120000);
  });

  after(async () => {
    await cp.kubectl(['uncordon', NODE_NAME]);
  });

  it('a drain evicts one replica at a time (the PodDisruptionBudget holds the other) and no creation fails', async () => {
    const original = (await readyReplicas()).map((pod: any) => pod.metadata.name as string);
    const stream = steadyCreations();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // One node: the evicted replica's replacement cannot be scheduled while it is cordoned, so the
    // budget refuses the second eviction until the drain gives up.
    const drain = await cp.kubectl([
      'drain',
      NODE_NAME,
      '--pod-selector',
      NRI_PODS,
      '--timeout=40s',
      '--delete-emptydir-data',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const outcomes = await stream.stop();
    assert.notEqual(drain.code, 0, 'the drain cannot finish on a single node');
    assert.match(drain.stderr + drain.stdout, /disruption budget/);
    const remaining: string[] = (await readyReplicas()).map((pod: any) => pod.metadata.name as string);
    assert.equal(
      remaining.filter((name) => original.includes(name)).length,
      1,
      `one original replica evicted: ${original} -> ${remaining}`,
    );
    assertAllAdmitted(outcomes, 'the drain');
    await cp.must(['uncordon', NODE_NAME]);
    await cp.waitFor('two ready replicas again', async () => (await readyReplicas()).length >= 2, 120000);
  });

  it('a kubelet restart keeps the replicas running and no creation fails', async () => {
    const restartsOf = async () =>
      Object.fromEntries(
        (await readyReplicas()).map((pod: any) => [
          pod.metadata.name,
          pod.status.containerStatuses.map((s: any) => s.restartCount).join(','),
        ]),
      );
    const before = await restartsOf();
    const stream = steadyCreations();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await new RealNode(cp).restartKubelet(5000);
    await cp.waitFor(
      'the node to be Ready after the restart',
      async () => {
        const node = await cp.getJson(['node', NODE_NAME]);
        const ready = node.status.conditions.find((c: any) => c.type === 'Ready');
        return ready.status === 'True' && Date.parse(ready.lastHeartbeatTime) > Date.now() - 15000;
      },
      120000,
    );
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const outcomes = await stream.stop();
    assertAllAdmitted(outcomes, 'the kubelet restart');
    assert.deepEqual(await restartsOf(), before, 'the same replicas, no container restarted');
  });
});
