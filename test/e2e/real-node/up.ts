// Brings the real-node environment up (run by up.sh inside its network namespace): the control
// plane, the node, the images in the local registry, cert-manager and Knative Serving, then nri
// built and installed with the README's own commands. Everything it starts outlives it; down.sh
// stops it. Writes <dir>/env: KUBECONFIG, NETNS and TEST_IMAGE lines.
import { execFile } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../../support/fixtures.js';
import { readmeCommand } from '../../support/readme.js';
import { ControlPlane } from '../support/control-plane.js';
import { installCrds } from '../support/deploy.js';
import { installKnativeCrds, startCertManager, startKnative } from '../support/knative.js';
import { NODE_IP, QUEUE_IMAGE, REGISTRY, RealNode, TEST_IMAGE, toLocalRegistry } from './node.js';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const sourceDir = join(fileURLToPath(repoRoot), 'test', 'e2e', 'real-node');

const log = (message: string) =>
  process.stderr.write(`[real-node ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Runs bash with the docker stand-in (buildah) first on PATH, in cwd. */
async function bash(script: string, cwd: string, env: Record<string, string> = {}): Promise<void> {
  await run('bash', ['-e', '-o', 'pipefail', '-c', script], {
    cwd,
    timeout: 600000,
    maxBuffer: 64 << 20,
    env: { ...process.env, PATH: `${sourceDir}:${process.env.PATH}`, ...env },
  });
}

async function main(): Promise<void> {
  const dir = process.env.NRI_REAL_NODE_DIR;
  const netns = process.env.NRI_NETNS;
  if (!dir || !netns)
    throw new Error('up.js is run by test/e2e/real-node/up.sh (NRI_REAL_NODE_DIR and NRI_NETNS unset)');
  const started = Date.now();
  const cp = new ControlPlane({ dir, detached: true, nodeIp: NODE_IP, apiPort: 6443, kwok: false });
  await cp.start();
  log('control plane up');
  const node = new RealNode(cp);
  await node.startRegistry();
  for (const image of ['nri-e2e/pause:1', 'nri-e2e/busybox:1', 'nri-e2e/queue-proxy:v0.42.2']) {
    await bash(`docker push ${image} ${REGISTRY}/${image}`, dir);
  }
  await node.start();
  log('node Ready');
  // The README's build-and-push block, as written, for the local registry.
  await bash(toLocalRegistry(readmeCommand('build')), fileURLToPath(repoRoot));
  log('nri image built from knative/Dockerfile and pushed');

  await installCrds(cp);
  await installKnativeCrds(cp);
  await startCertManager(cp);
  await startKnative(cp, [], QUEUE_IMAGE);
  // Knative's networking layer stays out: kube-apiserver calls nri through its own Service.
  cp.spawn('ingress-layer', process.execPath, [join(here, 'ingress-layer.js')], { NRI_REAL_NODE_DIR: dir });

  // The README's install block, as written, for the local registry.
  const installDir = mkdtempSync(join(tmpdir(), 'nri-real-node-install-'));
  symlinkSync(fileURLToPath(new URL('knative', repoRoot)), join(installDir, 'knative'));
  await bash(toLocalRegistry(readmeCommand('install')), installDir, { KUBECONFIG: cp.adminKubeconfig });
  log('nri installed');
  await cp.waitFor(
    'the webhook Service to have two ready endpoints',
    async () => {
      const slices = await cp.getJson(['endpointslices', '-n', 'nri', '-l', 'kubernetes.io/service-name=nri-webhook']);
      return (
        slices.items.flatMap((slice: any) => slice.endpoints ?? []).filter((e: any) => e.conditions?.ready).length >= 2
      );
    },
    180000,
  );

  const env = `KUBECONFIG=${cp.adminKubeconfig}\nNETNS=${netns}\nTEST_IMAGE=${TEST_IMAGE}\n`;
  writeFileSync(join(dir, 'env'), env);
  log(`up in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(env);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`real-node up failed: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  },
);
