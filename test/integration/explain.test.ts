// `nri explain` as a user runs it (bin/nri, a child process): every example,
// a Deployment and a CronJob from standard input, NADs from files or from a
// cluster (the fake API server), and bad input.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { repoRoot } from '../support/fixtures.js';

const root = fileURLToPath(repoRoot);
const nri = (args: string[], options: { input?: string; env?: Record<string, string> } = {}) => {
  const result = spawnSync(fileURLToPath(new URL('bin/nri', repoRoot)), args, {
    cwd: root,
    input: options.input ?? '',
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: root, ...options.env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: dpdk
  namespace: default
spec:
  replicas: 2
  selector: { matchLabels: { app: dpdk } }
  template:
    metadata:
      labels: { app: dpdk }
      annotations: { k8s.v1.cni.cncf.io/networks: "foo-network, foo-network" }
    spec:
      containers:
        - { name: testpmd, image: registry.example.com/dpdk:1 }
`;

describe('nri explain', () => {
  const examples = readdirSync(new URL('examples/reviews/', repoRoot)).filter(
    (name) => name.endsWith('.json') && !name.endsWith('.expected.json'),
  );

  for (const name of examples) {
    it(`examples/reviews/${name}: -o patch is the example's expected answer, and the exit status says allowed or denied`, () => {
      const expected = JSON.parse(
        readFileSync(new URL(`examples/reviews/${name.replace('.json', '.expected.json')}`, repoRoot), 'utf8'),
      );
      const result = nri(['explain', '-f', `examples/reviews/${name}`, '--nads', 'examples/nads', '-o', 'patch'], {
        env: expected.env ?? {},
      });
      if (expected.allowed) {
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(JSON.parse(result.stdout), expected.patch ?? []);
      } else {
        assert.equal(result.status, 1);
        assert.equal(result.stderr, `denied: ${expected.status.message}\n`);
      }
      const summary = nri(['explain', '-f', `examples/reviews/${name}`, '--nads', 'examples/nads'], {
        env: expected.env ?? {},
      });
      assert.match(summary.stdout, expected.allowed ? /^Result: +(patched|allowed)/m : /^Result: +DENIED: /m);
    });
  }

  it('the summary lists every file and variable it adds, as it lists resources: hugepage files and CONTAINER_NAME', () => {
    const summary = nri(['explain', '-f', 'examples/reviews/sriov-hugepages.json', '--nads', 'examples/nads'], {
      env: { NRI_INJECT_HUGEPAGE_DOWN_API: 'true' },
    });
    assert.match(
      summary.stdout,
      /^Files: +\/etc\/podnetinfo\/: labels, annotations, hugepages_1G_request_testpmd, hugepages_1G_limit_testpmd$/m,
    );
    assert.match(summary.stdout, /^Environment: +CONTAINER_NAME in "testpmd"$/m);
    const without = nri(['explain', '-f', 'examples/reviews/one-network.json', '--nads', 'examples/nads']);
    assert.match(without.stdout, /^Files: +\/etc\/podnetinfo\/: annotations$/m);
    assert.match(without.stdout, /^Environment: +—$/m);
  });

  it('works in a checkout just after npm ci, before any bundle exists: bin/nri makes it', () => {
    const checkout = mkdtempSync(join(tmpdir(), 'nri-checkout-'));
    try {
      for (const part of ['bin', 'scripts', 'schemas', 'functions', 'examples', 'package.json'])
        cpSync(join(root, part), join(checkout, part), { recursive: true });
      rmSync(join(checkout, 'functions/validation/generated'), { recursive: true, force: true });
      symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'));
      const result = spawnSync(
        join(checkout, 'bin/nri'),
        ['explain', '-f', 'examples/reviews/one-network.json', '--nads', 'examples/nads'],
        { cwd: checkout, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: checkout } },
      );
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /^Result: +patched/m);
      assert.ok(existsSync(join(checkout, 'dist/nri.js')));
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });

  it('a Deployment from standard input: the summary names its pod, -o yaml is the Deployment with its template patched in place', () => {
    const summary = nri(['explain', '-f', '-', '--nads', 'examples/nads'], { input: DEPLOYMENT });
    assert.equal(summary.status, 0, summary.stderr);
    assert.match(summary.stdout, /^Deployment default\/dpdk \(its pod\)$/m);
    assert.match(summary.stdout, /^NADs: +default\/foo-network \(2 references\)$/m);
    assert.match(summary.stdout, /^Resources: +example\.com\/foo=2 in container "testpmd"$/m);
    assert.match(summary.stdout, /^Volumes: +podnetinfo \(Downward API\) mounted at \/etc\/podnetinfo in "testpmd"$/m);
    const stored = parse(
      nri(['explain', '-f', '-', '--nads', 'examples/nads', '-o', 'yaml'], { input: DEPLOYMENT }).stdout,
    );
    assert.equal(stored.kind, 'Deployment');
    assert.equal(stored.spec.replicas, 2);
    assert.deepEqual(stored.spec.template.spec.containers[0].resources, {
      requests: { 'example.com/foo': '2' },
      limits: { 'example.com/foo': '2' },
    });
    assert.equal(stored.spec.template.metadata.namespace, undefined, 'a template carries no namespace');
    assert.ok(stored.spec.template.spec.volumes.some((volume: { name: string }) => volume.name === 'podnetinfo'));
  });

  it("a CronJob as JSON: its job template's pod", () => {
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'nightly', namespace: 'default' },
      spec: {
        schedule: '@daily',
        jobTemplate: {
          spec: {
            template: {
              metadata: { annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net-a' } },
              spec: { restartPolicy: 'Never', containers: [{ name: 'job', image: 'busybox' }] },
            },
          },
        },
      },
    };
    const result = nri(['explain', '-f', '-', '--nads', 'examples/nads', '-o', 'json'], {
      input: JSON.stringify(cron),
    });
    assert.equal(result.status, 0, result.stderr);
    const stored = JSON.parse(result.stdout);
    assert.deepEqual(stored.spec.jobTemplate.spec.template.spec.containers[0].resources.limits, {
      'intel.com/sriov_netdevice_a': '1',
    });
  });

  it('help goes to standard output with exit 0; a missing or unknown command says where help is', () => {
    for (const args of [['explain', '--help'], ['explain', '-h'], ['--help'], ['-h']]) {
      const result = nri(args, {});
      assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stdout, /Usage: nri explain -f FILE\|-/);
      assert.match(result.stdout, /3 could not check/);
      assert.equal(result.stderr, '');
    }
    for (const [args, message] of [
      [[], 'nri: a command is required'],
      [['explian'], 'nri: unknown command explian'],
    ] as const) {
      const result = nri([...args], {});
      assert.equal(result.status, 2);
      assert.equal(result.stderr, `${message}\nRun "nri --help" for usage.\n`);
    }
  });

  it('bad input exits 2 with one line: the reason, then where help is', () => {
    for (const [args, input, message] of [
      [['explain'], '', /-f FILE\|- is required/],
      [
        ['explain', '-f', '-', '--nads', 'examples/nads', '-o', 'xml'],
        DEPLOYMENT,
        /-o xml: expected summary, yaml, json or patch/,
      ],
      [
        ['explain', '-f', '-', '--nads', 'examples/nads'],
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n',
        /a "ConfigMap" has no pod/,
      ],
      [['explain', '-f', '-', '--nads', 'examples/nads'], '{ not: [yaml', /neither YAML nor JSON/],
      [
        ['explain', '-f', '-', '--nads', 'examples/nads'],
        'kind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n',
        /Pod default\/p: field "spec\.containers" must have at least 1 item/,
      ],
      [['explain', '-f', '/nonexistent.yaml', '--nads', 'examples/nads'], '', /cannot read \/nonexistent\.yaml/],
      [['explain', '-f', '-'], DEPLOYMENT, /name the NADs: --nads FILE\|DIR, or a cluster with KUBECONFIG/],
    ] as const) {
      const result = nri([...args], { input });
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.match(result.stderr, /^nri explain: [^\n]+\nRun "nri explain --help" for usage\.\n$/);
    }
  });

  describe('with NADs from the cluster KUBECONFIG names', () => {
    const api = new FakeApiServer(createPki());
    before(async () => {
      await api.start();
      api.upsertNad('default', 'foo-network', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/from-cluster' });
    });
    after(() => api.stop());

    // Not spawnSync: the fake API server answers from this very process.
    const explainAgainstCluster = async (args: string[], input: string, env: Record<string, string> = {}) => {
      const child = spawn(fileURLToPath(new URL('bin/nri', repoRoot)), ['explain', '-f', '-', ...args], {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: root, KUBECONFIG: api.kubeconfigPath, ...env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.stdin.end(input);
      const status = await new Promise((resolve) => child.once('exit', resolve));
      return { status, stdout, stderr };
    };

    it('reads each NAD the pod names with a GET', async () => {
      const result = await explainAgainstCluster(['-o', 'patch'], DEPLOYMENT);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /example\.com\/from-cluster/);
      assert.equal(api.counts.nadGet, 1);
    });

    it('reads the control-switch ConfigMap once, as the server does: user-defined injections and the hugepage switch apply', async () => {
      api.upsertConfigMap('nri', 'nri-control-switches', {
        'config.json': JSON.stringify({
          features: { enableHugePageDownApi: true },
          'user-defined-injections': {
            'dpdk-app': {
              op: 'add',
              path: '/metadata/annotations',
              value: { 'k8s.v1.cni.cncf.io/networks': 'foo-network' },
            },
          },
        }),
      });
      const pod = `apiVersion: v1
kind: Pod
metadata: { name: vnf, namespace: default, labels: { dpdk-app: "true" } }
spec:
  containers:
    - name: app
      resources: { requests: { hugepages-1Gi: 2Gi }, limits: { hugepages-1Gi: 2Gi } }
`;
      const gets = api.counts.cmGet;
      const patch = await explainAgainstCluster(['-o', 'patch'], pod, { NRI_NAMESPACE: 'nri' });
      assert.equal(patch.status, 0, patch.stderr);
      assert.equal(api.counts.cmGet, gets + 1, 'one GET of the ConfigMap');
      const ops = JSON.parse(patch.stdout) as Array<{ path: string; value: unknown }>;
      assert.ok(
        ops.some(
          (op) => op.path.startsWith('/metadata/annotations') && JSON.stringify(op.value).includes('foo-network'),
        ),
        'the user-defined injection added the network',
      );
      assert.match(patch.stdout, /example\.com~1from-cluster/);
      assert.match(patch.stdout, /hugepages_1G_request_app/);
      const summary = await explainAgainstCluster([], pod, { NRI_NAMESPACE: 'nri' });
      assert.match(summary.stdout, /^Switches: +ConfigMap nri\/nri-control-switches applied \(resourceVersion \d+\)$/m);
      api.deleteConfigMap('nri', 'nri-control-switches');
      const without = await explainAgainstCluster([], pod, { NRI_NAMESPACE: 'nri' });
      assert.match(without.stdout, /^Switches: +ConfigMap nri\/nri-control-switches absent: environment values$/m);
      assert.match(without.stdout, /^Result: +allowed unchanged/m);
    });

    it('exits 3, not 1, when a NAD cannot be read: it could not check, the pod was not denied', async () => {
      api.fault('nadGet', { status: 403, times: 5 });
      const result = await explainAgainstCluster(['-o', 'patch'], DEPLOYMENT);
      api.fault('nadGet', undefined);
      assert.equal(result.status, 3, result.stderr);
      assert.match(
        result.stderr,
        /^nri explain: could not check: NetworkAttachmentDefinition default\/foo-network could not be read: /,
      );
      assert.equal(result.stdout, '');
    });

    it("says so, and goes on with the environment's switches, when the ConfigMap cannot be read", async () => {
      api.fault('cmGet', { status: 403, times: 1 });
      const result = await explainAgainstCluster(['-o', 'patch'], DEPLOYMENT, { NRI_NAMESPACE: 'nri' });
      assert.equal(result.status, 0, result.stderr);
      assert.match(
        result.stderr,
        /^nri explain: warning: ConfigMap nri\/nri-control-switches could not be read \(the API server answered 403/,
      );
      assert.match(result.stdout, /example\.com\/from-cluster/);
    });
  });
});
