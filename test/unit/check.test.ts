// The checks of `nri check` (functions/core/check/), on objects shaped as the API server lists them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkEscapedPods, missingResources, ownerOf } from '../../functions/core/check/escaped-pods.js';
import { checkOfferedResources, nodeOffers } from '../../functions/core/check/offered-resources.js';
import { checkOtherInjectors } from '../../functions/core/check/other-injectors.js';
import { checkReplicas } from '../../functions/core/check/replicas.js';
import { exitStatus, result } from '../../functions/core/check/report.js';
import { checkRegistration, checkServedCertificate, type Registration } from '../../functions/core/check/webhook.js';
import { matchesLabelSelector } from '../../functions/core/label-selector.js';
import { createPki, issue } from '../support/certs.js';
import { defaultSettings, defaultSwitches, patchedPod, pod, run, sriovNad } from '../support/fixtures.js';

const context = { settings: defaultSettings, switches: defaultSwitches };
const NETWORKS = 'k8s.v1.cni.cncf.io/networks';

function configuration(caBundle: string, extra: Record<string, unknown> = {}) {
  return {
    metadata: { name: 'nri-network-resources-injector' },
    webhooks: [
      {
        name: 'network-resources-injector.k8s.cni.cncf.io',
        clientConfig: {
          service: { namespace: 'nri', name: 'nri-webhook', port: 443, path: '/mutate' },
          ...(caBundle ? { caBundle: Buffer.from(caBundle).toString('base64') } : {}),
        },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        failurePolicy: 'Fail',
        ...extra,
      },
    ],
  };
}

describe('nri check: the webhook registration and the certificate it serves', () => {
  const pki = createPki('nri-check-');
  const serving = issue(pki.dir, 'serving', '/CN=nri-webhook.nri.svc', {
    ca: { cert: pki.caCert, key: pki.caKey },
    san: 'DNS:nri-webhook.nri.svc,DNS:nri-webhook.nri.svc.cluster.local',
    days: 60,
  });
  const served = readFileSync(serving.cert, 'utf8');
  const registered = (caBundle = pki.caPem) =>
    checkRegistration('nri-network-resources-injector', configuration(caBundle)).registration as Registration;

  it('fails without the configuration, or without a caBundle, and names what to do', () => {
    const absent = checkRegistration('nri-network-resources-injector', undefined).check;
    assert.equal(absent.status, 'fail');
    assert.match(absent.summary, /does not exist/);
    const empty = checkRegistration('nri-network-resources-injector', configuration('')).check;
    assert.equal(empty.status, 'fail');
    assert.match(empty.summary, /no caBundle/);
    assert.match(empty.fix ?? '', /cainjector/);
    const ok = checkRegistration('nri-network-resources-injector', configuration(pki.caPem));
    assert.equal(ok.check.status, 'ok');
    assert.deepEqual(ok.registration?.target, {
      kind: 'service',
      namespace: 'nri',
      name: 'nri-webhook',
      port: 443,
      path: '/mutate',
    });
  });

  it('passes when the caBundle verifies the served certificate for <service>.<namespace>.svc', () => {
    const check = checkServedCertificate(registered(), served, new Date(), 14);
    assert.equal(check.status, 'ok', check.summary);
    assert.match(check.details.join('\n'), /\(5\d days\)/);
  });

  it('reads a certificate with an empty subject, as cert-manager issues them (names in SANs only)', () => {
    const sansOnly = issue(pki.dir, 'sans-only', '/', {
      ca: { cert: pki.caCert, key: pki.caKey },
      san: 'DNS:nri-webhook.nri.svc',
      days: 60,
    });
    const check = checkServedCertificate(registered(), readFileSync(sansOnly.cert, 'utf8'), new Date(), 14);
    assert.equal(check.status, 'ok', check.summary);
    assert.match(
      check.details[0]!,
      /^served: subject \(empty\), issuer CN=nri-test-ca, SANs DNS:nri-webhook\.nri\.svc/,
    );
  });

  it('fails when the caBundle holds another CA', () => {
    const other = createPki('nri-check-other-');
    const check = checkServedCertificate(registered(other.caPem), served, new Date(), 14);
    assert.equal(check.status, 'fail');
    assert.match(check.summary, /does not verify/);
  });

  it('fails when the certificate is not valid for the name kube-apiserver calls', () => {
    const check = checkServedCertificate(registered(), readFileSync(pki.serverCert, 'utf8'), new Date(), 14);
    assert.equal(check.status, 'fail');
    assert.match(check.summary, /not valid for nri-webhook\.nri\.svc/);
  });

  it('warns within --warn-days of the end, and fails once it has passed', () => {
    const soon = checkServedCertificate(registered(), served, new Date(), 90);
    assert.equal(soon.status, 'warn');
    assert.match(soon.summary, /expires in 5\d days/);
    const later = checkServedCertificate(registered(), served, new Date(Date.now() + 61 * 86_400_000), 14);
    assert.equal(later.status, 'fail');
    assert.match(later.summary, /expired at/);
  });
});

describe('nri check: resources no node offers', () => {
  const nads = [
    sriovNad('default', 'sriov-a', 'intel.com/sriov_a'),
    sriovNad('default', 'ghost', 'example.com/ghost'),
    sriovNad('tenant', 'dra-net', 'vendor.example/vf'),
  ];
  const node = (allocatable: Record<string, string>) => ({ status: { allocatable } });

  it('reads what a node offers, leaving out zero quantities', () => {
    assert.deepEqual(nodeOffers(node({ cpu: '2', 'intel.com/sriov_a': '4', 'example.com/ghost': '0' })), [
      'cpu',
      'intel.com/sriov_a',
    ]);
  });

  it('fails naming the resource and the NADs when neither a node nor a DeviceClass provides it', () => {
    const check = checkOfferedResources(
      nads,
      {
        byNodes: new Map([['intel.com/sriov_a', 1]]),
        resourceOfClass: new Map([['vf.vendor.example', 'vendor.example/vf']]),
        nodeCount: 1,
      },
      defaultSettings.resourceNameKeys,
    );
    assert.equal(check.status, 'fail');
    assert.deepEqual(check.details, [
      'example.com/ghost: no node offers it and no DeviceClass maps it; named by default/ghost',
    ]);
    assert.match(check.summary, /stay Pending/);
  });

  it('passes when every resource is offered, by a node or a DeviceClass', () => {
    const check = checkOfferedResources(
      nads,
      {
        byNodes: new Map([
          ['intel.com/sriov_a', 1],
          ['example.com/ghost', 2],
        ]),
        resourceOfClass: new Map([['vf.vendor.example', 'vendor.example/vf']]),
        nodeCount: 2,
      },
      defaultSettings.resourceNameKeys,
    );
    assert.equal(check.status, 'ok', check.summary);
  });
});

describe('nri check: pods that escaped injection', () => {
  const nads = new Map([['default/sriov-a', sriovNad('default', 'sriov-a', 'intel.com/sriov_a')]]);
  const owned = { ownerReferences: [{ kind: 'ReplicaSet', name: 'web-7d9', controller: true }] };
  const bare = pod({ [NETWORKS]: 'sriov-a' }, {}, { name: 'escaped', ...owned });

  it('finds a pod that selects a network but lacks its resource, with its owner', async () => {
    assert.deepEqual(missingResources(bare, nads, context), ['intel.com/sriov_a']);
    assert.equal(ownerOf(bare), 'ReplicaSet/web-7d9');
    const check = checkEscapedPods([{ pod: bare }], nads, new Map(), undefined, context);
    assert.equal(check.status, 'fail');
    assert.match(check.details[0]!, /^default\/escaped \(ReplicaSet\/web-7d9\) lacks intel\.com\/sriov_a/);
  });

  it('passes a pod nri injected, and one that opted out', async () => {
    const injected = patchedPod(bare, await run(bare, { nads: [...nads.values()] }));
    const optedOut = pod({ [NETWORKS]: 'sriov-a', 'nri.k8s.cni.cncf.io/inject': 'false' });
    const check = checkEscapedPods([{ pod: injected }, { pod: optedOut }], nads, new Map(), undefined, context);
    assert.equal(check.status, 'ok', check.details.join('\n'));
    assert.match(check.summary, /^2 pods with networks/);
  });

  it('leaves out pods the webhook is not registered for, and finished pods', () => {
    const registration = {
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['default'] }],
      },
      objectSelector: undefined,
    };
    const labels = new Map([['default', { 'kubernetes.io/metadata.name': 'default' }]]);
    assert.equal(checkEscapedPods([{ pod: bare }], nads, labels, registration, context).status, 'ok');
    const finished = { ...bare, status: { phase: 'Succeeded' } };
    assert.equal(checkEscapedPods([{ pod: finished }], nads, new Map(), undefined, context).status, 'ok');
  });

  it('passes a pod whose own ResourceClaim provides the resource (DRA)', () => {
    const claims = { provided: new Map([['intel.com/sriov_a', 'ResourceClaim vf (DeviceClass vf)']]), warnings: [] };
    assert.equal(checkEscapedPods([{ pod: bare, claims }], nads, new Map(), undefined, context).status, 'ok');
  });
});

describe('nri check: replicas, other injectors, the exit status', () => {
  const target = { kind: 'service', namespace: 'nri', name: 'nri-webhook', port: 443, path: '/mutate' } as const;
  const slice = (...ready: boolean[]) => ({
    endpoints: ready.map((isReady, index) => ({
      addresses: [`10.0.0.${index}`],
      conditions: { ready: isReady },
      targetRef: { kind: 'Pod', name: `nri-00001-deployment-${index}` },
    })),
  });
  const knative = {
    status: {
      latestCreatedRevisionName: 'nri-00002',
      latestReadyRevisionName: 'nri-00002',
      traffic: [{ revisionName: 'nri-00002', percent: 100 }],
    },
  };

  it('counts ready endpoints and says which revision Knative routes to', () => {
    const healthy = checkReplicas(target, [slice(true, true, false)], knative, 'nri');
    assert.equal(healthy.status, 'ok');
    assert.match(healthy.summary, /^2 replicas ready/);
    assert.ok(healthy.details.includes('Knative Service nri/nri routes 100% to nri-00002'));
    const none = checkReplicas(target, [slice(false)], knative, 'nri');
    assert.equal(none.status, 'fail');
    assert.equal(
      checkReplicas({ kind: 'url', url: 'https://10.0.0.1/mutate' }, [], undefined, undefined).status,
      'skip',
    );
  });

  it('warns about another network-resources injector on pods, and not about unrelated webhooks', () => {
    const ours = configuration('ca');
    const upstream = {
      metadata: { name: 'network-resources-injector-config' },
      webhooks: [
        {
          name: 'network-resources-injector-mutating-config.k8s.io',
          clientConfig: {
            service: { namespace: 'sriov-network-operator', name: 'network-resources-injector-service' },
          },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        },
      ],
    };
    const unrelated = {
      metadata: { name: 'istio-sidecar-injector' },
      webhooks: [
        {
          name: 'sidecar-injector.istio.io',
          clientConfig: { service: { namespace: 'istio-system', name: 'istiod' } },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        },
      ],
    };
    const clean = checkOtherInjectors([ours, unrelated], { configurationName: 'nri-network-resources-injector' });
    assert.equal(clean.status, 'ok');
    const both = checkOtherInjectors([ours, unrelated, upstream], {
      configurationName: 'nri-network-resources-injector',
    });
    assert.equal(both.status, 'warn');
    assert.equal(both.details.length, 1);
    assert.match(both.details[0]!, /network-resources-injector-config.*runs before nri/);
    assert.match(both.summary, /not reinvoked/);
  });

  it('exits 1 on any failure, else 2 when a check could not run, else 0 (warnings included)', () => {
    const ok = result('webhook', 'ok', '');
    assert.equal(exitStatus([ok, result('pods', 'warn', '')]), 0);
    assert.equal(exitStatus([ok, result('pods', 'unknown', '')]), 2);
    assert.equal(exitStatus([result('pods', 'unknown', ''), result('replicas', 'fail', '')]), 1);
  });

  it('applies label selectors as kube-apiserver does', () => {
    const labels = { a: '1', b: '2' };
    assert.ok(matchesLabelSelector(undefined, labels));
    assert.ok(matchesLabelSelector({ matchLabels: { a: '1' } }, labels));
    assert.ok(!matchesLabelSelector({ matchLabels: { a: '2' } }, labels));
    assert.ok(matchesLabelSelector({ matchExpressions: [{ key: 'c', operator: 'DoesNotExist' }] }, labels));
    assert.ok(!matchesLabelSelector({ matchExpressions: [{ key: 'b', operator: 'In', values: ['3'] }] }, labels));
    assert.ok(matchesLabelSelector({ matchExpressions: [{ key: 'b', operator: 'Exists' }] }, labels));
  });
});
