// Benchmark rows through a real kube-apiserver (the e2e suite's control plane):
// pods created at a paced rate and as fast as 16 clients go, in alternating
// rounds with nri as the webhook, a bare HTTPS webhook that allows everything,
// and that bare webhook answering nri's patch. The latency that counts is
// kube-apiserver's own, from its histogram
// apiserver_admission_webhook_admission_duration_seconds.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { freePort } from '../test/support/function-process.js';
import { ControlPlane, missingControlPlane } from '../test/e2e/support/control-plane.js';
import { deployWithCertificate, pointWebhookAt, startNri } from '../test/e2e/support/deploy.js';
import { medianOfRounds } from './ratio.js';
import { inTurn, median, metric, root, stopper } from './targets.js';

const WEBHOOK = 'network-resources-injector.k8s.cni.cncf.io';
/** Pods per round and rounds per side and rate. */
const PODS = Number(process.env.BENCH_CP_PODS ?? 250);
const ROUNDS = Number(process.env.BENCH_CP_ROUNDS ?? 5);
const CLIENTS = 16;
const BENCH_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    generateName: 'bench-',
    annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-a@net1, sriov-a@net2' },
    labels: { app: 'bench' },
  },
  spec: {
    containers: [{ name: 'app', image: 'registry.example.com/dpdk:1', resources: { requests: { cpu: '10m' } } }],
  },
};

/**
 * The patch nri answers for `pod` as kube-apiserver stores it (its service-account volume and
 * mounts included): the pod is created as a server-side dry run through nri, then what nri
 * added (resources, node selector, podnetinfo) is taken back out and the result sent to nri.
 */
export async function patchFor(cp: ControlPlane, url: string, pod: any, namespace: string): Promise<string> {
  const dry = JSON.parse(
    await cp.must(['create', '--dry-run=server', '-n', namespace, '-o', 'json', '-f', '-'], JSON.stringify(pod)),
  );
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'patch-probe',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace,
      operation: 'CREATE',
      object: dry,
    },
  };
  const spec = review.request.object.spec;
  spec.containers.forEach((container: any, index: number) => {
    container.resources = pod.spec.containers[index].resources ?? {};
    container.volumeMounts = (container.volumeMounts ?? []).filter((m: { name: string }) => m.name !== 'podnetinfo');
  });
  spec.volumes = spec.volumes.filter((v: { name: string }) => v.name !== 'podnetinfo');
  if (pod.spec.nodeSelector === undefined) delete spec.nodeSelector;
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca: cp.pki.caPem, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(review));
  });
  const patch = JSON.parse(answer).response.patch as string | undefined;
  if (!patch) throw new Error(`nri answered the probe review without a patch: ${answer.slice(0, 300)}`);
  return patch;
}

interface Phase {
  /** mean webhook latency kube-apiserver measured, ms */
  webhookMs: number;
  /** mean and p99 of the whole create as the client saw it, ms */
  createMs: number;
  createP99Ms: number;
  podsPerSecond: number;
  /** nri's own mean time per review over the phase, from its histogram, ms (nri only) */
  ownMs?: number;
}

/** Sum and count of kube-apiserver's webhook admission histogram for our webhook. */
export async function webhookHistogram(cp: ControlPlane): Promise<{ sum: number; count: number }> {
  const text = await cp.must(['get', '--raw', '/metrics']);
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (!line.includes(`name="${WEBHOOK}"`) || !line.includes('type="admit"')) continue;
    if (line.startsWith('apiserver_admission_webhook_admission_duration_seconds_sum{'))
      sum += Number(line.split(' ').pop());
    if (line.startsWith('apiserver_admission_webhook_admission_duration_seconds_count{'))
      count += Number(line.split(' ').pop());
  }
  return { sum, count };
}

/** Creates `total` pods, at `perSecond` or as fast as `clients` connections go; client-side latencies in ms. */
export async function createPods(
  cp: ControlPlane,
  namespace: string,
  total: number,
  options: { perSecond?: number | undefined; pod?: object; clients?: number } = {},
): Promise<{ latencies: number[]; seconds: number }> {
  const { perSecond, pod = BENCH_POD, clients = CLIENTS } = options;
  const agent = new Agent({
    keepAlive: true,
    maxSockets: clients,
    ca: cp.pki.caPem,
    cert: readFileSync(join(cp.dir, 'admin.crt')),
    key: readFileSync(join(cp.dir, 'admin.key')),
  });
  const body = JSON.stringify(pod);
  const createOne = () =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const req = request(
        `${cp.server}/api/v1/namespaces/${namespace}/pods`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 201
              ? resolve(performance.now() - started)
              : reject(new Error(`pod create answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.setTimeout(30000, () => req.destroy(new Error('pod create timed out')));
      req.end(body);
    });
  const latencies: number[] = [];
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const index = next++;
      if (perSecond) {
        const due = started + (index * 1000) / perSecond;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      latencies.push(await createOne());
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, worker));
  } finally {
    agent.destroy();
  }
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

const nadIn = (namespace: string) => ({
  apiVersion: 'k8s.cni.cncf.io/v1',
  kind: 'NetworkAttachmentDefinition',
  metadata: { name: 'sriov-a', namespace, annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov_a' } },
  spec: { config: '{"cniVersion":"0.3.1","type":"sriov"}' },
});

/** Sum and count of nri's own review-duration histogram for HTTPS reviews (from a complete body to the answer). */
async function ownHistogram(metricsUrl: string): Promise<{ sum: number; count: number }> {
  const read = async (name: string) => (await metric(metricsUrl, `${name}{transport="https"}`)) || 0; // no HTTPS review yet: 0
  return {
    sum: await read('nri_admission_review_duration_seconds_sum'),
    count: await read('nri_admission_review_duration_seconds_count'),
  };
}

/** Creates the namespace a side's pods go to, with the NAD they select. */
async function prepareNamespace(cp: ControlPlane, namespace: string): Promise<void> {
  await cp.must(['create', 'namespace', namespace]);
  await cp.must(['apply', '--server-side', '-f', '-'], JSON.stringify(nadIn(namespace)));
  await cp.waitFor(
    `the default ServiceAccount in ${namespace}`,
    async () => (await cp.kubectl(['get', 'serviceaccount', 'default', '-n', namespace])).code === 0,
  );
  await new Promise((resolve) => setTimeout(resolve, 1000)); // nri's watch sees the NAD
}

/** One round: `pods` pods created in `namespace`, measured by kube-apiserver's histogram (and nri's, when given). */
async function round(
  cp: ControlPlane,
  namespace: string,
  pods: number,
  perSecond?: number,
  nriMetricsUrl?: string,
): Promise<Phase> {
  const before = await webhookHistogram(cp);
  const ownBefore = nriMetricsUrl ? await ownHistogram(nriMetricsUrl) : undefined;
  const { latencies, seconds } = await createPods(cp, namespace, pods, { perSecond });
  const after = await webhookHistogram(cp);
  const ownAfter = nriMetricsUrl ? await ownHistogram(nriMetricsUrl) : undefined;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    webhookMs: ((after.sum - before.sum) / Math.max(after.count - before.count, 1)) * 1000,
    createMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    createP99Ms: sorted[Math.floor(sorted.length * 0.99)]!,
    podsPerSecond: pods / seconds,
    ...(ownBefore && ownAfter
      ? { ownMs: ((ownAfter.sum - ownBefore.sum) / Math.max(ownAfter.count - ownBefore.count, 1)) * 1000 }
      : {}),
  };
}

/** The median round of each figure. */
const medianPhase = (rounds: Phase[]): Phase => ({
  webhookMs: median(rounds.map((r) => r.webhookMs)),
  createMs: median(rounds.map((r) => r.createMs)),
  createP99Ms: median(rounds.map((r) => r.createP99Ms)),
  podsPerSecond: median(rounds.map((r) => r.podsPerSecond)),
  ...(rounds[0]?.ownMs !== undefined ? { ownMs: median(rounds.map((r) => r.ownMs!)) } : {}),
});

export async function controlPlaneRows(): Promise<string[][]> {
  const missing = missingControlPlane();
  if (missing) return [[`Through kube-apiserver: skipped (${missing})`, '', '', '', '', '']];
  const cp = new ControlPlane();
  let stopCainjector = () => {};
  let bare: ChildProcess | undefined;
  let patching: ChildProcess | undefined;
  let nri: Awaited<ReturnType<typeof startNri>> | undefined;
  try {
    await cp.start();
    const ready = await deployWithCertificate(cp);
    stopCainjector = ready.stopCainjector;
    const { deployment, webhookName: name } = ready;
    nri = await startNri(cp, deployment, { NRI_LOG_LEVEL: 'info' });
    await cp.waitFor('nri ready', async () => (await fetch(`${nri!.url}/readyz`)).status === 200, 30000);
    await prepareNamespace(cp, 'bench-patch');
    const fixedPatch = await patchFor(cp, deployment.webhookUrl, BENCH_POD, 'bench-patch');
    const [barePort, patchingPort] = [await freePort(), await freePort()];
    // Started like nri here: unpinned, sharing the machine with the control plane.
    const bareEnv = { CERT: join(deployment.volume.dir, 'tls.crt'), KEY: join(deployment.volume.dir, 'tls.key') };
    bare = spawn(process.execPath, ['bench/bare-https.mjs'], {
      cwd: root,
      stdio: 'ignore',
      env: { ...bareEnv, PORT: String(barePort) },
    });
    patching = spawn(process.execPath, ['bench/bare-https.mjs'], {
      cwd: root,
      stdio: 'ignore',
      env: { ...bareEnv, PORT: String(patchingPort), PATCH: fixedPatch },
    });
    const urls = {
      nri: deployment.webhookUrl,
      bare: `https://127.0.0.1:${barePort}/mutate`,
      patching: `https://127.0.0.1:${patchingPort}/mutate`,
    };

    // Every webhook warmed up first (JIT, the apiserver's connections to each), unmeasured.
    const SIDES = ['nri', 'bare', 'patching'] as const;
    for (const side of SIDES) {
      await prepareNamespace(cp, `bench-${side}`);
      await pointWebhookAt(cp, name, urls[side]);
      await round(cp, `bench-${side}`, 300);
    }
    // Rounds take turns (inTurn), and each ratio is the median of the ratios within a round.
    const results: Record<string, Phase[]> = {};
    for (const [rate, perSecond] of [
      ['paced', 100],
      ['max', undefined],
    ] as const) {
      for (let index = 0; index < ROUNDS; index++) {
        for (const side of inTurn(SIDES, index)) {
          await pointWebhookAt(cp, name, urls[side]);
          const measured = await round(cp, `bench-${side}`, PODS, perSecond, side === 'nri' ? nri.url : undefined);
          const key = `${side}-${rate}`;
          results[key] = [...(results[key] ?? []), measured];
          console.error(
            `control plane, ${rate} round ${index + 1}, ${side}: webhook ${measured.webhookMs.toFixed(2)} ms, ${measured.podsPerSecond.toFixed(0)} pods/s`,
          );
        }
      }
    }
    const ratioOf = (a: Phase[], b: Phase[]) => median(a.map((phase, index) => phase.webhookMs / b[index]!.webhookMs));
    const rows: string[][] = [];
    for (const [rate, label] of [
      ['paced', '100 pods/s'],
      ['max', `as fast as ${CLIENTS} clients go`],
    ] as const) {
      const [nriRounds, bareRounds, patchingRounds] = SIDES.map((side) => results[`${side}-${rate}`]!);
      const [ours, base, patching] = [nriRounds, bareRounds, patchingRounds].map(medianPhase);
      const share = ratioOf(nriRounds, bareRounds);
      rows.push([
        `kube-apiserver: webhook latency, mean, ${label} (${ROUNDS} rounds of ${PODS} pods)`,
        `${ours.webhookMs.toFixed(2)} ms`,
        `${base.webhookMs.toFixed(2)} ms (bare HTTPS webhook)`,
        medianOfRounds(share, ROUNDS),
        '≤ 1.2',
        share <= 1.2 ? 'met' : 'MISSED',
      ]);
      rows.push([
        `kube-apiserver: webhook latency, mean, ${label}, the bare webhook answering nri's patch vs allowing`,
        `${patching.webhookMs.toFixed(2)} ms`,
        `${base.webhookMs.toFixed(2)} ms (bare HTTPS webhook)`,
        medianOfRounds(ratioOf(patchingRounds, bareRounds), ROUNDS),
        '',
        '',
      ]);
      rows.push([
        `kube-apiserver: webhook latency, mean, ${label}, nri vs the bare webhook answering nri's patch`,
        `${ours.webhookMs.toFixed(2)} ms`,
        `${patching.webhookMs.toFixed(2)} ms (bare, fixed patch)`,
        medianOfRounds(ratioOf(nriRounds, patchingRounds), ROUNDS),
        '',
        '',
      ]);
      rows.push([
        `kube-apiserver: of nri's webhook latency (${label}), nri's own time per review (body to answer, its histogram)`,
        `${ours.ownMs?.toFixed(2)} ms`,
        `${ours.webhookMs.toFixed(2)} ms (the webhook call)`,
        '',
        '',
        '',
      ]);
      rows.push([
        `kube-apiserver: pod create mean / p99, pods/s (${label})`,
        `${ours.createMs.toFixed(1)} / ${ours.createP99Ms.toFixed(1)} ms, ${ours.podsPerSecond.toFixed(0)}/s`,
        `${base.createMs.toFixed(1)} / ${base.createP99Ms.toFixed(1)} ms, ${base.podsPerSecond.toFixed(0)}/s`,
        '',
        '',
        '',
      ]);
    }
    return rows;
  } finally {
    stopCainjector();
    if (bare) await stopper(bare)();
    if (patching) await stopper(patching)();
    await nri?.stop();
    await cp.stop();
  }
}
