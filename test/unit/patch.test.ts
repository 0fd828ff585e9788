// The proof run before every answer: a patch that would not apply to the pod
// the API server sent is caught here, not by the API server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operation } from 'fast-json-patch';
import { buildPatch, patchProblem } from '../../functions/core/patch.js';
import type { Pod } from '../../functions/core/types.js';
import { pod, realisticReview } from '../support/fixtures.js';

const podWithLists = (): Pod =>
  pod(
    { 'k8s.v1.cni.cncf.io/networks': 'a' },
    {
      containers: [
        { name: 'app', resources: { requests: { cpu: '1' } }, volumeMounts: [{ name: 'v', mountPath: '/v' }] },
      ],
      volumes: [{ name: 'v', emptyDir: {} }],
    },
  );

describe('patchProblem', () => {
  it('accepts each kind of operation buildPatch emits, on the shape kube-apiserver sends', () => {
    const review = realisticReview();
    const target = review.request.object;
    const ops = buildPatch(target, {
      annotations: new Map([['k8s.v1.cni.cncf.io/network-status', 'x']]),
      nodeSelector: new Map([['sriov', 'true']]),
      resources: {
        containerIndex: 0,
        requests: new Map([['intel.com/sriov', '1']]),
        limits: new Map([['intel.com/sriov', '1']]),
      },
      volumeItems: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }],
      mountContainers: [0],
      envContainers: [0],
      injected: new Map(),
      warnings: [],
    });
    assert.ok(ops.length >= 6, `expected a patch of several operations, got ${JSON.stringify(ops)}`);
    assert.equal(patchProblem(target, ops), undefined);
  });

  it('never writes into the pod it checks', () => {
    const target = podWithLists();
    const before = JSON.stringify(target);
    const ops: Operation[] = [
      { op: 'add', path: '/metadata/annotations/new', value: 'x' },
      { op: 'add', path: '/spec/containers/0/resources/requests/example.com~1foo', value: '1' },
      { op: 'add', path: '/spec/containers/0/volumeMounts/-', value: { name: 'w', mountPath: '/w' } },
      { op: 'add', path: '/spec/volumes/-', value: { name: 'w', emptyDir: {} } },
      { op: 'add', path: '/spec/nodeSelector', value: { a: 'b' } },
    ];
    assert.equal(patchProblem(target, ops), undefined);
    assert.equal(JSON.stringify(target), before);
  });

  const broken: Array<[string, Operation, RegExp]> = [
    [
      'a missing parent',
      { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'A', value: 'b' } },
      /operation 1 \(add \/spec\/containers\/0\/env\/-\): the parent does not exist/,
    ],
    [
      'a parent two levels missing',
      { op: 'add', path: '/spec/nodeSelector/a', value: 'b' },
      /the parent does not exist/,
    ],
    [
      'an index past the end of a list',
      { op: 'add', path: '/spec/volumes/5', value: { name: 'x' } },
      /nri appends to arrays; index "5" is not the end \(1\)/,
    ],
    [
      'an insertion inside a list',
      { op: 'add', path: '/spec/volumes/0', value: { name: 'x' } },
      /nri appends to arrays/,
    ],
    [
      'a container that does not exist',
      { op: 'add', path: '/spec/containers/3/env', value: [] },
      /the parent does not exist/,
    ],
    [
      'a non-numeric list index',
      { op: 'add', path: '/spec/volumes/first', value: { name: 'x' } },
      /index "first" is not the end/,
    ],
    [
      'a string where an object is needed',
      { op: 'add', path: '/spec/containers/0/name/x', value: 'y' },
      /the parent is not an object or array/,
    ],
    [
      'a prototype key',
      { op: 'add', path: '/metadata/__proto__', value: { polluted: 'yes' } },
      /"__proto__" is not a key a patch may write/,
    ],
    [
      'a path through a prototype key',
      { op: 'add', path: '/metadata/__proto__/polluted', value: 'yes' },
      /the parent does not exist/,
    ],
    ['an operation other than add', { op: 'remove', path: '/spec/volumes/0' }, /only "add" with a value/],
    [
      'an add without a value',
      { op: 'add', path: '/metadata/annotations/x', value: undefined },
      /only "add" with a value/,
    ],
    ['a path without a leading slash', { op: 'add', path: 'metadata', value: {} }, /must start with "\/"/],
  ];
  for (const [name, op, message] of broken) {
    it(`names the failure for ${name}`, () => {
      const problem = patchProblem(podWithLists(), [op]);
      assert.ok(problem, `expected ${JSON.stringify(op)} to be refused`);
      assert.match(problem, message);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  }

  it('checks operations in order: the second add may rely on the first', () => {
    const target = podWithLists();
    const ops: Operation[] = [
      { op: 'add', path: '/spec/nodeSelector', value: {} },
      { op: 'add', path: '/spec/nodeSelector/a', value: 'b' },
    ];
    assert.equal(patchProblem(target, ops), undefined);
    assert.match(patchProblem(target, [ops[1]!])!, /the parent does not exist/);
  });

  it('follows values earlier operations add, appends included', () => {
    const target = podWithLists();
    const ops: Operation[] = [
      { op: 'add', path: '/spec/volumes/-', value: { name: 'w', downwardAPI: { items: [] } } },
      { op: 'add', path: '/spec/volumes/1/downwardAPI/items/-', value: { path: 'labels' } },
      { op: 'add', path: '/spec/volumes/-', value: { name: 'z' } },
      { op: 'add', path: '/spec/volumes/3', value: { name: 'end' } },
    ];
    assert.equal(patchProblem(target, ops), undefined);
    assert.match(patchProblem(target, [ops[1]!])!, /the parent does not exist/);
  });
});
