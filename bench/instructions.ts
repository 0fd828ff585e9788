// npm run bench:instructions: instructions executed per review, nri against the
// bare HTTPS server, counted by valgrind's callgrind. Unlike CPU time on a
// shared virtual machine (±30% between runs), a count repeats to within a few
// per cent, so it can tell whether a change to the review path made it cheaper.
// Each server is warmed up uncounted, long enough for V8 to stop optimising
// (with 4,000 reviews its compiler thread still ran in the counted window);
// then counting is switched on for REVIEWS unique reviews (bench/reviews.ts)
// and off again. Valgrind slows the
// process about fifty-fold, so timers fire fifty times more often per review
// than in real life: compare the request path (the answering of reviews)
// rather than the process total when a change is small.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPki } from '../test/support/certs.js';
import { FakeApiServer } from '../test/support/fake-apiserver.js';
import { dpdkReview, fill, virtLauncherReview } from './reviews.js';
import { addBenchNads, NRI_ARGS, nriEnv, onAllCpus, root, STATEFULSET_FIXTURE } from './targets.js';

const REVIEWS = Number(process.env.BENCH_REVIEWS ?? 2000);
const WARM_UP = Number(process.env.BENCH_WARM_UP ?? 20000);
const CLIENTS = 4;

let sequence = 0;

/** Sends `count` unique reviews over `clients` keep-alive connections. */
async function send(url: string, template: string, agent: Agent, count: number): Promise<void> {
  let sent = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${url}: status ${res.statusCode}`)),
        );
      });
      req.on('error', reject);
      req.end(fill(template, sequence++));
    });
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (sent++ < count) await one();
    }),
  );
}

/** The instructions callgrind counted per review, in total and inside TLS reads (the answering of requests). */
function countsOf(directory: string): { total: number; requestPath: number } {
  const file = readdirSync(directory).find((name) => /\.out\.\d+$/.test(name));
  if (!file) throw new Error(`callgrind wrote no dump into ${directory}`);
  const path = join(directory, file);
  const total = Number(/^totals: (\d+)/m.exec(readFileSync(path, 'utf8'))?.[1] ?? NaN);
  const annotated = execFileSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', path], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = annotated.split('\n').find((row) => row.includes('node::crypto::TLSWrap::ClearOut()'));
  const requestPath = Number(line?.trim().split(' ')[0]?.replaceAll(',', '') ?? NaN);
  return { total: total / REVIEWS, requestPath: requestPath / REVIEWS };
}

async function count(
  args: string[],
  env: Record<string, string>,
  url: string,
  template: string,
  ca: string,
): Promise<{ total: number; requestPath: number }> {
  const directory = mkdtempSync(join(tmpdir(), 'nri-callgrind-'));
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${join(directory, 'run.out')}`,
      process.execPath,
      ...args,
    ],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: root, ...env },
      stdio: 'ignore',
    },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS, ca });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await send(url, template, agent, 1);
        break;
      } catch (error) {
        if (attempt > 600 || child.exitCode !== null) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await send(url, template, agent, WARM_UP);
    execFileSync('callgrind_control', ['-i', 'on', String(child.pid)], { stdio: 'ignore' });
    await send(url, template, agent, REVIEWS);
    execFileSync('callgrind_control', ['-i', 'off', String(child.pid)], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--dump', String(child.pid)], { stdio: 'ignore' });
    return countsOf(directory);
  } finally {
    agent.destroy();
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
  }
}

async function main() {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    console.error('bench:instructions needs valgrind (Debian: apt-get install valgrind)');
    process.exit(2);
  }
  const pki = createPki('nri-instructions-');
  const api = new FakeApiServer(pki);
  await api.start();
  addBenchNads(api);
  const rows: string[] = [];
  try {
    for (const [label, template] of [
      ['DPDK pod of a Deployment', dpdkReview('bench', STATEFULSET_FIXTURE)],
      ['KubeVirt virt-launcher pod', virtLauncherReview('bench')],
    ] as const) {
      const bare = await count(
        ['bench/bare-https.mjs'],
        { PORT: '19301', CERT: pki.serverCert, KEY: pki.serverKey },
        'https://127.0.0.1:19301/',
        template,
        pki.caPem,
      );
      const nri = await count(
        NRI_ARGS,
        nriEnv(api, pki, 19302, { NRI_LOG_LEVEL: 'info' }),
        'https://127.0.0.1:19303/mutate',
        template,
        pki.caPem,
      );
      const k = (value: number) => `${(value / 1000).toFixed(0)}k`;
      rows.push(
        `| ${label}: instructions per review, process | ${k(nri.total)} | ${k(bare.total)} | ${(nri.total / bare.total).toFixed(2)} |`,
      );
      rows.push(
        `| ${label}: instructions per review, answering requests | ${k(nri.requestPath)} | ${k(bare.requestPath)} | ${(nri.requestPath / bare.requestPath).toFixed(2)} |`,
      );
    }
  } finally {
    await api.stop();
  }
  console.log(
    `\ncallgrind, ${REVIEWS} unique reviews after ${WARM_UP} uncounted, ${CLIENTS} keep-alive clients; baseline: bench/bare-https.mjs\n`,
  );
  console.log(['| Measure | nri | Bare | Ratio |', '| --- | --- | --- | --- |', ...rows].join('\n'));
}

// Unpinned: bench/targets.js pins this process to CPU 0 for the timing bench.
onAllCpus(main).catch((error) => {
  console.error(error);
  process.exit(2);
});
