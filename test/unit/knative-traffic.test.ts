// Which Knative revisions answer reviews (core/knative-traffic.ts): the routed ones, and the
// newest while it must become Ready or while traffic follows the latest; never a superseded one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readKnativeTraffic, revisionStanding } from '../../functions/core/knative-traffic.js';

const service = (status: Record<string, unknown>, traffic?: unknown[]) => ({
  apiVersion: 'serving.knative.dev/v1',
  kind: 'Service',
  metadata: { name: 'nri' },
  spec: traffic ? { traffic } : {},
  status,
});
const serves = (object: unknown, revision: string) => revisionStanding(readKnativeTraffic(object)!, revision, 'nri');
const latest = [{ latestRevision: true, percent: 100 }];

describe('Knative revision standing', () => {
  it('first install: the only revision answers before it is Ready (else it never would be)', () => {
    assert.equal(serves(service({ latestCreatedRevisionName: 'nri-00001' }, latest), 'nri-00001').serves, true);
    assert.equal(serves(service({}), 'nri-00001').serves, false);
  });

  it('an upgrade, step by step: both answer until the route moves, then only the new one', () => {
    const creating = service(
      {
        latestCreatedRevisionName: 'nri-00002',
        latestReadyRevisionName: 'nri-00001',
        traffic: [{ revisionName: 'nri-00001', percent: 100, latestRevision: true }],
      },
      latest,
    );
    assert.equal(serves(creating, 'nri-00001').serves, true);
    assert.equal(serves(creating, 'nri-00002').serves, true);
    // Ready, the Route not yet moved: the new one must not drop out (nor the old one yet).
    const ready = service(
      {
        latestCreatedRevisionName: 'nri-00002',
        latestReadyRevisionName: 'nri-00002',
        traffic: [{ revisionName: 'nri-00001', percent: 100, latestRevision: true }],
      },
      latest,
    );
    assert.equal(serves(ready, 'nri-00001').serves, true);
    assert.equal(serves(ready, 'nri-00002').serves, true);
    const moved = service(
      {
        latestCreatedRevisionName: 'nri-00002',
        latestReadyRevisionName: 'nri-00002',
        traffic: [{ revisionName: 'nri-00002', percent: 100, latestRevision: true }],
      },
      latest,
    );
    assert.equal(serves(moved, 'nri-00002').serves, true);
    const old = serves(moved, 'nri-00001');
    assert.equal(old.serves, false);
    assert.equal(old.reason, 'revision nri-00001 is superseded: Knative Service nri routes traffic to nri-00002');
  });

  it('a roll back by pinning traffic: the pinned revision answers, the latest stops', () => {
    const pinned = service(
      {
        latestCreatedRevisionName: 'nri-00002',
        latestReadyRevisionName: 'nri-00002',
        traffic: [{ revisionName: 'nri-00001', percent: 100, latestRevision: false }],
      },
      [{ revisionName: 'nri-00001', percent: 100 }],
    );
    assert.equal(serves(pinned, 'nri-00001').serves, true);
    assert.equal(serves(pinned, 'nri-00002').serves, false);
    // A new template while pinned: the new revision may become Ready, then stands aside.
    const newWhilePinned = service(
      {
        latestCreatedRevisionName: 'nri-00003',
        latestReadyRevisionName: 'nri-00002',
        traffic: [{ revisionName: 'nri-00001', percent: 100 }],
      },
      [{ revisionName: 'nri-00001', percent: 100 }],
    );
    assert.equal(serves(newWhilePinned, 'nri-00003').serves, true);
    assert.equal(serves(newWhilePinned, 'nri-00002').serves, false);
  });

  it('a split: every revision with a share answers; a tag without a share does not', () => {
    const split = service(
      {
        latestCreatedRevisionName: 'nri-00002',
        latestReadyRevisionName: 'nri-00002',
        traffic: [
          { revisionName: 'nri-00001', percent: 50 },
          { revisionName: 'nri-00002', percent: 50 },
          { revisionName: 'nri-00000', percent: 0, tag: 'old' },
        ],
      },
      [
        { revisionName: 'nri-00001', percent: 50 },
        { latestRevision: true, percent: 50 },
      ],
    );
    assert.equal(serves(split, 'nri-00001').serves, true);
    assert.equal(serves(split, 'nri-00002').serves, true);
    assert.equal(serves(split, 'nri-00000').serves, false);
  });

  it('reads nothing from what is not a Knative Service, and tolerates odd fields', () => {
    assert.equal(readKnativeTraffic(null), undefined);
    assert.equal(readKnativeTraffic({ kind: 'ConfigMap' }), undefined);
    const odd = readKnativeTraffic({
      kind: 'Service',
      spec: { traffic: 'x' },
      status: {
        traffic: [null, { revisionName: 7 }, { revisionName: 'a', percent: '100' }],
        latestCreatedRevisionName: 3,
      },
    })!;
    assert.deepEqual(odd, { routed: [], followsLatest: true });
  });
});
