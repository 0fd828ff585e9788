// Table-driven tests of every rule of the pure core, through reviewPod.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { respond } from '../../functions/adapters/http/admission-response.js';
import { planInjection } from '../../functions/core/plan.js';
import { decide, reviewPod, select } from '../../functions/core/review.js';
import type { Pod } from '../../functions/core/types.js';
import {
  defaultSettings,
  defaultSwitches,
  lookupFrom,
  nad,
  opsOf,
  patchedPod,
  pod,
  realisticReview,
  run,
  sriovNad,
} from '../support/fixtures.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const DEFAULT_NETWORK = 'v1.multus-cni.io/default-network';
const foo = sriovNad('default', 'foo-network', 'example.com/foo');
const bar = sriovNad('default', 'bar-network', 'example.com/bar');

describe('resources', () => {
  it('injects one unit per reference as requests == limits into the first container', async () => {
    const target = pod({ [NETWORKS]: 'foo-network, foo-network' });
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { 'example.com/foo': '2' },
      limits: { 'example.com/foo': '2' },
    });
  });

  it('counts every reference, up to the 1,024 an annotation may list: no lower limit per NAD (docs/behaviour.md, Limits)', async () => {
    const target = pod({ [NETWORKS]: Array.from({ length: 1024 }, () => 'foo-network').join(',') });
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.equal(result.spec.containers[0]!.resources!.limits!['example.com/foo'], '1024');
  });

  it('sums resources of different networks and leaves other resources alone', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network,bar-network,foo-network' },
      {
        containers: [{ name: 'app', resources: { requests: { cpu: '1' }, limits: { memory: '1Gi' } } }],
      },
    );
    const result = patchedPod(target, await run(target, { nads: [foo, bar] }));
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { cpu: '1', 'example.com/foo': '2', 'example.com/bar': '1' },
      limits: { memory: '1Gi', 'example.com/foo': '2', 'example.com/bar': '1' },
    });
  });

  it('creates requests and limits when resources is an empty object', async () => {
    const target = pod({ [NETWORKS]: 'foo-network' }, { containers: [{ name: 'app', resources: {} }] });
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { 'example.com/foo': '1' },
      limits: { 'example.com/foo': '1' },
    });
  });

  it('leaves a resource that any container already sets as the user set it', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network,bar-network' },
      {
        containers: [{ name: 'app' }, { name: 'side', resources: { limits: { 'example.com/foo': '5' } } }],
      },
    );
    const result = patchedPod(target, await run(target, { nads: [foo, bar] }));
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { 'example.com/bar': '1' },
      limits: { 'example.com/bar': '1' },
    });
    assert.deepEqual(result.spec.containers[1]!.resources, { limits: { 'example.com/foo': '5' } });
  });

  it('adds to the existing request and limit in honor mode', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network,foo-network' },
      {
        containers: [
          { name: 'app', resources: { requests: { 'example.com/foo': '1' }, limits: { 'example.com/foo': '3' } } },
        ],
      },
    );
    const result = patchedPod(target, await run(target, { nads: [foo], switches: { honorExistingResources: true } }));
    assert.deepEqual(result.spec.containers[0]!.resources, {
      requests: { 'example.com/foo': '3' },
      limits: { 'example.com/foo': '5' },
    });
  });

  it('denies honor mode when the existing amount is not a whole number', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      { containers: [{ name: 'app', resources: { requests: { 'example.com/foo': '500m' } } }] },
    );
    const decision = await run(target, { nads: [foo], switches: { honorExistingResources: true } });
    assert.equal(decision.type, 'denied');
    assert.match(decision.type === 'denied' ? decision.message : '', /"500m" is not a whole number/);
  });

  it('reads every configured resource-name key, once per NAD', async () => {
    const multi = nad('default', 'multi', {
      'k8s.v1.cni.cncf.io/resourceName': 'example.com/a',
      'example.com/resource': 'example.com/b',
      'example.com/again': 'example.com/a',
    });
    const target = pod({ [NETWORKS]: 'multi' });
    const decision = await run(target, {
      nads: [multi],
      settings: { resourceNameKeys: ['k8s.v1.cni.cncf.io/resourceName', 'example.com/resource', 'example.com/again'] },
    });
    assert.deepEqual(patchedPod(target, decision).spec.containers[0]!.resources?.requests, {
      'example.com/a': '1',
      'example.com/b': '1',
    });
  });

  it('puts the resources into the container the pod names', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network', 'nri.k8s.cni.cncf.io/resources-container': 'dpdk' },
      { containers: [{ name: 'app' }, { name: 'dpdk' }] },
    );
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.equal(result.spec.containers[0]!.resources, undefined);
    assert.deepEqual(result.spec.containers[1]!.resources?.limits, { 'example.com/foo': '1' });
  });

  it('denies an unknown target container, naming the containers there are', async () => {
    const target = pod({ [NETWORKS]: 'foo-network', 'nri.k8s.cni.cncf.io/resources-container': 'nope' });
    const decision = await run(target, { nads: [foo] });
    assert.equal(decision.type, 'denied');
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /names container "nope", but the pod has only "app"/,
    );
  });

  it('denies a NAD whose resource name is invalid, naming the NAD', async () => {
    const target = pod({ [NETWORKS]: 'bad' });
    const decision = await run(target, { nads: [sriovNad('default', 'bad', 'not a/valid/name')] });
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /NetworkAttachmentDefinition default\/bad annotation "k8s.v1.cni.cncf.io\/resourceName" value "not a\/valid\/name" is not a valid resource name/,
    );
  });

  it('escapes "/" in resource names in patch paths', async () => {
    const odd = sriovNad('default', 'odd', 'example.com/a_b');
    const target = pod(
      { [NETWORKS]: 'odd' },
      { containers: [{ name: 'app', resources: { requests: {}, limits: {} } }] },
    );
    const decision = await run(target, { nads: [odd] });
    assert.ok(opsOf(decision).some((op) => op.path === '/spec/containers/0/resources/requests/example.com~1a_b'));
    assert.deepEqual(patchedPod(target, decision).spec.containers[0]!.resources?.requests, { 'example.com/a_b': '1' });
  });
});

describe('network references', () => {
  it('looks NADs up in the pod namespace by default and in the named one otherwise', async () => {
    const lookup = lookupFrom([foo, sriovNad('infra', 'x', 'example.com/x')]);
    reviewPod(
      { pod: pod({ [NETWORKS]: 'foo-network, infra/x, foo-network' }), namespace: 'default' },
      { settings: defaultSettings, switches: defaultSwitches },
      lookup,
    );
    assert.deepEqual(lookup.calls, ['default/foo-network', 'infra/x'], 'each distinct NAD once');
  });

  it('uses request.namespace when the pod has none', async () => {
    const lookup = lookupFrom([sriovNad('team', 'foo-network', 'example.com/foo')]);
    const target = pod({ [NETWORKS]: 'foo-network' }, {}, { namespace: undefined });
    const { decision } = reviewPod(
      { pod: target, namespace: 'team' },
      { settings: defaultSettings, switches: defaultSwitches },
      lookup,
    );
    assert.equal(decision.type, 'patched');
    assert.deepEqual(lookup.calls, ['team/foo-network']);
  });

  it('resolves an un-namespaced default network in the Multus namespace', async () => {
    const lookup = lookupFrom([sriovNad('multus', 'primary', 'example.com/p')]);
    reviewPod(
      { pod: pod({ [DEFAULT_NETWORK]: 'primary' }), namespace: 'default' },
      { settings: { ...defaultSettings, multusNamespace: 'multus' }, switches: defaultSwitches },
      lookup,
    );
    assert.deepEqual(lookup.calls, ['multus/primary']);
  });

  it('counts the default network with the others', async () => {
    const target = pod({ [NETWORKS]: 'foo-network', [DEFAULT_NETWORK]: 'default/foo-network' });
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.equal(result.spec.containers[0]!.resources?.requests?.['example.com/foo'], '2');
  });

  it('denies a default network annotation that names two networks', async () => {
    const decision = await run(pod({ [DEFAULT_NETWORK]: 'a,b' }));
    assert.match(decision.type === 'denied' ? decision.message : '', /names 2 networks; Multus accepts exactly one/);
  });

  it('denies a bad annotation naming the annotation and the element', async () => {
    const decision = await run(pod({ [NETWORKS]: 'good,a/b/c' }));
    assert.equal(decision.type, 'denied');
    assert.equal(decision.type === 'denied' && decision.kind, 'invalid_annotation');
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /^annotation "k8s.v1.cni.cncf.io\/networks" item 2 "a\/b\/c"/,
    );
  });

  it('denies missing NADs, naming each namespace/name', async () => {
    const decision = await run(pod({ [NETWORKS]: 'foo-network, ghost, other/gone' }), { nads: [foo] });
    assert.equal(decision.type === 'denied' && decision.kind, 'nad_not_found');
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /NetworkAttachmentDefinitions not found: default\/ghost, other\/gone/,
    );
    // upstream's words too, which runbooks built on upstream search for
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /could not get Network Attachment Definition default\/ghost; could not get Network Attachment Definition other\/gone/,
    );
  });

  it('denies with the reason when a NAD cannot be read', async () => {
    const { decision } = reviewPod(
      { pod: pod({ [NETWORKS]: 'foo-network' }), namespace: 'default' },
      { settings: defaultSettings, switches: defaultSwitches },
      lookupFrom([], { 'default/foo-network': 'timed out after 3000 ms' }),
    );
    assert.equal(decision.type === 'denied' && decision.kind, 'nad_lookup_failed');
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /default\/foo-network could not be read: timed out after 3000 ms \(could not get Network Attachment Definition default\/foo-network\)/,
    );
  });

  it('allows an empty annotation without injecting anything', async () => {
    const decision = await run(pod({ [NETWORKS]: '' }));
    assert.deepEqual([decision.type, decision.type === 'allowed' && decision.reason], ['allowed', 'no_networks']);
  });

  it('allows a NAD without resources or selector unchanged', async () => {
    const decision = await run(pod({ [NETWORKS]: 'plain' }), { nads: [nad('default', 'plain')] });
    assert.deepEqual([decision.type, decision.type === 'allowed' && decision.reason], ['allowed', 'unchanged']);
  });

  it('leaves excluded namespaces untouched, even with a bad annotation', async () => {
    const target = pod({ [NETWORKS]: 'a/b/c' }, {}, { namespace: 'kube-system' });
    const decision = await run(target);
    assert.deepEqual(
      [decision.type, decision.type === 'allowed' && decision.reason],
      ['allowed', 'excluded_namespace'],
    );
  });

  it('only mutates on CREATE', async () => {
    const decision = await run(pod({ [NETWORKS]: 'foo-network' }), { nads: [foo], operation: 'UPDATE' });
    assert.equal(decision.type, 'allowed');
  });
});

describe('node selector', () => {
  it('merges key=value and a bare key into spec.nodeSelector', async () => {
    const a = nad('default', 'a', { 'k8s.v1.cni.cncf.io/nodeSelector': 'master=eno3' });
    const b = nad('default', 'b', { 'k8s.v1.cni.cncf.io/nodeSelector': ' sriov ' });
    const target = pod({ [NETWORKS]: 'a,b' }, { nodeSelector: { zone: 'z1' } });
    const result = patchedPod(target, await run(target, { nads: [a, b] }));
    assert.deepEqual(result.spec.nodeSelector, { zone: 'z1', master: 'eno3', sriov: '' });
  });

  it('creates spec.nodeSelector when the pod has none', async () => {
    const a = nad('default', 'a', { 'k8s.v1.cni.cncf.io/nodeSelector': 'master=eno3' });
    const decision = await run(pod({ [NETWORKS]: 'a' }), { nads: [a] });
    assert.deepEqual(opsOf(decision), [{ op: 'add', path: '/spec/nodeSelector', value: { master: 'eno3' } }]);
  });

  it('denies more than one "="', async () => {
    const a = nad('default', 'a', { 'k8s.v1.cni.cncf.io/nodeSelector': 'a=b=c' });
    const decision = await run(pod({ [NETWORKS]: 'a' }), { nads: [a] });
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /default\/a .* value "a=b=c" has more than one '='.*node selector in net-attach-def a has more than one label/,
    );
  });

  it('denies two NADs that need different values for one key', async () => {
    const a = nad('default', 'a', { 'k8s.v1.cni.cncf.io/nodeSelector': 'nic=x' });
    const b = nad('default', 'b', { 'k8s.v1.cni.cncf.io/nodeSelector': 'nic=y' });
    const decision = await run(pod({ [NETWORKS]: 'a,b' }), { nads: [a, b] });
    assert.equal(decision.type === 'denied' && decision.kind, 'conflict');
  });

  it('denies a NAD selector that contradicts the pod', async () => {
    const a = nad('default', 'a', { 'k8s.v1.cni.cncf.io/nodeSelector': 'nic=x' });
    const decision = await run(pod({ [NETWORKS]: 'a' }, { nodeSelector: { nic: 'z' } }), { nads: [a] });
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /needs nodeSelector nic="x" but the pod sets nic="z"/,
    );
  });
});

describe('downward API', () => {
  it('adds the podnetinfo volume and a read-only mount in every container', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      { containers: [{ name: 'a' }, { name: 'b', volumeMounts: [{ name: 'x', mountPath: '/x' }] }] },
      { labels: { app: 'x' } },
    );
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.deepEqual(result.spec.volumes, [
      {
        name: 'podnetinfo',
        downwardAPI: {
          items: [
            { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
            { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
          ],
        },
      },
    ]);
    assert.deepEqual(result.spec.containers[0]!.volumeMounts, [
      { name: 'podnetinfo', mountPath: '/etc/podnetinfo', readOnly: true },
    ]);
    assert.deepEqual(result.spec.containers[1]!.volumeMounts?.[1], {
      name: 'podnetinfo',
      mountPath: '/etc/podnetinfo',
      readOnly: true,
    });
  });

  it('omits the labels item when the pod has no labels', async () => {
    const target = pod({ [NETWORKS]: 'foo-network' });
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.deepEqual(
      (result.spec.volumes![0] as unknown as { downwardAPI: { items: Array<{ path: string }> } }).downwardAPI.items.map(
        (i) => i.path,
      ),
      ['annotations'],
    );
  });

  it('adds nothing when no resource was injected', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      { containers: [{ name: 'app', resources: { requests: { 'example.com/foo': '1' } } }] },
    );
    const decision = await run(target, { nads: [foo] });
    assert.equal(decision.type, 'allowed');
  });

  it('never adds a second volume or mount of that name, nor a mount on a taken path', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      {
        volumes: [{ name: 'podnetinfo', emptyDir: {} }],
        containers: [
          { name: 'a', volumeMounts: [{ name: 'podnetinfo', mountPath: '/somewhere' }] },
          { name: 'b', volumeMounts: [{ name: 'other', mountPath: '/etc/podnetinfo/' }] },
          { name: 'c' },
        ],
      },
    );
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.equal(result.spec.volumes?.filter((v) => v.name === 'podnetinfo').length, 1);
    assert.equal(result.spec.containers[0]!.volumeMounts?.length, 1);
    assert.equal(result.spec.containers[1]!.volumeMounts?.length, 1);
    assert.equal(result.spec.containers[2]!.volumeMounts?.length, 1);
  });

  it('exposes hugepages per container and sets CONTAINER_NAME when enabled', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      {
        containers: [
          { name: 'dpdk', resources: { requests: { 'hugepages-1Gi': '2Gi' }, limits: { 'hugepages-1Gi': '2Gi' } } },
          { name: 'ctl', resources: { limits: { 'hugepages-2Mi': '0' } } },
          {
            name: 'pmd',
            env: [{ name: 'CONTAINER_NAME', value: 'mine' }],
            resources: { requests: { 'hugepages-2Mi': '512Mi' } },
          },
        ],
      },
    );
    const result = patchedPod(target, await run(target, { nads: [foo], switches: { hugePageDownApi: true } }));
    const items = (result.spec.volumes![0] as unknown as { downwardAPI: { items: Array<Record<string, unknown>> } })
      .downwardAPI.items;
    assert.deepEqual(items.slice(1), [
      {
        path: 'hugepages_1G_request_dpdk',
        resourceFieldRef: { containerName: 'dpdk', resource: 'requests.hugepages-1Gi', divisor: '1Mi' },
      },
      {
        path: 'hugepages_1G_limit_dpdk',
        resourceFieldRef: { containerName: 'dpdk', resource: 'limits.hugepages-1Gi', divisor: '1Mi' },
      },
      {
        path: 'hugepages_2M_request_pmd',
        resourceFieldRef: { containerName: 'pmd', resource: 'requests.hugepages-2Mi', divisor: '1Mi' },
      },
    ]);
    assert.deepEqual(result.spec.containers[0]!.env, [{ name: 'CONTAINER_NAME', value: 'dpdk' }]);
    assert.equal(result.spec.containers[1]!.env, undefined, 'zero hugepages: no env');
    assert.deepEqual(result.spec.containers[2]!.env, [{ name: 'CONTAINER_NAME', value: 'mine' }], 'existing env kept');
  });

  it('adds no hugepage items when the switch is off', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network' },
      { containers: [{ name: 'dpdk', resources: { requests: { 'hugepages-1Gi': '2Gi' } } }] },
    );
    const result = patchedPod(target, await run(target, { nads: [foo] }));
    assert.equal(JSON.stringify(result).includes('hugepages_1G'), false);
    assert.equal(result.spec.containers[0]!.env, undefined);
  });
});

describe('user-defined injections', () => {
  const injections = new Map([
    ['feature.pod.kubernetes.io/sriov', { [NETWORKS]: 'foo-network', 'example.com/note': 'added' }],
  ]);

  it('adds annotations for a label set to "true" in any case, and computes resources from them', async () => {
    const target = pod({}, {}, { labels: { 'feature.pod.kubernetes.io/sriov': 'TRUE' } });
    const result = patchedPod(
      target,
      await run(target, { nads: [foo], switches: { userDefinedInjections: injections } }),
    );
    assert.equal(result.metadata?.annotations?.[NETWORKS], 'foo-network');
    assert.equal(result.metadata?.annotations?.['example.com/note'], 'added');
    assert.equal(result.spec.containers[0]!.resources?.limits?.['example.com/foo'], '1');
  });

  it("replaces the pod's own value, as upstream's JSONPatch add does, and computes resources from the result", async () => {
    const target = pod({ [NETWORKS]: 'bar-network' }, {}, { labels: { 'feature.pod.kubernetes.io/sriov': 'true' } });
    const decision = await run(target, { nads: [foo, bar], switches: { userDefinedInjections: injections } });
    assert.ok(
      opsOf(decision).some(
        (op) =>
          op.path === `/metadata/annotations/${NETWORKS.replace('/', '~1')}` &&
          (op as { value?: unknown }).value === 'foo-network',
      ),
    );
    const result = patchedPod(target, decision);
    assert.equal(result.metadata?.annotations?.[NETWORKS], 'foo-network');
    assert.deepEqual(result.spec.containers[0]!.resources?.limits, { 'example.com/foo': '1' });
  });

  it('adds no operation for a value the pod already has', async () => {
    const target = pod(
      { 'example.com/note': 'added', [NETWORKS]: 'foo-network' },
      {},
      { labels: { 'feature.pod.kubernetes.io/sriov': 'true' } },
    );
    const ops = opsOf(await run(target, { nads: [foo], switches: { userDefinedInjections: injections } }));
    assert.equal(
      ops.some((op) => op.path.startsWith('/metadata/annotations')),
      false,
    );
  });

  it('applies even when no resource is injected', async () => {
    const only = new Map([['team', { 'example.com/owner': 'net' }]]);
    const target = pod({}, {}, { labels: { team: 'true' } });
    const decision = await run(target, { switches: { userDefinedInjections: only } });
    assert.deepEqual(opsOf(decision), [{ op: 'add', path: '/metadata/annotations/example.com~1owner', value: 'net' }]);
  });

  it('creates metadata.annotations when the pod has none', async () => {
    const only = new Map([['team', { 'example.com/owner': 'net' }]]);
    const target: Pod = { metadata: { name: 'p', labels: { team: 'true' } }, spec: { containers: [{ name: 'a' }] } };
    const decision = await run(target, { switches: { userDefinedInjections: only } });
    assert.deepEqual(opsOf(decision), [
      { op: 'add', path: '/metadata/annotations', value: { 'example.com/owner': 'net' } },
    ]);
  });

  it('ignores labels that are not "true"', async () => {
    const target = pod({}, {}, { labels: { 'feature.pod.kubernetes.io/sriov': 'yes' } });
    assert.equal((await run(target, { nads: [foo], switches: { userDefinedInjections: injections } })).type, 'allowed');
  });
});

describe('phases: select, then decide on what an adapter resolved', () => {
  const context = { settings: defaultSettings, switches: defaultSwitches };

  it('select() names each distinct NAD to resolve, or ends the review itself', () => {
    const selected = select(
      { pod: pod({ [NETWORKS]: 'foo-network, infra/x, foo-network' }), namespace: 'default' },
      context,
    );
    assert.ok('pending' in selected);
    assert.deepEqual(selected.pending.refs, [
      { namespace: 'default', name: 'foo-network' },
      { namespace: 'infra', name: 'x' },
    ]);
    const plain = select({ pod: pod(), namespace: 'default' }, context);
    assert.ok('verdict' in plain);
    assert.deepEqual(plain.verdict.decision, { type: 'allowed', reason: 'no_networks' });
    const other = select({ pod: null, namespace: 'default', operation: 'DELETE' }, context);
    assert.ok('verdict' in other && other.verdict.decision.type === 'allowed');
  });

  it('decide() is select() and the resolved NADs, nothing else: the same verdict reviewPod gives', () => {
    const target = pod({ [NETWORKS]: 'foo-network' });
    const selected = select({ pod: target, namespace: 'default' }, context);
    assert.ok('pending' in selected);
    const verdict = decide(
      selected.pending,
      new Map([['default/foo-network', { status: 'found' as const, nad: foo }]]),
      context,
    );
    assert.deepEqual(verdict, reviewPod({ pod: target, namespace: 'default' }, context, lookupFrom([foo])));
  });

  it('a NAD the source gave no answer for is denied as our bug, in words a user can act on', () => {
    const selected = select({ pod: pod({ [NETWORKS]: 'foo-network' }), namespace: 'default' }, context);
    assert.ok('pending' in selected);
    const { decision } = decide(selected.pending, new Map(), context);
    assert.equal(decision.type, 'denied');
    assert.match(
      decision.type === 'denied' ? decision.message : '',
      /^NetworkAttachmentDefinition default\/foo-network could not be read: the injector got no answer for it, which is a bug: please report it/,
    );
  });

  it("a plan asked for a NAD it was not given says it is our bug, not the pod's", () => {
    const selected = select({ pod: pod({ [NETWORKS]: 'foo-network' }), namespace: 'default' }, context);
    assert.ok('pending' in selected);
    const planned = planInjection(
      selected.pending.pod,
      selected.pending.selection,
      new Map(),
      defaultSettings,
      defaultSwitches,
    );
    assert.ok(!planned.ok);
    assert.equal(planned.kind, 'internal');
    assert.match(
      planned.error,
      /^internal error: the pod names NetworkAttachmentDefinition default\/foo-network but the injector did not read it; please report this$/,
    );
  });

  it('keeps the log facts beside the decision, not in it', () => {
    const { decision, facts } = reviewPod(
      { pod: pod({ [NETWORKS]: 'foo-network, foo-network' }), namespace: 'default' },
      context,
      lookupFrom([foo]),
    );
    assert.deepEqual(Object.keys(decision).sort(), ['ops', 'type']);
    assert.deepEqual(
      facts.networks.map((ref) => ref.name),
      ['foo-network', 'foo-network'],
    );
    assert.deepEqual([...facts.injected], [['example.com/foo', 2]]);
  });

  it("never writes into the caller's pod", () => {
    const review = realisticReview();
    const before = JSON.stringify(review.request.object);
    const nads = [sriovNad('telco', 'sriov-a', 'intel.com/sriov_a'), sriovNad('infra', 'sriov-b', 'intel.com/sriov_b')];
    const { decision } = reviewPod(
      { pod: review.request.object, namespace: 'telco' },
      { settings: defaultSettings, switches: { ...defaultSwitches, hugePageDownApi: true } },
      lookupFrom(nads),
    );
    assert.equal(decision.type, 'patched');
    assert.equal(JSON.stringify(review.request.object), before);
  });
});

describe('patch shape and idempotence', () => {
  it('appends to what the API server sent (volumes, mounts) and never replaces it', async () => {
    const review = realisticReview();
    const target = review.request.object;
    const nads = [sriovNad('telco', 'sriov-a', 'intel.com/sriov_a'), sriovNad('infra', 'sriov-b', 'intel.com/sriov_b')];
    const { decision } = reviewPod(
      { pod: target, namespace: 'telco' },
      { settings: defaultSettings, switches: { ...defaultSwitches, hugePageDownApi: true } },
      lookupFrom(nads),
    );
    const ops = opsOf(decision);
    assert.ok(ops.every((op) => op.op === 'add'));
    assert.ok(ops.some((op) => op.path === '/spec/volumes/-'));
    assert.ok(ops.some((op) => op.path === '/spec/containers/0/volumeMounts/-'));
    const result = patchedPod(target, decision);
    assert.equal(result.spec.volumes?.length, 3);
    assert.deepEqual(result.spec.containers[0]!.resources?.requests, {
      cpu: '4',
      memory: '2Gi',
      'hugepages-1Gi': '4Gi',
      'intel.com/sriov_a': '1',
      'intel.com/sriov_b': '1',
    });
    assert.equal(result.spec.containers[0]!.volumeMounts?.length, 3);
    assert.equal(result.spec.containers[1]!.volumeMounts?.length, 2);
    assert.deepEqual(result.spec.containers[0]!.env, [{ name: 'CONTAINER_NAME', value: 'testpmd' }]);
  });

  it('changes nothing when run on its own output', async () => {
    const target = pod(
      { [NETWORKS]: 'foo-network,bar-network' },
      { containers: [{ name: 'a' }, { name: 'b' }] },
      { labels: { x: 'y' } },
    );
    const first = patchedPod(target, await run(target, { nads: [foo, bar] }));
    const second = await run(first, { nads: [foo, bar] });
    assert.equal(second.type, 'allowed');
  });

  it('encodes a patched decision as base64 JSONPatch and echoes the uid', async () => {
    const decision = await run(pod({ [NETWORKS]: 'foo-network' }), { nads: [foo] });
    const review = respond('uid-1', decision);
    assert.equal(review.response.uid, 'uid-1');
    assert.equal(review.response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(review.response.patch!, 'base64').toString()), opsOf(decision));
  });

  it('answers a denial with a 403 status and the message', async () => {
    const review = respond('u', await run(pod({ [NETWORKS]: 'ghost' })));
    assert.equal(review.response.allowed, false);
    assert.equal(review.response.status?.code, 403);
    assert.match(review.response.status?.message ?? '', /ghost/);
  });
});
