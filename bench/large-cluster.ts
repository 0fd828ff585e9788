// Benchmark rows for a large cluster, through the e2e suite's real control
// plane: NADs grown in steps to 100,000 in 1,000 namespaces, nri started with
// the container's command at each size (time to ready, peak resident memory
// through the first list and through a re-list after kube-apiserver restarts,
// resident memory once idle) and the upstream Go injector built from its source
// and measured the same way in the same run; at the largest size ten replicas
// started at once with the list streamed and in pages (time to ready, their
// memory, kube-apiserver's and etcd's CPU and memory); then a mass VM
// activation: KubeVirt virt-launcher-shaped pods created as fast as 32 clients
// go, with nri, with upstream and with a bare webhook answering nri's very
// patch, in alternating rounds.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort, type RunningFunction } from '../test/support/function-process.js';
import { createTenantNads, memoryOf } from '../test/e2e/support/bulk.js';
import { ControlPlane, missingControlPlane } from '../test/e2e/support/control-plane.js';
import { deployWithCertificate, pointWebhookAt, startNri, type Deployment } from '../test/e2e/support/deploy.js';
import { createPods, patchFor, webhookHistogram } from './control-plane.js';
import { ofMeans, quotient } from './ratio.js';
import { cpuMs, inTurn, ksvcMemoryRequestMiB, median, root, stopper } from './targets.js';
import { missingUpstream, residentMiB, settled, startUpstream, type RunningUpstream } from './upstream.js';

const NAMESPACES = 1000;
const SIZES = (process.env.BENCH_NAD_SIZES ?? '10000,30000,50000,100000').split(',').map(Number);
/** How long a replica is left idle before its resident memory is read as "steady" (V8's memory reducer runs by then). */
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const BURST_PODS = Number(process.env.BENCH_BURST_PODS ?? 2000);
const BURST_ROUNDS = 8;
const BURST_CLIENTS = 32;
/** Replicas started at once at the largest size: the HPA's maximum in the ksvc. */
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 10);

const mib = (value: number) => `${value.toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A virt-launcher pod as KubeVirt's virt-controller creates it, naming one SR-IOV network of its tenant. */
function virtLauncherPod(namespace: string) {
  const emptyDirs = [
    'private',
    'public',
    'sockets',
    'hotplug-disks',
    'libvirt-runtime',
    'ephemeral-disks',
    'container-disks',
  ].map((name) => ({ name, emptyDir: {} }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'virt-launcher-vmi-',
      labels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': 'vmi' },
      annotations: {
        'kubevirt.io/domain': 'vmi',
        'kubectl.kubernetes.io/default-container': 'compute',
        'k8s.v1.cni.cncf.io/networks': JSON.stringify([
          { interface: 'pod16367aacb67', mac: '02:00:00:0a:0b:0c', name: 'vlan-150', namespace },
        ]),
      },
    },
    spec: {
      volumes: emptyDirs,
      containers: [
        {
          name: 'compute',
          image: 'quay.io/kubevirt/virt-launcher:v1.9.0',
          resources: {
            limits: { 'devices.kubevirt.io/kvm': '1', 'devices.kubevirt.io/tun': '1', memory: '2302Mi', cpu: '2' },
            requests: { 'devices.kubevirt.io/kvm': '1', 'devices.kubevirt.io/tun': '1', memory: '2302Mi', cpu: '200m' },
          },
          volumeMounts: emptyDirs.map((volume) => ({
            name: volume.name,
            mountPath: `/var/run/kubevirt-${volume.name}`,
          })),
        },
        {
          name: 'guest-console-log',
          image: 'quay.io/kubevirt/virt-launcher:v1.9.0',
          resources: { requests: { cpu: '5m', memory: '35M' } },
        },
      ],
      restartPolicy: 'Never',
      // No scheduler picks these up: thousands of unschedulable pods (there is no node)
      // would otherwise keep kube-scheduler busy on the same two cores as the measurement.
      schedulerName: 'bench-unscheduled',
    },
  };
}

interface SizeFigures {
  nads: number;
  createdMs: number;
  readyMs: number;
  listMs: number;
  peakListMiB: number;
  idleMiB: number;
  relistMs: number;
  peakMiB: number;
}

/** nri started on a cluster of the current size, through its first list, idle, and a re-list after kube-apiserver restarts. */
async function measureSize(
  cp: ControlPlane,
  deployment: Deployment,
  nads: number,
  createdMs: number,
  restart: number,
): Promise<{ figures: SizeFigures; nri: RunningFunction }> {
  const started = Date.now();
  const nri = await startNri(cp, deployment, { NRI_LOG_LEVEL: 'info' });
  await cp.waitFor(
    'nri ready',
    async () => {
      if (nri.child.exitCode !== null)
        throw new Error(`nri exited with ${nri.child.exitCode}: ${nri.stderr.join('').slice(-400)}`);
      return (await fetch(`${nri.url}/readyz`)).status === 200;
    },
    120000,
  );
  const readyMs = Date.now() - started;
  const synced = JSON.parse(await nri.waitForLog(/NAD watch cache synced/));
  if (synced.objects < nads) throw new Error(`nri synced ${synced.objects} NADs of ${nads}`);
  const peakListMiB = memoryOf(nri.child.pid!).peakMiB;
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const idleMiB = memoryOf(nri.child.pid!).rssMiB;
  // A write nri does not watch, then a restart: its re-watch gets 410 and it lists again.
  await cp.must(['create', 'configmap', `bench-advance-${restart}`, '-n', 'default']);
  await cp.stopProcess('kube-apiserver');
  await cp.startApiServer();
  const relisted = JSON.parse(await nri.waitForLog(/NAD cache re-listed/, 180000));
  const peakMiB = memoryOf(nri.child.pid!).peakMiB;
  console.error(
    `large cluster, ${nads} NADs: ready ${readyMs} ms, peak ${peakListMiB.toFixed(1)} / ${peakMiB.toFixed(1)} MiB, idle ${idleMiB.toFixed(1)} MiB`,
  );
  return {
    figures: {
      nads,
      createdMs,
      readyMs,
      listMs: synced.durationMs,
      peakListMiB,
      idleMiB,
      relistMs: relisted.durationMs,
      peakMiB,
    },
    nri,
  };
}

interface UpstreamFigures {
  servingMs: number;
  /** until its informer's list is in: resident memory quiet for 4 s (that wait not counted) */
  listedMs: number;
  peakListMiB: number;
  idleMiB: number;
  peakMiB: number;
}

/** The upstream injector on the same cluster, measured as nri is: its list, idle, a re-list after kube-apiserver restarts. */
async function measureUpstream(
  cp: ControlPlane,
  deployment: Deployment,
  nads: number,
  restart: number,
): Promise<{ figures: UpstreamFigures; upstream: RunningUpstream }> {
  const started = Date.now();
  const tls = { cert: join(deployment.volume.dir, 'tls.crt'), key: join(deployment.volume.dir, 'tls.key') };
  const upstream = await startUpstream(cp, tls);
  const servingMs = Date.now() - started;
  const pid = upstream.child.pid!;
  await settled(pid);
  const listedMs = Date.now() - started - 4000;
  const peakListMiB = residentMiB(pid).peak;
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const idleMiB = residentMiB(pid).rss;
  await cp.must(['create', 'configmap', `bench-upstream-advance-${restart}`, '-n', 'default']);
  await cp.stopProcess('kube-apiserver');
  await cp.startApiServer();
  await settled(pid, 6000);
  const peakMiB = residentMiB(pid).peak;
  console.error(
    `large cluster, ${nads} NADs, upstream: serving ${servingMs} ms, list in ${listedMs} ms, peak ${peakListMiB.toFixed(1)} / ${peakMiB.toFixed(1)} MiB, idle ${idleMiB.toFixed(1)} MiB`,
  );
  return { figures: { servingMs, listedMs, peakListMiB, idleMiB, peakMiB }, upstream };
}

interface StartFigures {
  readyMs: number;
  /** the largest peak resident memory among the replicas */
  replicaPeakMiB: number;
  apiserverCpuMs: number;
  etcdCpuMs: number;
  /** the most their resident memory rose above where it was before the start */
  apiserverRiseMiB: number;
  etcdRiseMiB: number;
}

/** `REPLICAS` nri replicas started at once (HTTP only, as the HPA's maximum would start), until every one is ready. */
async function startReplicas(cp: ControlPlane, deployment: Deployment, streaming: boolean): Promise<StartFigures> {
  const apiserver = cp.process('kube-apiserver')!;
  const etcd = cp.process('etcd')!;
  const before = {
    apiserver: cpuMs(apiserver),
    etcd: cpuMs(etcd),
    apiserverRss: residentMiB(apiserver.pid!).rss,
    etcdRss: residentMiB(etcd.pid!).rss,
  };
  let apiserverMax = before.apiserverRss;
  let etcdMax = before.etcdRss;
  const sampler = setInterval(() => {
    apiserverMax = Math.max(apiserverMax, residentMiB(apiserver.pid!).rss);
    etcdMax = Math.max(etcdMax, residentMiB(etcd.pid!).rss);
  }, 100);
  const started = Date.now();
  const env = {
    NRI_LOG_LEVEL: 'warn',
    NRI_STREAMING_LIST: String(streaming),
    NRI_TLS_CERT_FILE: '',
    NRI_TLS_KEY_FILE: '',
  };
  const replicas = await Promise.all(Array.from({ length: REPLICAS }, () => startNri(cp, deployment, env)));
  try {
    await cp.waitFor(
      `${REPLICAS} replicas ready`,
      async () => {
        const states = await Promise.all(
          replicas.map((replica) =>
            replica.child.exitCode !== null
              ? Promise.reject(new Error(`a replica exited: ${replica.stderr.join('').slice(-300)}`))
              : fetch(`${replica.url}/readyz`).then(
                  (r) => r.status === 200,
                  () => false,
                ),
          ),
        );
        return states.every(Boolean);
      },
      300000,
    );
    const readyMs = Date.now() - started;
    clearInterval(sampler);
    const figures = {
      readyMs,
      replicaPeakMiB: Math.max(...replicas.map((replica) => residentMiB(replica.child.pid!).peak)),
      apiserverCpuMs: cpuMs(apiserver) - before.apiserver,
      etcdCpuMs: cpuMs(etcd) - before.etcd,
      apiserverRiseMiB: apiserverMax - before.apiserverRss,
      etcdRiseMiB: etcdMax - before.etcdRss,
    };
    console.error(
      `${REPLICAS} replicas, ${streaming ? 'streamed' : 'paginated'}: ready ${readyMs} ms, replica peak ${figures.replicaPeakMiB.toFixed(1)} MiB, kube-apiserver ${figures.apiserverCpuMs.toFixed(0)} ms CPU (+${figures.apiserverRiseMiB.toFixed(0)} MiB), etcd ${figures.etcdCpuMs.toFixed(0)} ms CPU (+${figures.etcdRiseMiB.toFixed(0)} MiB)`,
    );
    return figures;
  } finally {
    clearInterval(sampler);
    await Promise.all(replicas.map((replica) => replica.stop()));
  }
}

/** How many pods in `namespace` carry the pool nri injects into compute, of how many. */
async function injectedPods(cp: ControlPlane, namespace: string): Promise<{ injected: number; total: number }> {
  const pods = (await cp.getJson(['pods', '-n', namespace])).items as any[];
  const injected = pods.filter(
    (pod) =>
      pod.spec.containers[0].resources.limits['intel.com/sriov_pool0'] === '1' &&
      pod.spec.volumes.some((v: { name: string }) => v.name === 'podnetinfo'),
  );
  return { injected: injected.length, total: pods.length };
}

export async function largeClusterRows(): Promise<string[][]> {
  const missing = missingControlPlane();
  if (missing) return [[`Large cluster: skipped (${missing})`, '', '', '', '', '']];
  const cp = new ControlPlane();
  let stopCainjector = () => {};
  let nri: RunningFunction | undefined;
  let upstream: RunningUpstream | undefined;
  const upstreamMissing = missingUpstream();
  let patching: ChildProcess | undefined;
  const rows: string[][] = [];
  try {
    await cp.start();
    const ready = await deployWithCertificate(cp);
    stopCainjector = ready.stopCainjector;
    const { deployment, webhookName } = ready;
    const requestMiB = ksvcMemoryRequestMiB();
    let have = 0;
    for (const [index, size] of SIZES.entries()) {
      const created = await createTenantNads(cp, { from: have, to: size, namespaces: NAMESPACES }, 32);
      have = size;
      await nri?.stop();
      await upstream?.stop();
      const measured = await measureSize(cp, deployment, size, created.ms, index);
      nri = measured.nri;
      const f = measured.figures;
      let u: UpstreamFigures | undefined;
      if (!upstreamMissing) {
        await nri.stop(); // one replica at a time on the two cores
        const other = await measureUpstream(cp, deployment, size, index);
        upstream = other.upstream;
        u = other.figures;
      }
      const last = index === SIZES.length - 1;
      rows.push([
        `Large cluster, ${size.toLocaleString('en')} NADs in ${NAMESPACES.toLocaleString('en')} namespaces: ready (the list, streamed); re-list after a kube-apiserver restart`,
        `${seconds(f.readyMs)} (${seconds(f.listMs)}); ${seconds(f.relistMs)}`,
        u ? `serving ${seconds(u.servingMs)}, list in ${seconds(u.listedMs)} (upstream)` : '',
        '',
        last ? '≤ 60 s' : '',
        last ? (f.readyMs <= 60000 ? 'met' : 'MISSED') : '',
      ]);
      rows.push([
        `Large cluster, ${size.toLocaleString('en')} NADs: peak resident memory (VmHWM) through the list and the re-list, against upstream's, measured alike`,
        mib(f.peakMiB),
        u ? `${mib(u.peakMiB)} (upstream)` : (upstreamMissing ?? ''),
        u ? quotient(f.peakMiB, u.peakMiB) : '',
        // Node.js itself takes ~85 MiB before any NAD, so against upstream the goal is at the largest size only.
        `≤ ${last ? Math.min(160, requestMiB) : requestMiB} MiB${u && last ? ', < upstream' : ''}`,
        f.peakMiB <= requestMiB && (!last || f.peakMiB <= 160) && (!u || !last || f.peakMiB < u.peakMiB)
          ? 'met'
          : 'MISSED',
      ]);
      rows.push([
        `Large cluster, ${size.toLocaleString('en')} NADs: resident memory once idle (${IDLE_SECONDS} s after the list), against upstream's`,
        mib(f.idleMiB),
        u ? `${mib(u.idleMiB)} (upstream)` : '',
        u ? quotient(f.idleMiB, u.idleMiB) : '',
        u && last ? '< upstream' : '',
        u && last ? (f.idleMiB < u.idleMiB ? 'met' : 'MISSED') : '',
      ]);
    }

    // --- ten replicas at once, the list streamed against paginated (ABBA) ----
    await nri?.stop();
    const starts: Record<'stream' | 'pages', StartFigures[]> = { stream: [], pages: [] };
    for (const mode of ['stream', 'pages', 'pages', 'stream'] as const)
      starts[mode].push(await startReplicas(cp, deployment, mode === 'stream'));
    const meanOf = (mode: 'stream' | 'pages', key: keyof StartFigures) =>
      starts[mode].reduce((sum, figures) => sum + figures[key], 0) / starts[mode].length;
    const startRow = (what: string, key: keyof StartFigures, format: (value: number) => string) => [
      `${REPLICAS} replicas started at once at ${SIZES.at(-1)!.toLocaleString('en')} NADs: ${what}, list streamed against paginated (mean of 2, ABBA)`,
      format(meanOf('stream', key)),
      `${format(meanOf('pages', key))} (pages of 500)`,
      ofMeans(meanOf('stream', key), meanOf('pages', key)),
      '',
      '',
    ];
    rows.push(startRow('time until every replica is ready', 'readyMs', seconds));
    rows.push(startRow("the largest replica's peak resident memory", 'replicaPeakMiB', mib));
    rows.push(startRow("kube-apiserver's CPU time", 'apiserverCpuMs', seconds));
    rows.push(startRow("etcd's CPU time", 'etcdCpuMs', seconds));
    rows.push(startRow("kube-apiserver's resident memory rise", 'apiserverRiseMiB', mib));
    rows.push(startRow("etcd's resident memory rise", 'etcdRiseMiB', mib));
    nri = await startNri(cp, deployment, { NRI_LOG_LEVEL: 'info' });
    await cp.waitFor('nri ready', async () => (await fetch(`${nri!.url}/readyz`)).status === 200, 120000);

    // --- mass VM activation at the largest size -------------------------------
    const launcher = virtLauncherPod('tenant-0');
    const fixedPatch = await patchFor(cp, deployment.webhookUrl, launcher, 'tenant-0');
    const patchingPort = await freePort();
    patching = spawn(process.execPath, ['bench/bare-https.mjs'], {
      cwd: root,
      stdio: 'ignore',
      env: {
        CERT: join(deployment.volume.dir, 'tls.crt'),
        KEY: join(deployment.volume.dir, 'tls.key'),
        PORT: String(patchingPort),
        PATCH: fixedPatch,
      },
    });
    const urls = {
      nri: deployment.webhookUrl,
      patching: `https://127.0.0.1:${patchingPort}/mutate`,
      upstream: upstream?.url ?? '',
    };
    const SIDES = upstream ? (['nri', 'patching', 'upstream'] as const) : (['nri', 'patching'] as const);
    // Pods of one round go to one tenant namespace (its vlan-150 names pool 0), a fresh one each round.
    let tenant = 1;
    const burst = async (side: (typeof SIDES)[number], pods: number) => {
      const namespace = `tenant-${tenant++}`;
      await cp.waitFor(
        `the default ServiceAccount in ${namespace}`,
        async () => (await cp.kubectl(['get', 'serviceaccount', 'default', '-n', namespace])).code === 0,
        60000,
      );
      await pointWebhookAt(cp, webhookName, urls[side]);
      const before = await webhookHistogram(cp);
      const { seconds: took } = await createPods(cp, namespace, pods, {
        pod: virtLauncherPod(namespace),
        clients: BURST_CLIENTS,
      });
      const after = await webhookHistogram(cp);
      const webhookMs = ((after.sum - before.sum) / Math.max(after.count - before.count, 1)) * 1000;
      const { injected, total } = await injectedPods(cp, namespace);
      console.error(
        `burst, ${side}: ${pods} pods in ${took.toFixed(1)} s, webhook ${webhookMs.toFixed(2)} ms, ${injected}/${total} injected`,
      );
      return { webhookMs, podsPerSecond: pods / took, injected, total };
    };
    for (const side of SIDES) await burst(side, 200); // warm-up: JIT, the apiserver's connections
    const podsPerRound = Math.ceil(BURST_PODS / BURST_ROUNDS);
    const results: Record<string, Array<Awaited<ReturnType<typeof burst>>>> = { nri: [], patching: [], upstream: [] };
    for (let round = 0; round < BURST_ROUNDS; round++)
      for (const side of inTurn(SIDES, round)) results[side]!.push(await burst(side, podsPerRound));
    const ours = results.nri!;
    const floor = results.patching!;
    const created = ours.reduce((sum, r) => sum + r.total, 0);
    const injected = ours.reduce((sum, r) => sum + r.injected, 0);
    // At 32 clients kube-apiserver queues the calls, and whichever side runs first in a round was
    // slower in every round measured (e.g. 30.8 then 19.2 ms, 37.8 then 19.6 ms), whatever the
    // webhook: the rounds alternate (ABBA), so each side runs first equally often, and the ratio
    // of the two sides' means cancels that position, where a median of within-round ratios keeps it.
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const ratio = mean(ours.map((r) => r.webhookMs)) / mean(floor.map((r) => r.webhookMs));
    const perRound = ours.map((r, i) => r.webhookMs / floor[i]!.webhookMs);
    rows.push([
      `Mass VM activation at ${SIZES.at(-1)!.toLocaleString('en')} NADs: virt-launcher pods created as fast as ${BURST_CLIENTS} clients go, injected / created (none failed)`,
      `${injected} / ${created}`,
      '',
      '',
      `${BURST_PODS} of ${BURST_PODS}`,
      injected === created && created >= BURST_PODS ? 'met' : 'MISSED',
    ]);
    rows.push([
      `Mass VM activation: webhook latency, mean over ${BURST_ROUNDS} alternating rounds of ${podsPerRound}, kube-apiserver's histogram (ratio of the means; within rounds ${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}); pods/s`,
      `${mean(ours.map((r) => r.webhookMs)).toFixed(2)} ms; ${median(ours.map((r) => r.podsPerSecond)).toFixed(0)}/s`,
      `${mean(floor.map((r) => r.webhookMs)).toFixed(2)} ms; ${median(floor.map((r) => r.podsPerSecond)).toFixed(0)}/s (bare webhook, nri's fixed patch)`,
      ofMeans(mean(ours.map((r) => r.webhookMs)), mean(floor.map((r) => r.webhookMs))),
      '≤ 1.1',
      ratio <= 1.1 ? 'met' : 'MISSED',
    ]);
    const theirs = results.upstream!;
    if (theirs.length > 0) {
      rows.push([
        `Mass VM activation: webhook latency, nri against the upstream injector, same rounds (ratio of the means); pods/s`,
        `${mean(ours.map((r) => r.webhookMs)).toFixed(2)} ms; ${median(ours.map((r) => r.podsPerSecond)).toFixed(0)}/s`,
        `${mean(theirs.map((r) => r.webhookMs)).toFixed(2)} ms; ${median(theirs.map((r) => r.podsPerSecond)).toFixed(0)}/s (upstream; ${theirs.reduce((sum, r) => sum + r.injected, 0)} / ${theirs.reduce((sum, r) => sum + r.total, 0)} injected)`,
        ofMeans(mean(ours.map((r) => r.webhookMs)), mean(theirs.map((r) => r.webhookMs))),
        '',
        '',
      ]);
    }
    return rows;
  } catch (error) {
    rows.push([`Large cluster: failed: ${(error as Error).message.slice(0, 300)}`, '', '', '', '', 'MISSED']);
    return rows;
  } finally {
    stopCainjector();
    if (patching) await stopper(patching)();
    await upstream?.stop();
    await nri?.stop();
    await cp.stop();
  }
}
