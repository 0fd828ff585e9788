// npm run bench: measures the function against its baselines in one run on
// this machine and prints a table of ratios (see README, "Benchmarks").
// Loopback only; every loop is bounded in count and time.
import { cpus, totalmem } from 'node:os';
import autocannon from 'autocannon';
import { createPki } from '../test/support/certs.js';
import { FakeApiServer } from '../test/support/fake-apiserver.js';
import type { ChildProcess } from 'node:child_process';
import { cpuMs, NRI_ARGS, pinned, post, spawnProcess, stopper, timeToFirstReview } from './targets.js';

const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';
const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 11);

/**
 * A pod as a DPDK workload sends it: two networks, two containers, labels, hugepages.
 * Every "[<id>]" becomes a new id per request (see `fresh`): each review has
 * its own uid, as kube-apiserver sends them, and with `name` set to hold one,
 * its own pod.
 */
function realisticReview(namespace = 'bench', networks = 'sriov-a@net1, infra/sriov-b@net2', name?: string): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-[<id>]',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { ...(name ? { name } : {}), generateName: 'dpdk-7c9f-', namespace, labels: { app: 'dpdk', 'pod-template-hash': '7c9f' }, annotations: { 'k8s.v1.cni.cncf.io/networks': networks } },
        spec: {
          volumes: [{ name: 'hugepage', emptyDir: { medium: 'HugePages' } }, { name: 'kube-api-access-x', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
          containers: [
            {
              name: 'testpmd',
              image: 'registry.example.com/testpmd:23.11',
              resources: { requests: { cpu: '4', memory: '2Gi', 'hugepages-1Gi': '4Gi' }, limits: { cpu: '4', memory: '2Gi', 'hugepages-1Gi': '4Gi' } },
              volumeMounts: [{ name: 'hugepage', mountPath: '/dev/hugepages' }, { name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
            },
            { name: 'exporter', image: 'registry.example.com/exporter:1.2', resources: { requests: { cpu: '100m' } }, volumeMounts: [{ name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }] },
          ],
          tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
        },
        status: {},
      },
    },
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ratio = (a: number, b: number) => (a / b).toFixed(2);
const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) the server process spent per answered request */
  cpuUs: number;
}

let sequence = 0;
/** The template with "[<id>]" replaced by an id no request has had before. */
const fresh = (template: string) => template.replaceAll('[<id>]', (sequence++).toString(36).padStart(8, '0'));

async function load(url: string, body: string, server: ChildProcess, duration = DURATION): Promise<LoadResult> {
  const before = cpuMs(server);
  const result = await autocannon({ url, connections: CONNECTIONS, duration, requests: [{ method: 'POST', headers: { 'content-type': 'application/json' }, setupRequest: (request) => ({ ...request, body: fresh(body) }) }] });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpuUs: ((cpuMs(server) - before) * 1000) / Math.max(result.requests.total, 1) };
}

/**
 * Rounds alternate between the baseline and nri, after a warm-up of each, and
 * each figure is the median of its rounds: drift on a shared machine then hits
 * both sides alike instead of whichever happened to run second.
 */
async function compare(sides: Array<{ url: string; server: ChildProcess; body: string }>): Promise<LoadResult[]> {
  for (const side of sides) await load(side.url, side.body, side.server, 2);
  const runs: LoadResult[][] = sides.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, side] of sides.entries()) runs[index]!.push(await load(side.url, side.body, side.server));
  }
  const mid = (results: LoadResult[], key: keyof LoadResult) => median(results.map((result) => result[key]));
  return runs.map((results) => ({ rps: mid(results, 'rps'), p50: mid(results, 'p50'), p99: mid(results, 'p99'), cpuUs: mid(results, 'cpuUs') }));
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

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

async function main() {
  const pki = createPki('nri-bench-');
  const api = new FakeApiServer(pki);
  await api.start();
  api.upsertNad('bench', 'sriov-a', { [RESOURCE]: 'intel.com/sriov_a' });
  api.upsertNad('infra', 'sriov-b', { [RESOURCE]: 'intel.com/sriov_b', 'k8s.v1.cni.cncf.io/nodeSelector': 'sriov=true' });
  const review = realisticReview();
  const nriEnv = (port: number, extra: Record<string, string> = {}) => ({
    PORT: String(port),
    KUBECONFIG: api.kubeconfigPath,
    NRI_INJECT_HUGEPAGE_DOWN_API: 'true',
    NRI_TLS_CERT_FILE: pki.serverCert,
    NRI_TLS_KEY_FILE: pki.serverKey,
    NRI_TLS_PORT: String(port + 1),
    ...extra,
  });
  const emptyFunction = (port: number) => spawnProcess(['node_modules/@google-cloud/functions-framework/build/src/main.js', '--target=mutate', '--source=bench/empty-function.cjs'], { PORT: String(port), NODE_ENV: 'production' });
  const rows: string[][] = [];

  // --- cold start ---------------------------------------------------------
  // nri's first review is sent where kube-apiserver sends it: the HTTPS listener
  // (TLS handshake included); the functions-framework port is measured too.
  const coldEmpty: number[] = [];
  const coldNri: number[] = [];
  const coldNriHttp: number[] = [];
  for (let run = 0; run < COLD_RUNS; run++) {
    coldEmpty.push(await timeToFirstReview(() => emptyFunction(19080), 'http://127.0.0.1:19080/', review));
    coldNri.push(await timeToFirstReview(() => spawnProcess(NRI_ARGS, nriEnv(19082, { NRI_LOG_LEVEL: 'warn' })), 'https://127.0.0.1:19083/mutate', review, pki.caPem));
    coldNriHttp.push(await timeToFirstReview(() => spawnProcess(NRI_ARGS, nriEnv(19084, { NRI_LOG_LEVEL: 'warn' })), 'http://127.0.0.1:19084/mutate', review));
  }
  const coldRatio = median(coldNri) / median(coldEmpty);
  rows.push(['Cold start to first served review, HTTPS webhook (median of ' + COLD_RUNS + ')', `${median(coldNri).toFixed(0)} ms`, `${median(coldEmpty).toFixed(0)} ms (empty function)`, ratio(median(coldNri), median(coldEmpty)), '≤ 1.5', coldRatio <= 1.5 ? 'met' : 'MISSED']);
  rows.push(['Cold start, first review through functions-framework', `${median(coldNriHttp).toFixed(0)} ms`, `${median(coldEmpty).toFixed(0)} ms (empty function)`, ratio(median(coldNriHttp), median(coldEmpty)), '', '']);

  // --- steady load over HTTP and HTTPS -------------------------------------
  const empty = emptyFunction(19090);
  const bare = spawnProcess(['bench/bare-https.mjs'], { PORT: '19092', CERT: pki.serverCert, KEY: pki.serverKey });
  const nri = spawnProcess(NRI_ARGS, nriEnv(19094, { NRI_LOG_LEVEL: 'info' }));
  await waitForSync('http://127.0.0.1:19094');
  for (;;) {
    try {
      if ((await post('http://127.0.0.1:19090/', review)) === 200 && (await post('https://127.0.0.1:19092/', review, pki.caPem)) === 200) break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const getsBefore = api.counts.nadGet;
  // HTTPS first: the first review through functions-framework makes it wrap each
  // call in a Node domain, which turns on async hooks for the whole process
  // (README, "Benchmarks"). Deployed, only kube-apiserver's HTTPS reaches nri.
  const [httpsBare, httpsNri] = await compare([
    { url: 'https://127.0.0.1:19092/', server: bare, body: review },
    { url: 'https://127.0.0.1:19095/mutate', server: nri, body: review },
  ]);
  // The same, every pod different (a name per request, as a StatefulSet's
  // pods differ): nothing is recalled, every review is parsed and decided.
  const distinct = realisticReview('bench', undefined, 'dpdk-[<id>]');
  const [distinctBare, distinctNri] = await compare([
    { url: 'https://127.0.0.1:19092/', server: bare, body: distinct },
    { url: 'https://127.0.0.1:19095/mutate', server: nri, body: distinct },
  ]);
  const rssAfterHttps = await metric('http://127.0.0.1:19094', 'process_resident_memory_bytes');
  const [httpEmpty, httpNri] = await compare([
    { url: 'http://127.0.0.1:19090/', server: empty, body: review },
    { url: 'http://127.0.0.1:19094/mutate', server: nri, body: review },
  ]);
  const gets = api.counts.nadGet - getsBefore;
  const rss = await metric('http://127.0.0.1:19094', 'process_resident_memory_bytes');
  const httpShare = httpNri.rps / httpEmpty.rps;
  const httpsShare = httpsNri.rps / httpsBare.rps;
  rows.push(['HTTP /mutate (functions-framework): req/s', httpNri.rps.toFixed(0), `${httpEmpty.rps.toFixed(0)} (empty function)`, ratio(httpNri.rps, httpEmpty.rps), '≥ 0.80', httpShare >= 0.8 ? 'met' : 'MISSED']);
  rows.push(['HTTP p50 / p99 latency', `${httpNri.p50} / ${httpNri.p99} ms`, `${httpEmpty.p50} / ${httpEmpty.p99} ms`, '', '', '']);
  rows.push(['HTTP server CPU per request', `${httpNri.cpuUs.toFixed(0)} µs`, `${httpEmpty.cpuUs.toFixed(0)} µs`, ratio(httpNri.cpuUs, httpEmpty.cpuUs), '', '']);
  rows.push(['HTTPS /mutate (webhook listener): req/s', httpsNri.rps.toFixed(0), `${httpsBare.rps.toFixed(0)} (bare node:https)`, ratio(httpsNri.rps, httpsBare.rps), '≥ 0.70', httpsShare >= 0.7 ? 'met' : 'MISSED']);
  const p99Ratio = httpsNri.p99 / Math.max(httpsBare.p99, 1);
  rows.push(['HTTPS p50 / p99 latency', `${httpsNri.p50} / ${httpsNri.p99} ms`, `${httpsBare.p50} / ${httpsBare.p99} ms`, ratio(httpsNri.p99, Math.max(httpsBare.p99, 1)), 'p99 ≤ 2×', p99Ratio <= 2 ? 'met' : 'MISSED']);
  rows.push(['HTTPS server CPU per request', `${httpsNri.cpuUs.toFixed(0)} µs`, `${httpsBare.cpuUs.toFixed(0)} µs`, ratio(httpsNri.cpuUs, httpsBare.cpuUs), '', '']);
  rows.push(['HTTPS, every pod different (nothing recalled): req/s', distinctNri.rps.toFixed(0), `${distinctBare.rps.toFixed(0)} (bare node:https)`, ratio(distinctNri.rps, distinctBare.rps), '', '']);
  rows.push(['HTTPS, every pod different: p50 / p99; CPU per request', `${distinctNri.p50} / ${distinctNri.p99} ms; ${distinctNri.cpuUs.toFixed(0)} µs`, `${distinctBare.p50} / ${distinctBare.p99} ms; ${distinctBare.cpuUs.toFixed(0)} µs`, ratio(distinctNri.cpuUs, distinctBare.cpuUs), '', '']);
  rows.push(['NAD reads reaching the API server during load', String(gets), '', '', '0', gets === 0 ? 'met' : 'MISSED']);
  rows.push(['Resident memory after the HTTPS load', `${mib(rssAfterHttps)} MiB`, '', '', '≤ 128 MiB', rssAfterHttps <= 128 * 1048576 ? 'met' : 'MISSED']);
  rows.push(['Resident memory after both loads', `${mib(rss)} MiB`, '', '', '≤ 128 MiB', rss <= 128 * 1048576 ? 'met' : 'MISSED']);
  await Promise.all([stopper(empty)(), stopper(bare)(), stopper(nri)()]);

  // --- scale: 10,000 NADs in 1,000 namespaces -------------------------------
  const big = new FakeApiServer(pki);
  await big.start();
  big.seedNads(Array.from({ length: 10000 }, (_, i) => ({ namespace: `ns-${Math.floor(i / 10)}`, name: `net-${i % 10}`, annotations: { [RESOURCE]: `example.com/pool${i % 10}`, 'kubectl.kubernetes.io/last-applied-configuration': '{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","spec":{"config":"{\\"cniVersion\\":\\"0.3.1\\",\\"type\\":\\"sriov\\"}"}}' } })));
  // Both over HTTPS, the path kube-apiserver uses (functions-framework's
  // domains add noise that has nothing to do with lookups).
  const tls = (port: number) => ({ NRI_TLS_CERT_FILE: pki.serverCert, NRI_TLS_KEY_FILE: pki.serverKey, NRI_TLS_PORT: String(port) });
  const smallNri = spawnProcess(NRI_ARGS, { PORT: '19100', KUBECONFIG: api.kubeconfigPath, NRI_LOG_LEVEL: 'info', ...tls(19101) });
  const scaleStart = performance.now();
  const bigNri = spawnProcess(NRI_ARGS, { PORT: '19102', KUBECONFIG: big.kubeconfigPath, NRI_LOG_LEVEL: 'info', ...tls(19103) });
  await waitForSync('http://127.0.0.1:19102');
  const syncMs = performance.now() - scaleStart;
  for (;;) {
    try {
      if ((await post('https://127.0.0.1:19101/mutate', review, pki.caPem)) === 200 && (await post('https://127.0.0.1:19103/mutate', review, pki.caPem)) === 200) break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const [lookupSmall, lookupBig] = await compare([
    { url: 'https://127.0.0.1:19101/mutate', server: smallNri, body: review },
    { url: 'https://127.0.0.1:19103/mutate', server: bigNri, body: realisticReview('ns-500', 'net-1@net1, ns-999/net-9@net2') },
  ]);
  // Read after the load: by then collections have freed the list's garbage, so
  // the difference is what the cache keeps.
  const heapSmall = await metric('http://127.0.0.1:19100', 'nodejs_heap_size_used_bytes');
  const heapBig = await metric('http://127.0.0.1:19102', 'nodejs_heap_size_used_bytes');
  rows.push(['Scale: time to sync 10,000 NADs (1,000 namespaces)', `${syncMs.toFixed(0)} ms`, '', '', '', '']);
  rows.push(['Scale: heap in use after load, 10,000 NADs vs 2', `${mib(heapBig)} MiB`, `${mib(heapSmall)} MiB`, '', '', '']);
  rows.push(['Scale: HTTPS req/s with 10,000 NADs vs 2 (lookup cost flat)', lookupBig.rps.toFixed(0), lookupSmall.rps.toFixed(0), ratio(lookupBig.rps, lookupSmall.rps), '≈ 1', lookupBig.rps / lookupSmall.rps > 0.85 ? 'met' : 'MISSED']);
  await Promise.all([stopper(smallNri)(), stopper(bigNri)()]);
  await Promise.all([api.stop(), big.stop()]);

  const header = ['Measure', 'nri', 'Baseline', 'Ratio', 'Goal', ''];
  const table = [header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
  console.log(`\nMachine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${CONNECTIONS} connections; ${ROUNDS} alternating rounds of ${DURATION} s per side, medians; autocannon in the same machine${pinned ? ', pinned to CPU 0, each server to CPU 1' : ', unpinned'}.\n`);
  console.log(table);
  if (rows.some((row) => row[5] === 'MISSED')) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
