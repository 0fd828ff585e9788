// Upstream's `webhook` command line, as its deployers write it, turned into
// nri's settings; and Go's flag syntax, refusals and usage.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inFlagTerms, parseUpstreamFlags } from '../../functions/config/upstream-flags.js';
import { ARGUMENT_LISTS } from '../support/upstream-args.js';

const SA_CA = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';
/** `ca`: the service account's ca.crt, or null where none is mounted. */
const run = (argv: string[], env: Record<string, string> = {}, ca: string | null = SA_CA) => {
  const outcome = parseUpstreamFlags(argv, env, ca ?? undefined);
  assert.ok(outcome.ok, outcome.ok ? '' : outcome.error);
  assert.equal(outcome.value.kind, 'run');
  return (outcome.value as { env: Record<string, string> }).env;
};
const refused = (argv: string[], ca: string | null = SA_CA) => {
  const outcome = parseUpstreamFlags(argv, {}, ca ?? undefined);
  assert.equal(outcome.ok, false, `accepted: ${argv.join(' ')}`);
  return outcome.ok ? '' : outcome.error;
};

describe('upstream flags', () => {
  it("upstream's own manifest: HTTPS on 8443, health on 8444 without reviews, client certificates required against the service account's CA", () => {
    const env = run(ARGUMENT_LISTS.upstream, { NAMESPACE: 'sriov' });
    assert.equal(env.NRI_TLS_PORT, '8443');
    assert.equal(env.NRI_BIND_ADDRESS, '0.0.0.0');
    assert.equal(env.NRI_TLS_CERT_FILE, '/etc/tls/tls.crt');
    assert.equal(env.NRI_TLS_KEY_FILE, '/etc/tls/tls.key');
    assert.equal(env.PORT, '8444');
    assert.equal(env.NRI_HTTP_REVIEWS, 'false');
    assert.equal(env.NRI_TLS_CLIENT_CA_FILE, SA_CA);
    assert.equal(env.NRI_TLS_MIN_VERSION, '1.2');
    assert.equal(env.NRI_NAMESPACE, 'sriov', "NAMESPACE names the ConfigMap's namespace");
  });

  it('the SR-IOV Network Operator: --double-dash flags, --insecure=true asks no client certificate', () => {
    const env = run(ARGUMENT_LISTS.sriovOperator);
    assert.equal(env.NRI_TLS_PORT, '6443');
    assert.equal(env.NRI_TLS_CLIENT_CA_FILE, undefined);
    assert.equal(env.NRI_NAMESPACE, 'kube-system', "upstream's default without NAMESPACE");
  });

  it("KubeVirt's operator: IANA cipher names become OpenSSL's, upstream's default certificate paths", () => {
    const env = run(ARGUMENT_LISTS.kubevirt, { NAMESPACE: 'kubevirt-hyperconverged' });
    assert.equal(env.NRI_TLS_CIPHERS, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256');
    assert.equal(env.NRI_TLS_CERT_FILE, 'cert.pem');
    assert.equal(env.NRI_TLS_KEY_FILE, 'key.pem');
    assert.equal(env.PORT, '8444');
  });

  it('maps the rest: repeated -client-ca, TLS 1.3, curve IDs, features, verbosity; an existing NRI_ variable is kept', () => {
    const env = run(
      [
        '-client-ca',
        '/a.pem',
        '-client-ca=/b.pem',
        '-tls-min-version=VersionTLS13',
        '-tls-curve-preferences=29,23,24',
        '-injectHugepageDownApi',
        '-honor-resources=true',
        '-network-resource-name-keys=a.io/x,b.io/y',
        '-v=4',
      ],
      { NRI_NAMESPACE: 'mine', NAMESPACE: 'other' },
    );
    assert.equal(env.NRI_TLS_CLIENT_CA_FILE, '/a.pem,/b.pem');
    assert.equal(env.NRI_TLS_MIN_VERSION, '1.3');
    assert.equal(env.NRI_TLS_CURVES, 'X25519:P-256:P-384');
    assert.equal(env.NRI_INJECT_HUGEPAGE_DOWN_API, 'true');
    assert.equal(env.NRI_HONOR_RESOURCES, 'true');
    assert.equal(env.NRI_RESOURCE_NAME_KEYS, 'a.io/x,b.io/y');
    assert.equal(env.NRI_LOG_LEVEL, 'debug');
    assert.equal(env.NRI_NAMESPACE, 'mine');
  });

  it("follows Go's flag syntax: a separate value, bare and explicit booleans, -- ends the flags", () => {
    assert.equal(run(['-port', '9443']).NRI_TLS_PORT, '9443');
    assert.equal(run(['--insecure', '--']).NRI_TLS_CLIENT_CA_FILE, undefined);
    assert.equal(run(['-insecure=false']).NRI_TLS_CLIENT_CA_FILE, SA_CA);
    assert.equal(run(['-insecure=F']).NRI_TLS_CLIENT_CA_FILE, SA_CA);
  });

  it('refuses, naming the flag and why: unknown flags, missing values, bad booleans and ports, HTTP/2, old TLS, insecure ciphers, unknown curves', () => {
    assert.match(refused(['-nope']), /^flag provided but not defined: -nope$/);
    assert.match(refused(['-port']), /^flag needs an argument: -port$/);
    assert.match(refused(['-insecure=maybe']), /invalid boolean value "maybe" for -insecure/);
    assert.match(refused(['-port=443']), /-port=443: invalid port number, choose between 1024 and 65535/);
    assert.match(refused(['-port=x']), /invalid value "x" for flag -port/);
    assert.match(refused(['-enable-http2']), /-enable-http2: nri serves HTTP\/1\.1 only/);
    assert.match(refused(['-tls-min-version=VersionTLS11']), /TLS 1\.0 and 1\.1 are deprecated \(RFC 8996\)/);
    assert.match(
      refused(['-tls-cipher-suites=TLS_RSA_WITH_AES_128_GCM_SHA256']),
      /TLS_RSA_WITH_AES_128_GCM_SHA256 is refused: RSA key exchange gives no forward secrecy/,
    );
    assert.match(refused(['-tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA']), /CBC suites/);
    assert.match(refused(['-tls-cipher-suites=TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA']), /3DES/);
    assert.match(refused(['-tls-cipher-suites=TLS_MADE_UP']), /unknown cipher suite TLS_MADE_UP/);
    assert.match(refused(['-tls-curve-preferences=99']), /unknown curve ID 99/);
    assert.match(refused(['serve']), /unexpected argument "serve"/);
    assert.match(refused(['---port=1']), /bad flag syntax/);
  });

  it('refuses to require client certificates it has no CA for', () => {
    assert.match(
      refused([], null),
      /-insecure is false, so client certificates are required, but no -client-ca was given/,
    );
    assert.equal(run(['-insecure'], {}, null).NRI_TLS_CLIENT_CA_FILE, undefined);
  });

  it('answers -h and -help with the usage, naming every flag and the variable it sets', () => {
    for (const flag of ['-h', '--help', '-help']) {
      const outcome = parseUpstreamFlags([flag], {}, SA_CA);
      assert.ok(outcome.ok && outcome.value.kind === 'help');
      const text = (outcome.value as { text: string }).text;
      for (const name of [
        '-port int',
        '-insecure',
        '-client-ca string',
        '-health-check-port int',
        '-tls-cipher-suites string',
        '-v int',
      ])
        assert.ok(text.includes(`  ${name}\n`), name);
      assert.match(text, /\(NRI_TLS_PORT\) \(default 8443\)/);
    }
  });

  it('puts errors in the terms of the flags that set a variable, and keeps a variable the user set', () => {
    const env = run(['-tls-cert-file=/tls/c.pem', '-tls-private-key-file=/tls/k.pem', '-port=9443'], {
      NRI_MAX_IN_FLIGHT: '64',
    });
    assert.equal(
      inFlagTerms('NRI_TLS_CERT_FILE/NRI_TLS_KEY_FILE: not a pair; port 9443 (NRI_TLS_PORT) is in use', env),
      '-tls-cert-file/-tls-private-key-file: not a pair; port 9443 (-port) is in use',
    );
    assert.equal(inFlagTerms('NRI_MAX_IN_FLIGHT=64 is too small', env), 'NRI_MAX_IN_FLIGHT=64 is too small');
    // An honour flag not given and not set: its variable is the user's own, if anything.
    assert.equal(inFlagTerms('NRI_HONOR_RESOURCES: bad', env), 'NRI_HONOR_RESOURCES: bad');
    // Started as nri, not as webhook: unchanged.
    assert.equal(inFlagTerms('NRI_TLS_PORT in use', {}), 'NRI_TLS_PORT in use');
  });
});
