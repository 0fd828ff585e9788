// nri scales with load on its real CPU: metrics-server scrapes the kubelet, kube-controller-manager's
// HPA controller reads metrics.k8s.io and resizes the Deployment Knative's autoscaler-hpa made for
// the revision. A burst of virt-launcher-shaped pod creations (as KubeVirt starts VMs) pushes nri
// past its CPU target; new replicas start from the image, become ready and take reviews; when the
// burst ends nri goes back to its two replicas. No creation fails in either direction.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../support/fixtures.js';
import { creationStream, type Outcome } from './creations.js';
import { attachRealNode, NRI_NAMESPACE, readyNriPods } from './node.js';

const cp = attachRealNode();
const RESOURCE = 'example.com/foo';

/** A virt-launcher pod as KubeVirt's virt-controller creates it, shortened: `compute` first, many volumes, one network. */
const virtLauncher = (n: number) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: `virt-launcher-vmi-${n}-abcde`,
    namespace: 'default',
    labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': `uid-${n}`, 'vm.kubevirt.io/name': `vmi-${n}` },
    annotations: {
      'kubevirt.io/domain': `vmi-${n}`,
      'kubectl.kubernetes.io/default-container': 'compute',
      'k8s.v1.cni.cncf.io/networks': `[{"interface":"pod${n.toString(16)}","name":"foo-network","namespace":"default"}]`,
    },
  },
  spec: {
    volumes: ['private', 'public', 'sockets', 'hotplug-disks', 'libvirt-runtime', 'ephemeral-disks'].map((name) => ({
      name,
      emptyDir: {},
    })),
    containers: [
      {
        name: 'compute',
        image: 'quay.io/kubevirt/virt-launcher:v1.9.0',
        command: ['/usr/bin/virt-launcher-monitor', '--name', `vmi-${n}`],
        resources: { requests: { cpu: '100m', memory: '300Mi' }, limits: { memory: '2Gi' } },
        volumeMounts: [
          { name: 'private', mountPath: '/var/run/kubevirt-private' },
          { name: 'public', mountPath: '/var/run/kubevirt' },
        ],
      },
      { name: 'guest-console-log', image: 'quay.io/kubevirt/virt-launcher:v1.9.0', command: ['/usr/bin/virt-tail'] },
    ],
  },
});

interface Sample {
  t: number;
  ready: number;
  desired: number;
  cpu: number | undefined;
}

/** The samples where something changed, as "s: ready/desired cpu%". */
const timeline = (samples: readonly Sample[]) =>
  samples
    .filter(
      (s, i) =>
        i === 0 ||
        s.ready !== samples[i - 1]!.ready ||
        s.desired !== samples[i - 1]!.desired ||
        s.cpu !== samples[i - 1]!.cpu,
    )
    .map((s) => `${s.t}: ${s.ready}/${s.desired} ${s.cpu ?? '?'}%`)
    .join('; ');

const hpa = async () => (await cp.getJson(['hpa', '-n', NRI_NAMESPACE])).items[0];
const cpuUtilization = (autoscaler: any): number | undefined =>
  autoscaler?.status?.currentMetrics?.find((metric: any) => metric.type === 'Resource')?.resource?.current
    ?.averageUtilization;

/** Reviews a replica has answered, from its own metrics (port 8080, the pod's IP). */
const reviewsAnswered = (podIp: string) =>
  new Promise<number>((resolve) => {
    get(`http://${podIp}:8080/metrics`, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () =>
        resolve(
          text
            .split('\n')
            .filter((line) => line.startsWith('nri_admission_reviews_total{'))
            .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0),
        ),
      );
    }).on('error', () => resolve(0));
  });

/** kube-apiserver's own histogram of nri's webhook calls, as cumulative bucket counts. */
async function webhookHistogram(): Promise<Map<number, number>> {
  const text = await cp.must(['get', '--raw', '/metrics']);
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_admission_webhook_admission_duration_seconds_bucket{')) continue;
    if (!line.includes('name="network-resources-injector.k8s.cni.cncf.io"') || !line.includes('type="admit"')) continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.split(' ').pop()));
  }
  return buckets;
}

/** The q-quantile of what was observed between two histogram readings, as the bucket bound it falls under. */
function quantile(before: Map<number, number>, after: Map<number, number>, q: number): string {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const bound of bounds)
    if ((after.get(bound) ?? 0) - (before.get(bound) ?? 0) >= q * total)
      return bound === Infinity ? '> largest bucket' : `≤ ${bound * 1000} ms`;
  return 'n/a';
}

const assertAllAdmitted = (outcomes: Outcome[], what: string) => {
  const failed = outcomes.filter((outcome) => !outcome.ok);
  assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${outcomes.length} creations failed during ${what}`);
  const ms = outcomes.map((outcome) => outcome.ms).sort((a, b) => a - b);
  process.stderr.write(
    `# ${what}: ${outcomes.length} creations, all admitted with ${RESOURCE}; client-side p50 ${ms[Math.floor(ms.length / 2)]} ms, p99 ${ms[Math.floor(ms.length * 0.99)]} ms\n`,
  );
};

describe('nri scales on its real CPU', () => {
  const started = Date.now();
  const samples: Sample[] = [];
  const sample = async () => {
    const autoscaler = await hpa();
    const entry = {
      t: Math.round((Date.now() - started) / 1000),
      ready: (await readyNriPods(cp)).length,
      desired: autoscaler?.status?.desiredReplicas ?? 0,
      cpu: cpuUtilization(autoscaler),
    };
    samples.push(entry);
    return entry;
  };

  before(async () => {
    await cp.must(['apply', '-f', fileURLToPath(new URL('examples/nads/foo-network.yaml', repoRoot))]);
    await cp.waitFor('two ready nri replicas', async () => (await readyNriPods(cp)).length >= 2, 120000);
  });

  it("metrics-server serves nri's CPU through metrics.k8s.io, and Knative's HPA reads it against the ksvc's target", async () => {
    await cp.waitFor("the HPA to read nri's CPU", async () => cpuUtilization(await hpa()) !== undefined, 120000);
    const autoscaler = await hpa();
    assert.equal(autoscaler.spec.minReplicas, 2);
    assert.equal(autoscaler.spec.maxReplicas, 10);
    const ksvc = await cp.getJson(['ksvc', 'nri', '-n', NRI_NAMESPACE]);
    assert.equal(
      autoscaler.spec.metrics[0].resource.target.averageUtilization,
      Number(ksvc.spec.template.metadata.annotations['autoscaling.knative.dev/target']),
    );
    const podMetrics = JSON.parse(
      await cp.must(['get', '--raw', `/apis/metrics.k8s.io/v1beta1/namespaces/${NRI_NAMESPACE}/pods`]),
    );
    const nri = podMetrics.items.filter((item: any) => item.containers.some((c: any) => c.name === 'nri'));
    assert.ok(nri.length >= 2, `metrics for ${nri.length} nri pods`);
    process.stderr.write(`# idle: HPA reads ${cpuUtilization(autoscaler)}% CPU of the request\n`);
  });

  it('a KubeVirt-sized burst scales nri out: the HPA decides, new replicas start, become ready and take reviews; no creation fails', async () => {
    const before = await webhookHistogram();
    const original = new Set((await readyNriPods(cp)).map((pod: any) => pod.metadata.name as string));
    const burstStart = Date.now();
    const stream = creationStream(cp, { workers: 12, pauseMs: 0, resource: RESOURCE, pod: virtLauncher });
    let decidedAt: number | undefined;
    let readyAt: number | undefined;
    let servingAt: number | undefined;
    let newReplica: any;
    try {
      await cp.waitFor(
        'a new replica to take reviews',
        async () => {
          const now = await sample();
          if (decidedAt === undefined && now.desired > 2) decidedAt = Date.now();
          const added = (await readyNriPods(cp)).filter((pod: any) => !original.has(pod.metadata.name));
          if (added.length > 0 && readyAt === undefined) readyAt = Date.now();
          for (const pod of added)
            if ((await reviewsAnswered(pod.status.podIP)) > 0) {
              servingAt = Date.now();
              newReplica = pod;
              return true;
            }
          return false;
        },
        300000,
      );
    } finally {
      const outcomes = await stream.stop();
      const after = await webhookHistogram();
      const seconds = (at: number | undefined) =>
        at === undefined ? 'n/a' : `${((at - burstStart) / 1000).toFixed(0)} s`;
      // The new replica's own part of its cold start: process start to listening, from its log.
      const startup = newReplica
        ? /"startupMs":(\d+)[^\n]*HTTPS webhook listening/.exec(
            await cp.must(['logs', newReplica.metadata.name, '-c', 'nri', '-n', NRI_NAMESPACE]),
          )?.[1]
        : undefined;
      const created = newReplica ? Date.parse(newReplica.metadata.creationTimestamp) : undefined;
      process.stderr.write(
        `# new replica: created ${created ? `${((servingAt! - created) / 1000).toFixed(1)} s` : 'n/a'} before it served a review; nri listening ${startup ?? '?'} ms after its process started\n`,
      );
      process.stderr.write(
        `# scale-out: HPA decided at ${seconds(decidedAt)}, a new replica ready at ${seconds(readyAt)}, serving at ${seconds(servingAt)}; kube-apiserver's webhook latency p50 ${quantile(before, after, 0.5)}, p99 ${quantile(before, after, 0.99)}\n# replicas over time (s: ready/desired, cpu%): ${timeline(samples)}\n`,
      );
      assertAllAdmitted(outcomes, 'the burst');
    }
    assert.ok(decidedAt !== undefined && servingAt !== undefined);
  });

  it('when the burst ends nri scales back in to two replicas; creations during the scale-in are all admitted', async () => {
    assert.ok((await readyNriPods(cp)).length > 2, 'scaled out before');
    const before = await webhookHistogram();
    const from = samples.length;
    const stream = creationStream(cp, { workers: 1, pauseMs: 200, resource: RESOURCE, pod: virtLauncher });
    try {
      await cp.waitFor(
        'two ready replicas, and the HPA at two',
        async () => {
          const now = await sample();
          return now.ready === 2 && now.desired === 2;
        },
        300000,
      );
      // Replicas that went away finish what they had: a few seconds more of creations after.
      await new Promise((resolve) => setTimeout(resolve, 5000));
    } finally {
      const outcomes = await stream.stop();
      assertAllAdmitted(outcomes, 'the scale-in');
    }
    const after = await webhookHistogram();
    process.stderr.write(
      `# scale-in: kube-apiserver's webhook latency p50 ${quantile(before, after, 0.5)}, p99 ${quantile(before, after, 0.99)}\n# replicas over time (s: ready/desired, cpu%): ${timeline(samples.slice(from))}\n`,
    );
  });
});
