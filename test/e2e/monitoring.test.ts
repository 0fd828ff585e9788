// knative/monitoring/prometheusrule.yaml through Prometheus's own promtool
// (built from the Go module proxy by test/e2e/control-plane/build.sh): the
// rules pass `promtool check rules`, and `promtool test rules` runs the unit
// tests of test/e2e/monitoring/alerts.test.yaml against them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { repoRoot } from '../support/fixtures.js';
import { cacheDir } from './support/control-plane.js';

const promtool = join(cacheDir(), 'bin', 'promtool');
const missing = existsSync(promtool)
  ? undefined
  : `promtool is not built in ${cacheDir()} (run: bash test/e2e/control-plane/build.sh promtool)`;
if (missing && process.env.CI === 'true') throw new Error(`e2e: ${missing}`);

describe('the PrometheusRule, with promtool', { skip: missing ? `skipped: ${missing}` : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'nri-rules-'));
  const rule = parse(readFileSync(new URL('knative/monitoring/prometheusrule.yaml', repoRoot), 'utf8'));
  writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
  copyFileSync(new URL('test/e2e/monitoring/alerts.test.yaml', repoRoot), join(dir, 'alerts.test.yaml'));
  const run = (...args: string[]) =>
    execFileSync(promtool, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  it('promtool check rules', () => {
    assert.match(run('check', 'rules', 'rules.yaml'), /SUCCESS: 5 rules found/);
  });

  it('promtool test rules: every alert fires when it should and stays quiet when it should not', () => {
    assert.match(run('test', 'rules', 'alerts.test.yaml'), /SUCCESS/);
  });
});
