// Starting the function: the embedded default (no cluster), NRI_NADS, and bad
// settings that must stop startup with a message naming the variable.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { admissionReview, decodePatch, send, startFunction } from '../support/function-process.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';

describe('startup', () => {
  it('serves the example NADs when no cluster is configured, and says so', async () => {
    const fn = await startFunction({});
    try {
      const line = await fn.waitForLog(/nri starting without a cluster/);
      assert.match(line, /examples\/nads/);
      const pod = { metadata: { name: 'webhook-demo', namespace: 'default', annotations: { [NETWORKS]: 'foo-network, foo-network' } }, spec: { containers: [{ name: 'busybox', image: 'busybox' }] } };
      const result = await send(`${fn.url}/mutate`, { body: admissionReview(pod) });
      assert.equal(result.status, 200);
      assert.deepEqual(decodePatch(result)[0], { op: 'add', path: '/spec/containers/0/resources', value: { requests: { 'example.com/foo': '2' }, limits: { 'example.com/foo': '2' } } });
      const root = await send(`${fn.url}/`, { body: admissionReview(pod) });
      assert.equal(root.status, 200, 'POST / works as well as POST /mutate');
    } finally {
      await fn.stop();
    }
  });

  it('reads NADs from NRI_NADS (a JSON file here)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nri-nads-'));
    const file = join(dir, 'nads.json');
    writeFileSync(file, JSON.stringify({ kind: 'List', items: [{ kind: 'NetworkAttachmentDefinition', metadata: { name: 'mine', namespace: 'lab', annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'lab.example/vf' } } }] }));
    const fn = await startFunction({ NRI_NADS: file });
    try {
      const pod = { metadata: { name: 'p', namespace: 'lab', annotations: { [NETWORKS]: 'mine' } }, spec: { containers: [{ name: 'c' }] } };
      const ops = decodePatch(await send(`${fn.url}/mutate`, { body: admissionReview(pod, { namespace: 'lab' }) }));
      assert.equal(ops[0].value.limits['lab.example/vf'], '1');
    } finally {
      await fn.stop();
    }
  });

  const badSettings: Array<[Record<string, string>, RegExp]> = [
    [{ NRI_HONOR_RESOURCES: 'maybe' }, /NRI_HONOR_RESOURCES="maybe" must be true or false/],
    [{ NRI_INJECT_HUGEPAGE_DOWN_API: '2' }, /NRI_INJECT_HUGEPAGE_DOWN_API/],
    [{ NRI_RESOURCE_NAME_KEYS: 'good/key,bad key' }, /NRI_RESOURCE_NAME_KEYS: "bad key" is not an annotation key/],
    [{ NRI_EXCLUDE_NAMESPACES: 'kube-system,Bad_NS' }, /NRI_EXCLUDE_NAMESPACES/],
    [{ NRI_MULTUS_NAMESPACE: '../x' }, /NRI_MULTUS_NAMESPACE/],
    [{ NRI_NAMESPACE: 'UPPER' }, /NRI_NAMESPACE/],
    [{ NRI_CONTROL_SWITCHES_CONFIGMAP: 'a/b' }, /NRI_CONTROL_SWITCHES_CONFIGMAP/],
    [{ PORT: 'eighty' }, /PORT="eighty"/],
    [{ NRI_API_TIMEOUT_MS: '20000' }, /NRI_API_TIMEOUT_MS="20000" must be a whole number from 100 to 9000/],
    [{ NRI_NADS: '/nonexistent/nads' }, /NRI_NADS: cannot read \/nonexistent\/nads/],
    [{ NRI_TLS_CERT_FILE: '/x.crt' }, /NRI_TLS_KEY_FILE must be set together with NRI_TLS_CERT_FILE/],
    [{ NRI_TLS_MIN_VERSION: '1.1', NRI_TLS_CERT_FILE: '/x', NRI_TLS_KEY_FILE: '/y' }, /NRI_TLS_MIN_VERSION="1.1" must be 1.2 or 1.3/],
    [{ NRI_LOG_LEVEL: 'loud' }, /NRI_LOG_LEVEL/],
    [{ KUBECONFIG: '/nonexistent/kubeconfig' }, /KUBECONFIG: cannot load/],
  ];
  for (const [env, message] of badSettings) {
    it(`refuses to start on ${Object.keys(env).join(' + ')}=${Object.values(env).join(' + ')}`, async () => {
      const fn = await startFunction(env, { expectExit: true });
      const code = await fn.exited;
      assert.equal(code, 2);
      assert.match(fn.stderr.join(''), message);
    });
  }
});
