// The control-switch document and the quantity arithmetic, rule by rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { effectiveSwitches, parseControlSwitches } from '../../functions/core/control-switches.js';
import { isZeroQuantity, wholeQuantity } from '../../functions/core/quantity.js';
import { defaultSwitches } from '../support/fixtures.js';

describe('control switches', () => {
  it('reads features and user-defined injections', () => {
    const parsed = parseControlSwitches(
      JSON.stringify({
        features: { enableHugePageDownApi: true, enableHonorExistingResources: false },
        'user-defined-injections': {
          'feature.pod.kubernetes.io/sriov': {
            op: 'add',
            path: '/metadata/annotations',
            value: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' },
          },
        },
      }),
    );
    assert.ok(parsed.ok);
    const switches = effectiveSwitches({ ...defaultSwitches, honorExistingResources: true }, parsed.value);
    assert.equal(switches.hugePageDownApi, true);
    assert.equal(switches.honorExistingResources, false, 'the ConfigMap wins over the environment');
    assert.deepEqual(
      [...switches.userDefinedInjections],
      [['feature.pod.kubernetes.io/sriov', { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' }]],
    );
  });

  it('falls back to the environment for what the document does not say', () => {
    const parsed = parseControlSwitches('{}');
    assert.ok(parsed.ok);
    assert.deepEqual(
      effectiveSwitches({ ...defaultSwitches, hugePageDownApi: true }, parsed.value).hugePageDownApi,
      true,
    );
    assert.equal(effectiveSwitches(defaultSwitches, undefined), defaultSwitches);
  });

  it('keeps working on a document written for upstream: ignores and names the keys it does not know', () => {
    // Shapes upstream's own e2e suite writes.
    const parsed = parseControlSwitches(
      JSON.stringify({
        networkResourceNameKeys: ['k8s.v1.cni.cncf.io/resourceName', 'k8s.v1.cni.cncf.io/bridgeName'],
        features: {
          enableHugePageDownApi: true,
          enableCustomizedInjection: true,
          enableResourceName: false,
          someFutureFeature: 'on',
        },
        'user-defined-injections': {
          'feature.pod.kubernetes.io/sriov-network': {
            op: 'add',
            path: '/metadata/annotations',
            value: { 'k8s.v1.cni.cncf.io/networks': 'foo-network' },
          },
        },
      }),
    );
    assert.ok(parsed.ok, !parsed.ok ? parsed.error : '');
    assert.equal(parsed.value.hugePageDownApi, true);
    assert.deepEqual([...parsed.value.userDefinedInjections.keys()], ['feature.pod.kubernetes.io/sriov-network']);
    assert.deepEqual(parsed.value.ignoredKeys, [
      'networkResourceNameKeys',
      'features.enableCustomizedInjection',
      'features.enableResourceName',
      'features.someFutureFeature',
    ]);
  });

  const rejected: Array<[string, string, RegExp]> = [
    ['not JSON', '{features:', /not valid JSON/],
    [
      'a string feature',
      '{"features":{"enableHugePageDownApi":"yes"}}',
      /enableHugePageDownApi" must be true or false/,
    ],
    [
      'a known feature of the wrong type beside unknown keys',
      '{"networkResourceNameKeys":["a"],"features":{"enableCustomizedInjection":true,"enableHonorExistingResources":1}}',
      /enableHonorExistingResources" must be true or false/,
    ],
    ['features that are not an object', '{"features":[true]}', /features" must be an object/],
    [
      'an op other than add',
      '{"user-defined-injections":{"a":{"op":"remove","path":"/metadata/annotations","value":{"x":"y"}}}}',
      /op" must be "add"/,
    ],
    [
      'another path',
      '{"user-defined-injections":{"a":{"op":"add","path":"/spec","value":{"x":"y"}}}}',
      /path" must be "\/metadata\/annotations"/,
    ],
    [
      'a non-string annotation value',
      '{"user-defined-injections":{"a":{"op":"add","path":"/metadata/annotations","value":{"x":1}}}}',
      /must be a string/,
    ],
    [
      'an invalid label key',
      '{"user-defined-injections":{"bad label":{"op":"add","path":"/metadata/annotations","value":{"x":"y"}}}}',
      /label "bad label" is not a valid label key/,
    ],
    [
      'an invalid annotation key',
      '{"user-defined-injections":{"a":{"op":"add","path":"/metadata/annotations","value":{"__proto__":"y"}}}}',
      /adds annotation "__proto__", which is not a valid annotation key/,
    ],
    ['a JSON list', '[]', /must be an object/],
  ];
  for (const [title, text, message] of rejected) {
    it(`rejects ${title} whole`, () => {
      const parsed = parseControlSwitches(text);
      assert.equal(parsed.ok, false);
      assert.match(!parsed.ok ? parsed.error : '', message);
    });
  }
});

describe('quantities', () => {
  const whole: Array<[string, bigint | undefined]> = [
    ['3', 3n],
    ['0', 0n],
    ['1k', 1000n],
    ['2Ki', 2048n],
    ['1e3', 1000n],
    ['1500m', undefined],
    ['2000m', 2n],
    ['1.5', undefined],
    ['abc', undefined],
    ['', undefined],
  ];
  for (const [text, expected] of whole)
    it(`reads ${JSON.stringify(text)} as ${expected}`, () => assert.equal(wholeQuantity(text), expected));

  it('knows zero in any unit', () => {
    for (const zero of ['0', '0Gi', '0.0', '0m']) assert.equal(isZeroQuantity(zero), true, zero);
    for (const nonZero of ['1Gi', '512Mi', '1m', 'garbage']) assert.equal(isZeroQuantity(nonZero), false, nonZero);
  });
});
