// Starting the function: the embedded default (no cluster), NRI_NADS, and bad
// settings that must stop startup with a message naming the variable.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { admissionReview, decodePatch, freePort, send, startFunction } from '../support/function-process.js';
import { metricValue } from '../support/metrics.js';
import { repoRoot } from '../support/fixtures.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';

describe('startup', () => {
  it('serves the example NADs when no cluster is configured, and says so', async () => {
    const fn = await startFunction({});
    try {
      const line = await fn.waitForLog(/nri starting without a cluster/);
      assert.match(line, /examples\/nads/);
      const pod = {
        metadata: {
          name: 'webhook-demo',
          namespace: 'default',
          annotations: { [NETWORKS]: 'foo-network, foo-network' },
        },
        spec: { containers: [{ name: 'busybox', image: 'busybox' }] },
      };
      const result = await send(`${fn.url}/mutate`, { body: admissionReview(pod) });
      assert.equal(result.status, 200);
      assert.deepEqual(decodePatch(result)[0], {
        op: 'add',
        path: '/spec/containers/0/resources',
        value: { requests: { 'example.com/foo': '2' }, limits: { 'example.com/foo': '2' } },
      });
      const root = await send(`${fn.url}/`, { body: admissionReview(pod) });
      assert.equal(root.status, 200, 'POST / works as well as POST /mutate');
    } finally {
      await fn.stop();
    }
  });

  it("ignores a ~/.kube/config: only KUBECONFIG or the pod's service account choose a cluster", async () => {
    const home = mkdtempSync(join(tmpdir(), 'nri-home-kube-'));
    mkdirSync(join(home, '.kube'));
    // A kubeconfig most users have, here pointing at a cluster that cannot be reached.
    writeFileSync(
      join(home, '.kube', 'config'),
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const fn = await startFunction({ HOME: home });
    try {
      const line = await fn.waitForLog(/nri starting/);
      assert.match(line, /nri starting without a cluster/);
      assert.match(line, /"clusterConfig":"none"/);
      const pod = {
        metadata: {
          name: 'webhook-demo',
          namespace: 'default',
          annotations: { [NETWORKS]: 'foo-network, foo-network' },
        },
        spec: { containers: [{ name: 'busybox' }] },
      };
      assert.equal(
        decodePatch(await send(`${fn.url}/mutate`, { body: admissionReview(pod) }))[0].value.limits['example.com/foo'],
        '2',
      );
      assert.equal((await send(`${fn.url}/readyz`)).status, 200);
    } finally {
      await fn.stop();
    }
  });

  it('names the cluster it was told to use, and is not ready while its NAD cache cannot sync', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nri-kubeconfig-'));
    const kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const fn = await startFunction({ KUBECONFIG: kubeconfig, NRI_NAMESPACE: 'nri', NRI_WATCH_TIMEOUT_SECONDS: '2' });
    try {
      const line = await fn.waitForLog(/nri starting/);
      assert.match(line, /nri starting with NADs from the cluster/);
      assert.ok(line.includes(`"clusterConfig":"KUBECONFIG=${kubeconfig}"`), line);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const ready = await send(`${fn.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.json.message, /NetworkAttachmentDefinition cache has not synced yet/);
      assert.equal(metricValue((await send(`${fn.url}/metrics`)).text, 'nri_nad_cache_synced'), 0);
    } finally {
      await fn.stop();
    }
  });

  it('writes nothing but its JSON log lines: no runtime warning on stderr, with a cluster or without', async () => {
    const pki = createPki();
    const api = new FakeApiServer(pki);
    await api.start();
    const withCluster = await startFunction({ KUBECONFIG: api.kubeconfigPath });
    const withoutCluster = await startFunction({});
    try {
      await withCluster.waitForLog(/NAD watch cache synced/);
      await withoutCluster.waitForLog(/nri starting/);
      // A deprecation warning from a dependency (client-node 1.x's punycode on Node 26) would land here.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(withCluster.stderr.join(''), '');
      assert.equal(withoutCluster.stderr.join(''), '');
      for (const line of [...withCluster.logs, ...withoutCluster.logs])
        assert.doesNotThrow(() => JSON.parse(line), line);
    } finally {
      await Promise.all([withCluster.stop(), withoutCluster.stop()]);
      await api.stop();
    }
  });

  it('with NADs from files, the NAD metrics describe the files', async () => {
    const fn = await startFunction({});
    try {
      const text = (await send(`${fn.url}/metrics`)).text;
      assert.equal(metricValue(text, 'nri_nad_cache_synced'), 1);
      assert.equal(metricValue(text, 'nri_nad_cache_objects'), 4);
      const pod = {
        metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: 'foo-network, foo-network, nope' } },
        spec: { containers: [{ name: 'c' }] },
      };
      await send(`${fn.url}/mutate`, { body: admissionReview(pod) });
      assert.equal(
        metricValue((await send(`${fn.url}/metrics`)).text, 'nri_nad_cache_hits_total'),
        2,
        'each distinct NAD looked up once, from memory',
      );
    } finally {
      await fn.stop();
    }
  });

  it('allows a DELETE review as kube-apiserver sends it (object null, oldObject set) untouched', async () => {
    const fn = await startFunction({});
    try {
      const old = {
        metadata: { name: 'p', namespace: 'default', annotations: { [NETWORKS]: 'foo-network' } },
        spec: { containers: [{ name: 'c' }] },
      };
      for (const [operation, extra] of [
        ['DELETE', { object: null, oldObject: old }],
        ['CONNECT', {}],
        ['UPDATE', { object: null, oldObject: null }],
      ] as const) {
        const body = JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: `u-${operation}`,
            kind: { group: '', version: 'v1', kind: 'Pod' },
            namespace: 'default',
            operation,
            ...extra,
          },
        });
        const result = await send(`${fn.url}/mutate`, { body });
        assert.equal(result.status, 200, `${operation}: ${result.text}`);
        assert.deepEqual(result.json.response, { uid: `u-${operation}`, allowed: true });
      }
      const noPod = await send(`${fn.url}/mutate`, {
        body: JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: { uid: 'c', kind: { kind: 'Pod' }, operation: 'CREATE', object: null },
        }),
      });
      assert.equal(noPod.status, 400, 'a CREATE still needs its pod');
    } finally {
      await fn.stop();
    }
  });

  it('reads NADs from NRI_NADS (a JSON file here)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nri-nads-'));
    const file = join(dir, 'nads.json');
    writeFileSync(
      file,
      JSON.stringify({
        kind: 'List',
        items: [
          {
            kind: 'NetworkAttachmentDefinition',
            metadata: {
              name: 'mine',
              namespace: 'lab',
              annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'lab.example/vf' },
            },
          },
        ],
      }),
    );
    const fn = await startFunction({ NRI_NADS: file });
    try {
      const pod = {
        metadata: { name: 'p', namespace: 'lab', annotations: { [NETWORKS]: 'mine' } },
        spec: { containers: [{ name: 'c' }] },
      };
      const ops = decodePatch(await send(`${fn.url}/mutate`, { body: admissionReview(pod, { namespace: 'lab' }) }));
      assert.equal(ops[0].value.limits['lab.example/vf'], '1');
    } finally {
      await fn.stop();
    }
  });

  const badSettings: Array<[Record<string, string>, RegExp]> = [
    [{ NRI_HONOR_RESOURCES: 'maybe' }, /NRI_HONOR_RESOURCES="maybe" must be true or false/],
    [{ NRI_HONOR_RESOURCES: 'yes' }, /NRI_HONOR_RESOURCES="yes" must be true or false/],
    [{ NRI_HONOR_RESOURCES: '1' }, /NRI_HONOR_RESOURCES="1" must be true or false/],
    [{ NRI_INJECT_HUGEPAGE_DOWN_API: 'on' }, /NRI_INJECT_HUGEPAGE_DOWN_API="on" must be true or false/],
    // TLS variables are checked even when no certificate is set.
    [{ NRI_TLS_PORT: '99999' }, /NRI_TLS_PORT="99999" must be a whole number from 0 to 65535/],
    [{ NRI_TLS_MIN_VERSION: '1.1' }, /NRI_TLS_MIN_VERSION="1.1" must be 1.2 or 1.3/],
    [{ NRI_TLS_CIPHERS: 'NOPE' }, /^nri: NRI_TLS_CIPHERS="NOPE" is not a cipher list OpenSSL accepts/],
    [{ NRI_INJECT_HUGEPAGE_DOWN_API: '2' }, /NRI_INJECT_HUGEPAGE_DOWN_API/],
    [{ NRI_RESOURCE_NAME_KEYS: 'good/key,bad key' }, /NRI_RESOURCE_NAME_KEYS: "bad key" is not an annotation key/],
    [{ NRI_EXCLUDE_NAMESPACES: 'kube-system,Bad_NS' }, /NRI_EXCLUDE_NAMESPACES/],
    [{ NRI_MULTUS_NAMESPACE: '../x' }, /NRI_MULTUS_NAMESPACE/],
    [{ NRI_NAMESPACE: 'UPPER' }, /NRI_NAMESPACE/],
    [{ NRI_CONTROL_SWITCHES_CONFIGMAP: 'a/b' }, /NRI_CONTROL_SWITCHES_CONFIGMAP/],
    // the same rule as every other name: DNS-1123 labels joined by single dots
    [{ NRI_CONTROL_SWITCHES_CONFIGMAP: 'a..b' }, /NRI_CONTROL_SWITCHES_CONFIGMAP="a..b" must be a ConfigMap name/],
    [{ NRI_CONTROL_SWITCHES_CONFIGMAP: 'a.-b' }, /NRI_CONTROL_SWITCHES_CONFIGMAP="a.-b" must be a ConfigMap name/],
    [{ PORT: 'eighty' }, /PORT="eighty"/],
    [{ NRI_API_TIMEOUT_MS: '20000' }, /NRI_API_TIMEOUT_MS="20000" must be a whole number from 100 to 9000/],
    [{ NRI_NADS: '/nonexistent/nads' }, /NRI_NADS: cannot read \/nonexistent\/nads/],
    [{ NRI_TLS_CERT_FILE: '/x.crt' }, /NRI_TLS_KEY_FILE must be set together with NRI_TLS_CERT_FILE/],
    [
      { NRI_TLS_MIN_VERSION: '1.1', NRI_TLS_CERT_FILE: '/x', NRI_TLS_KEY_FILE: '/y' },
      /NRI_TLS_MIN_VERSION="1.1" must be 1.2 or 1.3/,
    ],
    [{ NRI_LOG_LEVEL: 'loud' }, /NRI_LOG_LEVEL/],
    [
      { NRI_RESOURCE_NAME_KEYS: '' },
      /NRI_RESOURCE_NAME_KEYS is set but empty: unset it for the default \(k8s.v1.cni.cncf.io\/resourceName\), or name at least one annotation key/,
    ],
    [{ NRI_EXCLUDE_NAMESPACES: ' ' }, /NRI_EXCLUDE_NAMESPACES is set but empty/],
    [{ KUBECONFIG: '/nonexistent/kubeconfig' }, /KUBECONFIG: cannot load/],
  ];
  const pki = createPki();
  badSettings.push(
    [
      { NRI_TLS_CERT_FILE: pki.serverCert, NRI_TLS_KEY_FILE: pki.serverKey, NRI_TLS_CIPHERS: 'NOPE' },
      /^nri: NRI_TLS_CIPHERS="NOPE"/,
    ],
    [
      { NRI_TLS_CERT_FILE: pki.serverCert, NRI_TLS_KEY_FILE: pki.serverKey, NRI_TLS_CLIENT_CA_FILE: '/nonexistent' },
      /^nri: NRI_TLS_CLIENT_CA_FILE: cannot read \/nonexistent/,
    ],
    [
      { NRI_TLS_CERT_FILE: '/nonexistent.crt', NRI_TLS_KEY_FILE: pki.serverKey },
      /^nri: NRI_TLS_CERT_FILE: cannot read \/nonexistent\.crt/,
    ],
    [
      { NRI_TLS_CERT_FILE: pki.serverCert, NRI_TLS_KEY_FILE: '/nonexistent.key' },
      /^nri: NRI_TLS_KEY_FILE: cannot read \/nonexistent\.key/,
    ],
  );
  for (const [env, message] of badSettings) {
    it(`refuses to start on ${Object.keys(env).join(' + ')}=${Object.values(env).join(' + ')}`, async () => {
      const fn = await startFunction(env, { expectExit: true });
      const code = await fn.exited;
      assert.equal(code, 2);
      assert.match(fn.stderr.join(''), message);
    });
  }

  it('refuses a port in use naming the setting that chose it (PORT) and what to do', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const fn = await startFunction({ PORT: String(port) }, { expectExit: true });
      assert.equal(await fn.exited, 2);
      assert.match(
        fn.stderr.join(''),
        new RegExp(`^nri: cannot listen: port ${port} \\(PORT\\) is already in use: set PORT to a free port`),
      );
    } finally {
      taken.close();
    }
  });

  describe('started as webhook, with upstream flags', () => {
    const webhookJs = fileURLToPath(new URL('build/dist/webhook.js', repoRoot));
    const examples = fileURLToPath(new URL('examples/nads', repoRoot));
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [webhookJs, '-insecure=true', ...args], {
        encoding: 'utf8',
        timeout: 15000,
        cwd: tmpdir(), // not a checkout: nothing relative resolves by luck
        env: { PATH: process.env.PATH, ...env },
      });

    it('names the flag the user typed in a startup error, not the variable it sets', () => {
      const result = run(['-tls-cert-file=/nonexistent/tls.crt', '-tls-private-key-file=/nonexistent/tls.key'], {
        NRI_NADS: examples,
      });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /^nri: -tls-cert-file\/-tls-private-key-file: |^nri: -tls-cert-file: /);
      assert.doesNotMatch(result.stderr, /NRI_TLS_/);
    });

    it('names -port when its port is taken', async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, resolve));
      try {
        const pki = createPki();
        const port = (taken.address() as AddressInfo).port;
        const result = run(
          [
            `-port=${port}`,
            `-tls-cert-file=${pki.serverCert}`,
            `-tls-private-key-file=${pki.serverKey}`,
            `-health-check-port=${await freePort()}`,
          ],
          { NRI_NADS: examples },
        );
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, new RegExp(`port ${port} \\(-port\\) is already in use: set -port to a free port`));
      } finally {
        taken.close();
      }
    });

    it('outside a cluster and a checkout, says what it looked for instead of a relative default never set', () => {
      const result = run(['-tls-cert-file=/nonexistent/tls.crt', '-tls-private-key-file=/nonexistent/tls.key']);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /no cluster to read NetworkAttachmentDefinitions from \(KUBECONFIG is unset/);
      assert.match(result.stderr, /set KUBECONFIG, or NRI_NADS to a file or folder of NADs/);
      assert.doesNotMatch(result.stderr, /cannot read examples\/nads/);
    });

    it('says its health port serves probes and metrics, not reviews', async () => {
      const pki = createPki();
      const child = spawn(
        process.execPath,
        [
          webhookJs,
          '-insecure=true',
          `-port=${await freePort()}`,
          `-health-check-port=${await freePort()}`,
          `-tls-cert-file=${pki.serverCert}`,
          `-tls-private-key-file=${pki.serverKey}`,
        ],
        { cwd: tmpdir(), env: { PATH: process.env.PATH, NRI_NADS: examples }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      try {
        let out = '';
        child.stdout.setEncoding('utf8');
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 15000);
          child.stdout.on('data', (chunk: string) => {
            out += chunk;
            if (/HTTPS webhook listening/.test(out)) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        assert.match(out, /"msg":"HTTP \(probes, metrics\) listening"/);
        assert.doesNotMatch(out, /HTTP \(reviews/);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });

  // The machine's own Node, when it is older than nri's (this machine and CI have Node 20 on PATH behind npm's).
  const olderNode = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes('node_modules'))
    .map((dir) => join(dir, 'node'))
    .find(
      (file) =>
        existsSync(file) &&
        Number(/^v(\d+)/.exec(spawnSync(file, ['--version'], { encoding: 'utf8' }).stdout)?.[1]) < 26,
    );
  it('refuses to start on an older Node, saying which it needs and how to get it', {
    skip: olderNode ? false : 'no Node older than 26 on PATH',
  }, () => {
    for (const entry of ['main.js', 'nri.js', 'webhook.js']) {
      const result = spawnSync(
        olderNode!,
        [fileURLToPath(new URL(`build/dist/${entry}`, repoRoot)), 'explain', '-f', '-'],
        { encoding: 'utf8', input: '', timeout: 10000, env: { PATH: process.env.PATH, KUBECONFIG: '/nonexistent' } },
      );
      assert.equal(result.status, 2, `${entry}: ${result.stderr}`);
      assert.match(result.stderr, /^(nri|webhook): nri runs on Node\.js 26 or newer; this is Node\.js 2\d\./, entry);
    }
  });
});
