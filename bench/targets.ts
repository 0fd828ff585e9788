// What the benchmark runs: our function, an empty functions-framework
// function, and a bare node:https server, each as its own process.
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));

export interface Target {
  name: string;
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/**
 * Output goes to /dev/null, as a container runtime would take it: a log pipe
 * read by the benchmark process would steal CPU from the load generator.
 */
export function spawnProcess(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, args, { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: root, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
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
    const req = requester(url, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Milliseconds from spawning the process to its first answered review. */
export async function timeToFirstReview(start: () => ChildProcess, url: string, body: string, ca?: string): Promise<number> {
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
