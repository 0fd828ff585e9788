// The monitoring shipped in knative/monitoring/: every query of the
// PrometheusRule and the Grafana dashboard names only metrics nri exports (read
// from a running nri's /metrics, TLS on) or kube-apiserver's own. promtool checks
// and unit-tests the rules in test/e2e/monitoring.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { createPki } from '../support/certs.js';
import { repoRoot } from '../support/fixtures.js';
import { send, startFunction, type RunningFunction } from '../support/function-process.js';

const rules = parse(readFileSync(new URL('knative/monitoring/prometheusrule.yaml', repoRoot), 'utf8'));
const dashboard = JSON.parse(readFileSync(new URL('knative/monitoring/grafana-dashboard.json', repoRoot), 'utf8'));
const ruleExprs: string[] = rules.spec.groups.flatMap((group: { rules: Array<{ expr: string }> }) =>
  group.rules.map((rule) => rule.expr),
);
const dashboardExprs: string[] = dashboard.panels.flatMap((panel: { targets: Array<{ expr: string }> }) =>
  panel.targets.map((target) => target.expr),
);

/** The metric names an expression reads (ours and the process's; kube-apiserver's are its own). */
const metricsIn = (expr: string) =>
  [...expr.matchAll(/\b(?:nri|process|nodejs)_[a-z0-9_]+\b/g)].map((match) => match[0]);

describe('knative/monitoring', () => {
  let fn: RunningFunction;
  let exported: Set<string>;
  before(async () => {
    const pki = createPki();
    fn = await startFunction({ NRI_TLS_CERT_FILE: pki.serverCert, NRI_TLS_KEY_FILE: pki.serverKey, NRI_TLS_PORT: '0' });
    const text = (await send(`${fn.url}/metrics`)).text;
    exported = new Set();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(name!);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${name}${suffix}`);
    }
  });
  after(() => fn?.stop());

  it('alerts on what the README recommends: denials, an unsynced cache, failing watches, certificate expiry with TLS on, replicas not ready', () => {
    const names = rules.spec.groups.flatMap((group: { rules: Array<{ alert: string }> }) =>
      group.rules.map((rule) => rule.alert),
    );
    assert.deepEqual(names, [
      'NriDenialRateHigh',
      'NriNadCacheNotSynced',
      'NriWatchRestarting',
      'NriCertificateExpiresSoon',
      'NriReplicasNotReady',
    ]);
    assert.match(
      ruleExprs[3]!,
      /nri_serving_certificate_expiry_timestamp_seconds > 0/,
      'no alert where TLS is off (the gauge reads 0)',
    );
  });

  it('every query of the rules and of the dashboard reads metrics nri exports', () => {
    assert.ok(
      exported.has('nri_admission_reviews_total') && exported.has('nri_serving_certificate_expiry_timestamp_seconds'),
    );
    assert.ok(dashboardExprs.length >= 10);
    for (const expr of [...ruleExprs, ...dashboardExprs]) {
      const read = metricsIn(expr);
      assert.ok(
        read.length > 0 || expr.includes('apiserver_admission_webhook_admission_duration_seconds'),
        `reads no metric: ${expr}`,
      );
      for (const name of read) assert.ok(exported.has(name), `${name} (in ${expr}) is not exported by nri`);
    }
  });

  it('is a Grafana dashboard with a Prometheus data source picked at import and a namespace to choose', () => {
    assert.equal(dashboard.templating.list[0].type, 'datasource');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a template literal
    for (const panel of dashboard.panels) assert.equal(panel.datasource.uid, '${datasource}', panel.title);
    assert.equal(
      new Set(dashboard.panels.map((panel: { id: number }) => panel.id)).size,
      dashboard.panels.length,
      'panel ids are unique',
    );
  });
});
