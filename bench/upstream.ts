// The upstream Go injector, built and run beside nri in the same benchmark run, so that every
// comparison with it is measured, never typed in. Its source is ../shared/upstream's tarball
// (Apache-2.0; the Go module proxy refuses the module but serves its dependencies); it is built
// with `go build ./cmd/webhook` into the e2e suite's cache, once.
//
// Upstream reads the cluster only through rest.InClusterConfig: the service-account token and CA
// at /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT. It runs in
// a mount namespace of its own (unshare -m, as root) with a tmpfs over /run holding those
// files, so nothing on the machine changes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlPlane } from '../test/e2e/support/control-plane.js';
import { freePort } from '../test/support/function-process.js';
import { root } from './targets.js';

const TARBALL = join(root, '..', 'shared', 'upstream', 'network-resources-injector-61d01b9.tar.gz');
const CACHE = join(process.env.NRI_E2E_CACHE ?? join(homedir(), '.cache', 'nri-e2e'), 'upstream');
export const UPSTREAM_BINARY = join(CACHE, 'webhook');

/** Why the upstream injector cannot be measured here, or undefined when it can. */
export function missingUpstream(): string | undefined {
  if (process.getuid?.() !== 0) return 'running upstream in its own mount namespace needs root';
  if (!existsSync(UPSTREAM_BINARY) && !existsSync(TARBALL)) return `no upstream source at ${TARBALL}`;
  return undefined;
}

/** Builds upstream's webhook into the cache unless it is there (about a minute with a warm Go module cache). */
export function buildUpstream(): string {
  if (existsSync(UPSTREAM_BINARY)) return UPSTREAM_BINARY;
  rmSync(join(CACHE, 'src'), { recursive: true, force: true });
  mkdirSync(join(CACHE, 'src'), { recursive: true });
  execFileSync('tar', ['xzf', TARBALL, '-C', join(CACHE, 'src')]);
  process.stderr.write('# building the upstream injector (go build ./cmd/webhook)\n');
  execFileSync('go', ['build', '-trimpath', '-o', UPSTREAM_BINARY, './cmd/webhook'], {
    cwd: join(CACHE, 'src', 'network-resources-injector'),
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
  });
  return UPSTREAM_BINARY;
}

export interface RunningUpstream {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/**
 * Upstream as its Deployment runs it: HTTPS with the given serving pair on a free port, a
 * service account allowed what upstream's ClusterRole allows (bound here to cluster-admin: a
 * benchmark, not an install), no client certificates asked for (-insecure).
 */
export async function startUpstream(cp: ControlPlane, tls: { cert: string; key: string }): Promise<RunningUpstream> {
  const binary = buildUpstream();
  await cp.kubectl(['create', 'serviceaccount', 'upstream-bench', '-n', 'default']);
  await cp.kubectl([
    'create',
    'clusterrolebinding',
    'upstream-bench',
    '--clusterrole=cluster-admin',
    '--serviceaccount=default:upstream-bench',
  ]);
  const token = (await cp.must(['create', 'token', 'upstream-bench', '-n', 'default', '--duration=2h'])).trim();
  const files = mkdtempSync(join(tmpdir(), 'nri-bench-upstream-'));
  writeFileSync(join(files, 'token'), token);
  writeFileSync(join(files, 'ca.crt'), cp.pki.caPem);
  writeFileSync(join(files, 'namespace'), 'default');
  const [port, healthPort] = [await freePort(), await freePort()];
  const dir = '/run/secrets/kubernetes.io/serviceaccount';
  const script = `mount -t tmpfs tmpfs /run && mkdir -p ${dir} && cp "$1"/token "$1"/ca.crt "$1"/namespace ${dir}/ && shift && exec "$@"`;
  const child = spawn(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      'sh',
      files,
      binary,
      `-port=${port}`,
      `-health-check-port=${healthPort}`,
      `-tls-cert-file=${tls.cert}`,
      `-tls-private-key-file=${tls.key}`,
      '-insecure',
      '-bind-address=127.0.0.1',
      '-logtostderr',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: String(cp.apiPort),
      },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
  child.once('exit', () => rmSync(files, { recursive: true, force: true }));
  const url = `https://127.0.0.1:${port}/mutate`;
  await cp.waitFor(
    'upstream injector serving',
    async () => {
      if (child.exitCode !== null) throw new Error(`upstream exited with ${child.exitCode}: ${stderr.slice(-600)}`);
      return fetch(`http://127.0.0.1:${healthPort}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    60000,
  );
  return {
    child,
    url,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Resident and peak resident memory of a process, in MiB, from /proc. */
export function residentMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** Waits until a process's resident memory has not grown by more than 1 MiB for `quietMs` (its informer's list is in), at most `limitMs`. */
export async function settled(pid: number, quietMs = 4000, limitMs = 180000): Promise<void> {
  const deadline = Date.now() + limitMs;
  let last = residentMiB(pid).rss;
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = residentMiB(pid).rss;
    if (now > last + 1) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
  }
}
