// nri's memory at the size large clusters run, under the limit the ksvc sets, enforced by the
// kernel: 100,000 NADs in kube-apiserver, fresh replicas listing them all at start, their
// containers' memory cgroups read for the limit and the peak. A replica over its limit would be
// OOM-killed and restarted: none may be.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createMany, tenantNad } from '../support/bulk.js';
import { attachRealNode, NRI_NAMESPACE, NRI_PODS, readyNriPods } from './node.js';

const cp = attachRealNode();
const NADS = 100_000;
const TENANTS = 100;

/** The memory cgroup (v1) of a pod's container, as runc made it under the kubelet's kubepods hierarchy. */
function memoryCgroup(pod: any, container: string): string {
  const id = pod.status.containerStatuses
    .find((s: any) => s.name === container)
    .containerID.replace('containerd://', '');
  const qos = pod.status.qosClass === 'Guaranteed' ? '' : `${pod.status.qosClass.toLowerCase()}/`;
  return `/sys/fs/cgroup/memory/kubepods/${qos}pod${pod.metadata.uid}/${id}`;
}

const readyPods = () => readyNriPods(cp);

describe('memory at 100,000 NADs, under the limit the kernel enforces', () => {
  it('fresh replicas list 100,000 NADs and stay under the ksvc memory limit, never OOM-killed', async () => {
    const namespaces = Array.from({ length: TENANTS }, (_, i) => `tenant-${i}`);
    await createMany(
      cp,
      namespaces.map((name) => ({
        path: '/api/v1/namespaces',
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
      })),
    );
    const perTenant = NADS / TENANTS;
    const created = await createMany(
      cp,
      Array.from({ length: NADS }, (_, i) => {
        const namespace = namespaces[i % TENANTS]!;
        return {
          path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
          body: tenantNad(namespace, `vf-${Math.floor(i / TENANTS)}`, i % 4094, `intel.com/sriov_pool_${i % 16}`),
        };
      }),
    );
    assert.equal(created.created + created.existing, NADS);
    process.stderr.write(
      `# ${NADS} NADs (${perTenant} in each of ${TENANTS} namespaces) created in ${(created.ms / 1000).toFixed(0)} s\n`,
    );

    // New replicas: each lists every NAD before it is ready.
    const old = (await readyPods()).map((pod: any) => pod.metadata.name as string);
    await cp.must(['delete', 'pods', '-n', NRI_NAMESPACE, '-l', NRI_PODS, '--wait=false']);
    await cp.waitFor(
      'two fresh ready replicas',
      async () => (await readyPods()).filter((pod: any) => !old.includes(pod.metadata.name)).length >= 2,
      300000,
    );
    await new Promise((resolve) => setTimeout(resolve, 5000));

    const pods = (await readyPods()).filter((pod: any) => !old.includes(pod.metadata.name));
    const limit = pods[0].spec.containers.find((c: any) => c.name === 'nri').resources.limits.memory as string;
    for (const pod of pods) {
      const cgroup = memoryCgroup(pod, 'nri');
      const limitBytes = Number(readFileSync(`${cgroup}/memory.limit_in_bytes`, 'utf8'));
      const peak = Number(readFileSync(`${cgroup}/memory.max_usage_in_bytes`, 'utf8'));
      const status = pod.status.containerStatuses.find((s: any) => s.name === 'nri');
      assert.equal(limitBytes, 256 * 1024 * 1024, `the kernel enforces the ksvc's limit (${limit})`);
      assert.equal(status.restartCount, 0, `${pod.metadata.name} restarted: ${JSON.stringify(status.lastState)}`);
      assert.ok(peak < limitBytes, `peak ${peak} under the limit ${limitBytes}`);
      const log = await cp.must(['logs', '-n', NRI_NAMESPACE, pod.metadata.name, '-c', 'nri']);
      const synced = log
        .split('\n')
        .filter((line) => line.includes('NAD watch cache synced'))
        .map((line) => JSON.parse(line));
      assert.ok(
        synced.some((line) => line.objects >= NADS),
        `${pod.metadata.name} listed ${NADS} NADs: ${JSON.stringify(synced)}`,
      );
      process.stderr.write(
        `# ${pod.metadata.name}: cgroup memory peak ${(peak / 2 ** 20).toFixed(1)} MiB of the ${limit} limit with ${NADS} NADs\n`,
      );
    }
  });
});
