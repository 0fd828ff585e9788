// Runs the built function (build/dist/main.js: the same bundle `npm start` runs
// from dist/, made by `npm run build` into its own folder) as a child
// process, and talks to it over real HTTP and HTTPS.
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { connect as connectTcp, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './fixtures.js';

export interface RunningFunction {
  child: ChildProcess;
  port: number;
  tlsPort?: number;
  logs: string[];
  stderr: string[];
  url: string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export const MAIN = fileURLToPath(new URL('build/dist/main.js', repoRoot));

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface StartOptions {
  expectExit?: boolean;
  /** Node flags to run the bundle with (the container's command passes its own) */
  nodeFlags?: string[];
  /** run as this user and group, as a container's securityContext does */
  uid?: number;
  gid?: number;
}

export async function startFunction(
  env: Record<string, string | undefined>,
  options: StartOptions = {},
): Promise<RunningFunction> {
  const home = mkdtempSync(join(tmpdir(), 'nri-home-'));
  const port = options.expectExit ? 0 : await freePort();
  if (env.NRI_TLS_CERT_FILE && env.NRI_TLS_PORT === '0') env = { ...env, NRI_TLS_PORT: String(await freePort()) };
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), MAIN], {
    cwd: fileURLToPath(repoRoot),
    env: { PATH: process.env.PATH, HOME: home, PORT: String(port), NRI_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  const logs: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  let buffer = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  let stopping = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      if (!stopping && !options.expectExit) {
        process.stderr.write(
          `function exited unexpectedly (code ${code}, signal ${signal}):\n${logs.slice(-10).join('\n')}\n${stderr.join('')}\n`,
        );
      }
      resolve(code);
    }),
  );

  const waitForLog = (pattern: RegExp, timeoutMs = 10000) => {
    const seen = logs.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no log line matching ${pattern} within ${timeoutMs} ms; logs:\n${logs.slice(-20).join('\n')}\nstderr: ${stderr.join('')}`,
            ),
          ),
        timeoutMs,
      );
      waiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  if (options.expectExit) {
    return { child, port: 0, logs, stderr, url: '', waitForLog, stop, exited };
  }
  // Ready when /healthz answers (and the TLS port accepts), whatever the log level.
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  const tlsPort = env.NRI_TLS_CERT_FILE ? Number(env.NRI_TLS_PORT ?? 8443) : undefined;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`function exited with ${child.exitCode}: ${stderr.join('')}`);
    const healthy = await send(`${url}/healthz`, { timeoutMs: 1000 }).then(
      (r) => r.status === 200,
      () => false,
    );
    const tlsUp = tlsPort === undefined || (await canConnect(tlsPort));
    if (healthy && tlsUp) break;
    if (Date.now() > deadline)
      throw new Error(
        `function did not become healthy; logs:\n${logs.slice(-20).join('\n')}\nstderr: ${stderr.join('')}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const running: RunningFunction = { child, port, logs, stderr, url, waitForLog, stop, exited };
  if (tlsPort !== undefined) running.tlsPort = tlsPort;
  return running;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export function send(
  url: string,
  options: {
    method?: string;
    body?: string | Buffer;
    /** `undefined` leaves a header out, the default Content-Type too */
    headers?: Record<string, string | number | undefined>;
    tls?: RequestOptions;
    timeoutMs?: number;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const requester = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = requester(
      target,
      {
        method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
        headers: Object.fromEntries(
          Object.entries({
            ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...options.headers,
          }).filter(([, value]) => value !== undefined),
        ) as Record<string, string | number>,
        agent: false,
        ...options.tls,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 15000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

export function admissionReview(object: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${Math.random().toString(16).slice(2)}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'default',
      operation: 'CREATE',
      object,
      ...extra,
    },
  });
}

export function decodePatch(result: HttpResult): any[] {
  const patch = result.json?.response?.patch;
  return patch ? JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) : [];
}

export async function eventually<T>(
  probe: () => Promise<T> | T,
  check: (value: T) => boolean,
  timeoutMs = 10000,
  stepMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!check(last)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
    last = await probe();
  }
  return last;
}
