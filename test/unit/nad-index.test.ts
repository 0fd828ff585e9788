// The compact NAD index the watch cache keeps: lookups, replacement, deletion,
// and each distinct annotation set held once however many NADs carry it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NadIndex } from '../../functions/core/nad-index.js';

const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';
const SELECTOR = 'k8s.v1.cni.cncf.io/nodeSelector';

describe('NadIndex', () => {
  it('answers what was set, by namespace and name, and nothing else', () => {
    const index = new NadIndex();
    index.set({ namespace: 'a', name: 'net', annotations: { [RESOURCE]: 'example.com/a' } });
    assert.deepEqual(index.get('a', 'net'), {
      namespace: 'a',
      name: 'net',
      annotations: { [RESOURCE]: 'example.com/a' },
    });
    assert.equal(index.get('b', 'net'), undefined);
    assert.equal(index.get('a', 'other'), undefined);
    assert.equal(index.size, 1);
  });

  it('shares one frozen annotation set among every NAD that carries it, whatever the key order', () => {
    const index = new NadIndex();
    for (let i = 0; i < 1000; i++) {
      const annotations =
        i % 2
          ? { [RESOURCE]: 'example.com/pool', [SELECTOR]: 'sriov=true' }
          : { [SELECTOR]: 'sriov=true', [RESOURCE]: 'example.com/pool' };
      index.set({ namespace: `ns-${i}`, name: 'net', annotations });
    }
    assert.equal(index.size, 1000);
    assert.equal(index.distinctAnnotationSets, 1);
    const first = index.get('ns-0', 'net')!.annotations;
    assert.equal(index.get('ns-999', 'net')!.annotations, first, 'the very same object');
    assert.ok(Object.isFrozen(first));
  });

  it('replaces a NAD in place and lets go of annotation sets nobody holds', () => {
    const index = new NadIndex();
    index.set({ namespace: 'a', name: 'net', annotations: { [RESOURCE]: 'example.com/old' } });
    index.set({ namespace: 'a', name: 'net', annotations: { [RESOURCE]: 'example.com/new' } });
    assert.equal(index.size, 1);
    assert.equal(index.distinctAnnotationSets, 1);
    assert.equal(index.get('a', 'net')!.annotations[RESOURCE], 'example.com/new');
    index.delete('a', 'net');
    index.delete('a', 'net'); // twice: no effect
    assert.equal(index.size, 0);
    assert.equal(index.distinctAnnotationSets, 0);
    assert.equal(index.get('a', 'net'), undefined);
  });

  it('keeps NADs without annotations nri reads, sharing no set at all', () => {
    const index = new NadIndex();
    index.set({ namespace: 'a', name: 'plain', annotations: {} });
    assert.deepEqual(index.get('a', 'plain')!.annotations, {});
    assert.equal(index.distinctAnnotationSets, 0);
  });

  it('keeps a "__proto__" annotation key as a key', () => {
    const index = new NadIndex();
    const annotations = JSON.parse(`{"__proto__": "x", "${RESOURCE}": "example.com/a"}`);
    index.set({ namespace: 'a', name: 'net', annotations });
    const held = index.get('a', 'net')!.annotations;
    assert.equal(Object.getPrototypeOf(held), Object.prototype);
    assert.deepEqual(Object.keys(held).sort(), ['__proto__', RESOURCE].sort());
  });
});
