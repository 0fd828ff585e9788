// `nri check` as a user runs it (bin/nri), where no cluster answers: its usage, and exit 2
// ("could not check") with each check saying what it could not read. The checks against a real
// control plane are test/e2e/check.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../support/fixtures.js';
import { freePort } from '../support/function-process.js';

const nri = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(fileURLToPath(new URL('bin/nri', repoRoot)), args, {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: tmpdir(), ...env },
  });

describe('nri check (no cluster answering)', () => {
  it('prints its help with exit 0, and refuses a bad flag or a missing cluster with exit 2', () => {
    const help = nri(['check', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: nri check /);
    assert.match(help.stdout, /ClusterRole nri-check/);
    const bad = nri(['check', '-o', 'yaml']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^nri check: -o yaml: expected text or json\nRun "nri check --help" for usage\.\n$/);
    const alone = nri(['check']);
    assert.equal(alone.status, 2);
    assert.match(alone.stderr, /no cluster to check: set KUBECONFIG/);
  });

  it('exits 2 when the API server cannot be reached, each check saying what it could not read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nri-check-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${await freePort()}"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    const run = nri(['check', '-o', 'json'], { KUBECONFIG: kubeconfig, NRI_API_TIMEOUT_MS: '500' });
    assert.equal(run.status, 2, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.exitStatus, 2);
    assert.deepEqual(
      report.checks.map((check: any) => [check.name, check.status]),
      [
        ['webhook', 'unknown'],
        ['certificate', 'skip'],
        ['replicas', 'skip'],
        ['resources', 'unknown'],
        ['pods', 'skip'],
        ['injectors', 'unknown'],
      ],
    );
    assert.match(report.checks[0].summary, /could not be read: cannot reach the API server/);
    const text = nri(['check'], { KUBECONFIG: kubeconfig, NRI_API_TIMEOUT_MS: '500' });
    assert.equal(text.status, 2);
    assert.match(text.stdout, /^\[\?\? {2}\] webhook {5}MutatingWebhookConfiguration/m);
    assert.match(text.stdout, /^INCOMPLETE: 0 failed, 0 warnings, 3 could not check \(exit 2\)$/m);
  });
});
