// Pod creations through kube-apiserver, as a stream, for the real-node suites: server-side dry
// runs, admitted exactly as real ones (nri is called, its patch applied) with nothing stored, so a
// stream can run as long as a disruption or a burst does. Each outcome says whether the pod came
// back with its resource injected.
import { request } from 'node:https';
import type { ControlPlane } from '../support/control-plane.js';

export interface Outcome {
  at: number;
  ms: number;
  ok: boolean;
  detail: string;
}

export interface StreamOptions {
  /** creations in flight at once */
  workers: number;
  /** pause of each worker between its creations */
  pauseMs: number;
  /** the n-th pod to create */
  pod: (n: number) => Record<string, unknown>;
  /** the resource each created pod must come back with, on its first container */
  resource: string;
}

/** Creations until stop(), which returns every outcome. */
export function creationStream(cp: ControlPlane, options: StreamOptions): { stop: () => Promise<Outcome[]> } {
  const agent = cp.adminAgent(options.workers);
  const outcomes: Outcome[] = [];
  let stopped = false;
  let n = 0;
  const create = () =>
    new Promise<Outcome>((resolve) => {
      const pod = options.pod(n++);
      const namespace = (pod.metadata as { namespace: string }).namespace;
      const at = Date.now();
      const done = (ok: boolean, detail: string) => resolve({ at, ms: Date.now() - at, ok, detail });
      const req = request(
        `${cp.server}/api/v1/namespaces/${namespace}/pods?dryRun=All`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const injected =
              res.statusCode === 201 &&
              JSON.parse(text).spec.containers[0].resources?.requests?.[options.resource] !== undefined;
            done(injected, injected ? '' : `${res.statusCode} ${text.slice(0, 300)}`);
          });
        },
      );
      req.setTimeout(30000, () => req.destroy(new Error('no answer in 30 s')));
      req.on('error', (error) => done(false, String(error)));
      req.end(JSON.stringify(pod));
    });
  const worker = async () => {
    while (!stopped) {
      outcomes.push(await create());
      if (options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  const workers = Array.from({ length: options.workers }, worker);
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      agent.destroy();
      return outcomes;
    },
  };
}
