import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_NETWORKS_PER_ANNOTATION, parseNetworkSelection } from '../../functions/core/network-selection.js';

const parse = (value: string) => parseNetworkSelection(value, 'podns', 'networks');

describe('network selection: accepted forms', () => {
  const cases: Array<[string, string, Array<{ namespace: string; name: string; interface?: string }>]> = [
    ['single name', 'foo', [{ namespace: 'podns', name: 'foo' }]],
    ['namespaced', 'other/foo', [{ namespace: 'other', name: 'foo' }]],
    ['interface', 'foo@net1', [{ namespace: 'podns', name: 'foo', interface: 'net1' }]],
    ['namespace and interface', 'other/foo@net1', [{ namespace: 'other', name: 'foo', interface: 'net1' }]],
    [
      'spaces around items, / and @',
      ' other / foo @ net1 ,  bar ',
      [
        { namespace: 'other', name: 'foo', interface: 'net1' },
        { namespace: 'podns', name: 'bar' },
      ],
    ],
    [
      'duplicates count separately',
      'foo, foo',
      [
        { namespace: 'podns', name: 'foo' },
        { namespace: 'podns', name: 'foo' },
      ],
    ],
    [
      'JSON list',
      '[{"name":"foo"},{"name":"bar","namespace":"other","interface":"net2"}]',
      [
        { namespace: 'podns', name: 'foo' },
        { namespace: 'other', name: 'bar', interface: 'net2' },
      ],
    ],
    [
      'JSON with NPWG fields',
      '[{"name":"foo","ips":["10.0.0.1/24"],"mac":"02:00:00:00:00:01","default-route":["10.0.0.254"],"cni-args":{"a":1}}]',
      [{ namespace: 'podns', name: 'foo' }],
    ],
    ['JSON empty list', '[]', []],
    ['empty value', '', []],
    ['blank value', '   ', []],
    [
      'interface of 15 characters',
      'foo@abcdefghijklmno',
      [{ namespace: 'podns', name: 'foo', interface: 'abcdefghijklmno' }],
    ],
  ];
  for (const [title, value, expected] of cases) {
    it(title, () => {
      const result = parse(value);
      assert.ok(result.ok, !result.ok ? result.error : '');
      assert.deepEqual(
        result.value.map(({ source: _source, ...rest }) => rest),
        expected,
      );
    });
  }
});

describe('network selection: denied with the culprit quoted', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['two slashes', 'a/b/c', /item 1 "a\/b\/c" has more than one '\/'/],
    ['two @', 'foo@a@b', /item 1 "foo@a@b" has more than one '@'/],
    ['empty item in the middle', 'a,,b', /item 2 is empty in "a,,b"/],
    ['trailing comma', 'a,', /item 2 is empty/],
    ['upper case name', 'Foo', /item 1 "Foo": the network name must be a DNS-1123 label/],
    ['underscore in namespace', 'my_ns/foo', /the namespace \(before '\/'\) must be a DNS-1123 label/],
    ['empty namespace', '/foo', /item 1 "\/foo": the namespace \(before '\/'\) is empty/],
    ['empty name', 'ns/', /item 1 "ns\/": the network name is empty/],
    ['empty interface', 'foo-network@', /item 1 "foo-network@": the interface name \(after '@'\) is empty/],
    ['name too long', 'a'.repeat(64), /the network name is longer than 63 characters/],
    ['interface too long', 'foo@abcdefghijklmnop', /the interface name \(after '@'\) is longer than 15 characters/],
    ['interface with colon', 'foo@eth:1', /the interface name \(after '@'\) must be an interface name/],
    ['interface dot-dot', 'foo@..', /the interface name \(after '@'\) must be an interface name/],
    ['JSON null element', '[null]', /element 1 null must be an object/],
    [
      'JSON object instead of list',
      '{"name":"foo"}',
      /must be a JSON list of network selection objects, got \{"name":"foo"\}/,
    ],
    ['JSON string element', '["foo"]', /element 1 "foo" must be an object/],
    ['JSON non-string name', '[{"name":5}]', /element 1 \{"name":5\}: its "name" must be a string/],
    ['JSON missing name', '[{"namespace":"a"}]', /has no "name", which is required/],
    ['JSON path traversal name', '[{"name":"../../secrets"}]', /its "name" must be a DNS-1123 label/],
    [
      'JSON path traversal namespace',
      '[{"name":"a","namespace":"kube-system/secrets/x"}]',
      /its "namespace" must be a DNS-1123 label/,
    ],
    ['JSON interface with slash', '[{"name":"a","interface":"a/b"}]', /its "interface" must be an interface name/],
    ['JSON interface with space', '[{"name":"a","interface":"a b"}]', /its "interface"/],
    ['JSON wrong type of ips', '[{"name":"a","ips":"10.0.0.1"}]', /its "ips" must be an array/],
    ['broken JSON', '[{"name":"a"', /is not valid JSON/],
    ['URL tricks', 'foo%2Fbar', /the network name must be a DNS-1123 label/],
    ['query string', 'foo?watch=true', /the network name/],
    ['fragment', 'foo#x', /the network name/],
  ];
  for (const [title, value, expected] of cases) {
    it(title, () => {
      const result = parse(value);
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.error : '', expected);
    });
  }

  it('bounds the number of networks', () => {
    const list = Array.from({ length: MAX_NETWORKS_PER_ANNOTATION + 1 }, () => 'a').join(',');
    const result = parse(list);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.error : '', /at most 1024/);
    const json = JSON.stringify(Array.from({ length: MAX_NETWORKS_PER_ANNOTATION + 1 }, () => ({ name: 'a' })));
    assert.equal(parse(json).ok, false);
  });

  it('shortens a hostile value in the message', () => {
    const result = parse(`[{"name":"${'X'.repeat(10000)}"}]`);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.error.length < 400, 'message stays short');
  });
});
