// What the benchmark runs: our function, an empty functions-framework
// function, and a bare node:https server, each as its own process.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { TestPki } from '../test/support/certs.js';
import type { FakeApiServer } from '../test/support/fake-apiserver.js';
import { startCommand } from '../test/support/start-command.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));

/** The StatefulSet pod kube-apiserver sent, which bench/reviews.ts dresses as a DPDK pod. */
export const STATEFULSET_FIXTURE = new URL('test/fixtures/admission-review-statefulset.json', `file://${root}/`);

const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';

/** The NADs the bench's reviews select: sriov-a in their namespace, sriov-b with a node selector in infra. */
export function addBenchNads(api: FakeApiServer): void {
  api.upsertNad('bench', 'sriov-a', { [RESOURCE]: 'intel.com/sriov_a' });
  api.upsertNad('infra', 'sriov-b', {
    [RESOURCE]: 'intel.com/sriov_b',
    'k8s.v1.cni.cncf.io/nodeSelector': 'sriov=true',
  });
}

/** nri's environment against a fake API server: hugepage files on, plain HTTP on `port`, HTTPS on `port + 1`. */
export function nriEnv(
  api: FakeApiServer,
  pki: TestPki,
  port: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PORT: String(port),
    KUBECONFIG: api.kubeconfigPath,
    NRI_INJECT_HUGEPAGE_DOWN_API: 'true',
    NRI_TLS_CERT_FILE: pki.serverCert,
    NRI_TLS_KEY_FILE: pki.serverKey,
    NRI_TLS_PORT: String(port + 1),
    ...extra,
  };
}

/** One series of a /metrics page, named as it is printed ("name" or "name{label=\"value\"}"); NaN when absent. */
export async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return Number(new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** The memory the ksvc requests for each replica, in MiB: what a replica's resident memory must stay within. */
export function ksvcMemoryRequestMiB(): number {
  const service = parse(readFileSync(new URL('knative/service.yaml', `file://${root}/`), 'utf8'));
  return Number(/^(\d+)Mi$/.exec(service.spec.template.spec.containers[0].resources.requests.memory)![1]);
}

/** nri's process arguments, exactly as `npm start` (and the container) runs it, heap flags included, on the bundle `npm run build` made. */
export const NRI_ARGS: string[] = startCommand()
  .slice(1)
  .map((word) => (word === 'dist/main.js' ? 'build/dist/main.js' : word));

/**
 * With taskset and two or more CPUs, the load generator (this process) keeps
 * CPU 0 and each measured server gets CPU 1, as a pod would get its own core:
 * neither steals from the other, and ratios stop swinging with the scheduler.
 */
const pinning = (() => {
  if (cpus().length < 2 || process.env.BENCH_PIN === '0') return undefined;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
    return ['-c', '1'];
  } catch {
    return undefined; // no taskset: measure unpinned and say so
  }
})();

export const pinned = pinning !== undefined;

/**
 * Runs fn with this process (and so what it spawns) allowed on every CPU, then
 * pins it back: a control plane of five processes is not a one-core server.
 */
export async function onAllCpus<T>(fn: () => Promise<T>): Promise<T> {
  if (!pinning) return fn();
  execFileSync('taskset', ['-a', '-p', '-c', `0-${cpus().length - 1}`, String(process.pid)], { stdio: 'ignore' });
  try {
    return await fn();
  } finally {
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  }
}

/**
 * Output goes to /dev/null, as a container runtime would take it: a log pipe
 * read by the benchmark process would steal CPU from the load generator.
 */
export function spawnProcess(args: string[], env: Record<string, string>): ChildProcess {
  const options: SpawnOptions = {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: root, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  };
  return pinning
    ? spawn('taskset', [...pinning, process.execPath, ...args], options)
    : spawn(process.execPath, args, options);
}

/** The middle value of a non-empty list (the upper of the two middles of an even count). */
export const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * The order of the sides in round `round`: forwards, then backwards. Taken
 * with the ratios within a round, the machine's drift over minutes then falls
 * on every side alike instead of on whichever runs last.
 */
export const inTurn = <T>(sides: readonly T[], round: number): T[] =>
  round % 2 === 0 ? [...sides] : [...sides].reverse();

/** Linux's USER_HZ, 100 on every mainstream architecture. */
const CLOCK_TICKS = 100;

/** CPU time (user + system) a child has used so far, in milliseconds (Linux /proc). */
export function cpuMs(child: ChildProcess): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
}

export function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
}

/** POSTs a body once; resolves with the status, rejects on connection errors. */
export function post(url: string, body: string, ca?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const requester = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = requester(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false, ...(ca ? { ca } : {}) },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Milliseconds from spawning the process to its first answered review. */
export async function timeToFirstReview(
  start: () => ChildProcess,
  url: string,
  body: string,
  ca?: string,
): Promise<number> {
  const started = performance.now();
  const child = start();
  try {
    for (;;) {
      try {
        if ((await post(url, body, ca)) === 200) return performance.now() - started;
      } catch {
        /* not listening yet */
      }
      if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    await stopper(child)();
  }
}
