// A suite's nri against the fake API server: started once its server is seeded, used once
// its NAD cache has synced, both stopped after the suite.
import { after, before } from 'node:test';
import type { FakeApiServer } from './fake-apiserver.js';
import { startFunction, type RunningFunction } from './function-process.js';

/**
 * For the suite it is called in: `api` seeded by `seed`, and nri against it (short API and
 * watch timeouts unless `env` says otherwise), handed to `started` before its cache syncs.
 */
export function syncedAgainst(
  api: FakeApiServer,
  seed: () => void,
  started: (fn: RunningFunction) => void,
  env: Record<string, string> = {},
): void {
  let fn: RunningFunction | undefined;
  before(async () => {
    await api.start();
    seed();
    fn = await startFunction({
      KUBECONFIG: api.kubeconfigPath,
      NRI_API_TIMEOUT_MS: '500',
      NRI_WATCH_TIMEOUT_SECONDS: '2',
      ...env,
    });
    started(fn);
    await fn.waitForLog(/NAD watch cache synced/);
  });
  after(async () => {
    await fn?.stop();
    await api.stop();
  });
}
