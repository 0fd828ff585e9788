// npm run bench: measures the function against its baselines in one run on
// this machine and prints a table of ratios (see README, "Benchmarks"). Every
// review is shaped as kube-apiserver sends it and unique (bench/reviews.ts).
// Loopback only; every loop is bounded in count and time.
import { cpus, totalmem } from 'node:os';
import autocannon from 'autocannon';
import { createPki } from '../test/support/certs.js';
import { FakeApiServer } from '../test/support/fake-apiserver.js';
import type { ChildProcess } from 'node:child_process';
import { controlPlaneRows } from './control-plane.js';
import { largeClusterRows } from './large-cluster.js';
import { medianOfRounds, quotient } from './ratio.js';
import { dpdkReview, fill, virtLauncherReview } from './reviews.js';
import {
  addBenchNads,
  cpuMs,
  inTurn,
  ksvcMemoryRequestMiB,
  median,
  metric,
  NRI_ARGS,
  nriEnv as nriEnvOf,
  onAllCpus,
  pinned,
  post,
  spawnProcess,
  STATEFULSET_FIXTURE,
  stopper,
  timeToFirstReview,
} from './targets.js';

const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';
const DURATION = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 11);

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) the server process spent per answered request */
  cpuUs: number;
}

let sequence = 0;
/** The template filled with values no request has had before. */
const fresh = (template: string) => fill(template, sequence++);

async function load(url: string, body: string, server: ChildProcess, duration = DURATION): Promise<LoadResult> {
  const before = cpuMs(server);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: fresh(body) }),
      },
    ],
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUs: ((cpuMs(server) - before) * 1000) / Math.max(result.requests.total, 1),
  };
}

interface Side {
  url: string;
  server: ChildProcess;
  body: string;
}

/**
 * A baseline and a contender, each warmed up long enough for V8 to stop
 * re-optimising (about 20,000 reviews), then measured in rounds that take
 * turns (inTurn). Each figure is the median of its rounds; the CPU ratio,
 * contender over baseline, is the median of the ratios within a round.
 */
async function compare(sides: [baseline: Side, contender: Side]): Promise<{ results: LoadResult[]; cpuRatio: number }> {
  for (const side of sides) await load(side.url, side.body, side.server, WARMUP);
  const runs: [LoadResult[], LoadResult[]] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    for (const index of inTurn([0, 1] as const, round))
      runs[index].push(await load(sides[index].url, sides[index].body, sides[index].server));
  }
  const mid = (results: LoadResult[], key: keyof LoadResult) => median(results.map((result) => result[key]));
  const results = runs.map((rounds) => ({
    rps: mid(rounds, 'rps'),
    p50: mid(rounds, 'p50'),
    p99: mid(rounds, 'p99'),
    cpuUs: mid(rounds, 'cpuUs'),
  }));
  const [baseline, contender] = runs;
  const cpuRatio = median(contender.map((result, round) => result.cpuUs / baseline[round]!.cpuUs));
  return { results, cpuRatio };
}

/** Polls /metrics until the NAD watch cache says it has synced. */
async function waitForSync(url: string, timeoutMs = 120000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await metric(url, 'nri_nad_cache_synced')) === 1) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not sync within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function main() {
  const pki = createPki('nri-bench-');
  const api = new FakeApiServer(pki);
  await api.start();
  addBenchNads(api);
  const dpdk = dpdkReview('bench', STATEFULSET_FIXTURE);
  const launcher = virtLauncherReview('bench');
  const nriEnv = (port: number, extra: Record<string, string> = {}) => nriEnvOf(api, pki, port, extra);
  const emptyFunction = (port: number) =>
    spawnProcess(
      [
        'node_modules/@google-cloud/functions-framework/build/src/main.js',
        '--target=mutate',
        '--source=bench/empty-function.cjs',
      ],
      { PORT: String(port), NODE_ENV: 'production' },
    );
  const rows: string[][] = [];

  // --- cold start: the container's command to its first review over HTTPS ----
  const coldEmpty: number[] = [];
  const coldNri: number[] = [];
  for (let run = 0; run < COLD_RUNS; run++) {
    coldEmpty.push(await timeToFirstReview(() => emptyFunction(19080), 'http://127.0.0.1:19080/', fresh(dpdk)));
    coldNri.push(
      await timeToFirstReview(
        () => spawnProcess(NRI_ARGS, nriEnv(19082, { NRI_LOG_LEVEL: 'warn' })),
        'https://127.0.0.1:19083/mutate',
        fresh(dpdk),
        pki.caPem,
      ),
    );
  }
  const coldRatio = median(coldNri) / median(coldEmpty);
  rows.push([
    `Cold start, container command to first HTTPS review (median of ${COLD_RUNS})`,
    `${median(coldNri).toFixed(0)} ms`,
    `${median(coldEmpty).toFixed(0)} ms (empty functions-framework function)`,
    quotient(median(coldNri), median(coldEmpty)),
    '≤ 1.5',
    coldRatio <= 1.5 ? 'met' : 'MISSED',
  ]);

  // --- steady load over HTTPS, every review unique ---------------------------
  const bare = spawnProcess(['bench/bare-https.mjs'], { PORT: '19092', CERT: pki.serverCert, KEY: pki.serverKey });
  const nri = spawnProcess(NRI_ARGS, nriEnv(19094, { NRI_LOG_LEVEL: 'info' }));
  await waitForSync('http://127.0.0.1:19094');
  for (;;) {
    try {
      if ((await post('https://127.0.0.1:19092/', fresh(dpdk), pki.caPem)) === 200) break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const getsBefore = api.counts.nadGet;
  for (const [label, template] of [
    ['DPDK pod of a Deployment (2 SR-IOV networks, hugepages)', dpdk],
    ['KubeVirt virt-launcher pod (compute first, 8 volumes)', launcher],
  ] as const) {
    const {
      results: [ofBare, ofNri],
      cpuRatio,
    } = await compare([
      { url: 'https://127.0.0.1:19092/', server: bare, body: template },
      { url: 'https://127.0.0.1:19095/mutate', server: nri, body: template },
    ]);
    rows.push([
      `HTTPS, ${label}: server CPU per review`,
      `${ofNri.cpuUs.toFixed(0)} µs`,
      `${ofBare.cpuUs.toFixed(0)} µs (bare node:https)`,
      medianOfRounds(cpuRatio, ROUNDS),
      '≤ 2.0',
      cpuRatio <= 2 ? 'met' : 'MISSED',
    ]);
    rows.push([
      `HTTPS, ${label}: req/s; p50 / p99`,
      `${ofNri.rps.toFixed(0)}; ${ofNri.p50} / ${ofNri.p99} ms`,
      `${ofBare.rps.toFixed(0)}; ${ofBare.p50} / ${ofBare.p99} ms`,
      quotient(ofNri.rps, ofBare.rps),
      '',
      '',
    ]);
  }
  const gets = api.counts.nadGet - getsBefore;
  const rss = await metric('http://127.0.0.1:19094', 'process_resident_memory_bytes');
  rows.push([
    'NAD reads reaching the API server during load',
    String(gets),
    '',
    '',
    '0',
    gets === 0 ? 'met' : 'MISSED',
  ]);
  const requestMiB = ksvcMemoryRequestMiB();
  rows.push([
    'Resident memory after the load',
    `${mib(rss)} MiB`,
    '',
    '',
    `≤ ${requestMiB} MiB (the ksvc's request)`,
    rss <= requestMiB * 1048576 ? 'met' : 'MISSED',
  ]);
  await Promise.all([stopper(bare)(), stopper(nri)()]);

  // --- scale: 100,000 NADs in 1,000 namespaces (the real apiserver's rows are in large-cluster.ts) ---
  const big = new FakeApiServer(pki);
  await big.start();
  big.seedNads(
    Array.from({ length: 100000 }, (_, i) => ({
      namespace: `ns-${i % 1000}`,
      name: `net-${Math.floor(i / 1000)}`,
      annotations: {
        [RESOURCE]: `example.com/pool${i % 10}`,
        'kubectl.kubernetes.io/last-applied-configuration':
          '{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","spec":{"config":"{\\"cniVersion\\":\\"0.3.1\\",\\"type\\":\\"sriov\\"}"}}',
      },
    })),
  );
  addBenchNads(big);
  const tls = (port: number) => ({
    NRI_TLS_CERT_FILE: pki.serverCert,
    NRI_TLS_KEY_FILE: pki.serverKey,
    NRI_TLS_PORT: String(port),
  });
  const smallNri = spawnProcess(NRI_ARGS, {
    PORT: '19100',
    KUBECONFIG: api.kubeconfigPath,
    NRI_LOG_LEVEL: 'info',
    ...tls(19101),
  });
  const scaleStart = performance.now();
  const bigNri = spawnProcess(NRI_ARGS, {
    PORT: '19102',
    KUBECONFIG: big.kubeconfigPath,
    NRI_LOG_LEVEL: 'info',
    ...tls(19103),
  });
  await waitForSync('http://127.0.0.1:19102');
  const syncMs = performance.now() - scaleStart;
  await waitForSync('http://127.0.0.1:19100');
  const {
    results: [lookupSmall, lookupBig],
    cpuRatio: lookupRatio,
  } = await compare([
    { url: 'https://127.0.0.1:19101/mutate', server: smallNri, body: dpdk },
    { url: 'https://127.0.0.1:19103/mutate', server: bigNri, body: dpdk },
  ]);
  // Read after the load: by then collections have freed the list's garbage, so
  // the difference is what the cache keeps.
  const heapSmall = await metric('http://127.0.0.1:19100', 'nodejs_heap_size_used_bytes');
  const heapBig = await metric('http://127.0.0.1:19102', 'nodejs_heap_size_used_bytes');
  rows.push([
    'Scale (fake API server): time to sync 100,000 NADs (1,000 namespaces)',
    `${syncMs.toFixed(0)} ms`,
    '',
    '',
    '',
    '',
  ]);
  rows.push([
    'Scale (fake API server): heap in use after load, 100,002 NADs vs 2',
    `${mib(heapBig)} MiB`,
    `${mib(heapSmall)} MiB`,
    '',
    '',
    '',
  ]);
  rows.push([
    'Scale (fake API server): CPU per review with 100,002 NADs vs 2 (lookup cost flat)',
    `${lookupBig.cpuUs.toFixed(0)} µs`,
    `${lookupSmall.cpuUs.toFixed(0)} µs`,
    medianOfRounds(lookupRatio, ROUNDS),
    '≈ 1',
    lookupRatio < 1.15 ? 'met' : 'MISSED',
  ]);
  await Promise.all([stopper(smallNri)(), stopper(bigNri)()]);
  await Promise.all([api.stop(), big.stop()]);

  // --- through a real kube-apiserver ----------------------------------------
  if (process.env.BENCH_CONTROL_PLANE !== '0') rows.push(...(await onAllCpus(controlPlaneRows)));
  if (process.env.BENCH_LARGE_CLUSTER !== '0') rows.push(...(await onAllCpus(largeClusterRows)));

  const header = ['Measure', 'nri', 'Baseline', 'Ratio', 'Goal', ''];
  const table = [header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
  console.log(
    `\nMachine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${CONNECTIONS} connections; ${ROUNDS} alternating rounds of ${DURATION} s per side after ${WARMUP} s of warm-up, medians (each ratio says how it was computed); every review unique; autocannon in the same machine${pinned ? ', pinned to CPU 0, each loopback server to CPU 1 (the control-plane rows unpinned)' : ', unpinned'}.\n`,
  );
  console.log(table);
  if (rows.some((row) => row[5] === 'MISSED')) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
