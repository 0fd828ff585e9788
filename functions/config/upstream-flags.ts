// The upstream injector's command line (`webhook -port=8443 -tls-cert-file=…`),
// as the SR-IOV Network Operator, KubeVirt's HyperConverged operator and
// upstream's own manifests start it, turned into nri's environment settings.
// Go's flag syntax: -name or --name, -name=value or -name value (never for a
// boolean), bare booleans, parsing stops at "--" or the first argument that is
// not a flag. Pure: what the service account mounts is handed in.
import { fail, ok, type Result } from '../core/result.js';

type Env = Record<string, string | undefined>;

interface FlagSpec {
  kind: 'bool' | 'string' | 'int';
  usage: string;
  /** default as upstream prints it in -help */
  default?: string;
  /** repeatable: every value is kept */
  repeat?: boolean;
}

/** glog's flags: accepted as upstream accepts them; nri always logs JSON lines to stdout. */
const GLOG: Record<string, FlagSpec> = {
  logtostderr: { kind: 'bool', usage: 'accepted for glog compatibility; nri logs JSON lines to stdout' },
  alsologtostderr: { kind: 'bool', usage: 'accepted for glog compatibility' },
  stderrthreshold: { kind: 'string', usage: 'accepted for glog compatibility' },
  log_dir: { kind: 'string', usage: 'accepted for glog compatibility' },
  log_link: { kind: 'string', usage: 'accepted for glog compatibility' },
  log_backtrace_at: { kind: 'string', usage: 'accepted for glog compatibility' },
  logbuflevel: { kind: 'int', usage: 'accepted for glog compatibility' },
  vmodule: { kind: 'string', usage: 'accepted for glog compatibility' },
  v: { kind: 'int', usage: 'log verbosity: 0-1 info, 2-4 debug, 5 and more trace (NRI_LOG_LEVEL)', default: '0' },
};

export const UPSTREAM_FLAGS: Record<string, FlagSpec> = {
  port: { kind: 'int', usage: 'HTTPS port for reviews (NRI_TLS_PORT)', default: '8443' },
  'bind-address': {
    kind: 'string',
    usage: 'address the HTTPS and health listeners bind (NRI_BIND_ADDRESS)',
    default: '0.0.0.0',
  },
  'tls-cert-file': { kind: 'string', usage: 'serving certificate, PEM (NRI_TLS_CERT_FILE)', default: 'cert.pem' },
  'tls-private-key-file': { kind: 'string', usage: 'its private key, PEM (NRI_TLS_KEY_FILE)', default: 'key.pem' },
  insecure: {
    kind: 'bool',
    usage: 'ask no client certificate; without it clients must present one signed by -client-ca',
    default: 'false',
  },
  'client-ca': {
    kind: 'string',
    repeat: true,
    usage:
      "CA bundle that signs client certificates, repeatable (NRI_TLS_CLIENT_CA_FILE); default: the service account's ca.crt",
  },
  'health-check-port': {
    kind: 'int',
    usage: 'plain HTTP port of /healthz, /readyz and /metrics (PORT); it answers no review',
    default: '8444',
  },
  'enable-http2': {
    kind: 'bool',
    usage: "refused when true: nri serves HTTP/1.1 only, as kube-apiserver's webhook client speaks",
    default: 'false',
  },
  'tls-cipher-suites': {
    kind: 'string',
    usage: 'comma-separated IANA cipher suite names for TLS 1.2 (NRI_TLS_CIPHERS); insecure suites are refused',
  },
  'tls-min-version': {
    kind: 'string',
    usage: 'VersionTLS12 or VersionTLS13 (NRI_TLS_MIN_VERSION); older versions are refused',
    default: 'VersionTLS12',
  },
  'tls-curve-preferences': { kind: 'string', usage: 'comma-separated TLS curve IDs, e.g. 29,23,24 (NRI_TLS_CURVES)' },
  injectHugepageDownApi: {
    kind: 'bool',
    usage: 'add hugepage Downward-API files and CONTAINER_NAME (NRI_INJECT_HUGEPAGE_DOWN_API)',
    default: 'false',
  },
  'network-resource-name-keys': {
    kind: 'string',
    usage: 'comma-separated NAD annotation keys that name resources (NRI_RESOURCE_NAME_KEYS)',
    default: 'k8s.v1.cni.cncf.io/resourceName',
  },
  'honor-resources': {
    kind: 'bool',
    usage: "add to a container's own resource amounts (NRI_HONOR_RESOURCES)",
    default: 'false',
  },
  ...GLOG,
};

/** The variable each flag sets: nri's own errors then name the flag the user typed (see inFlagTerms). */
const FLAG_OF_VARIABLE: Record<string, string> = {
  NRI_TLS_PORT: '-port',
  PORT: '-health-check-port',
  NRI_BIND_ADDRESS: '-bind-address',
  NRI_TLS_CERT_FILE: '-tls-cert-file',
  NRI_TLS_KEY_FILE: '-tls-private-key-file',
  NRI_TLS_CLIENT_CA_FILE: '-client-ca',
  NRI_TLS_MIN_VERSION: '-tls-min-version',
  NRI_TLS_CIPHERS: '-tls-cipher-suites',
  NRI_TLS_CURVES: '-tls-curve-preferences',
  NRI_INJECT_HUGEPAGE_DOWN_API: '-injectHugepageDownApi',
  NRI_RESOURCE_NAME_KEYS: '-network-resource-name-keys',
  NRI_HONOR_RESOURCES: '-honor-resources',
  NRI_LOG_LEVEL: '-v',
};

/** Set by `webhook` for the process it becomes: VARIABLE=-flag pairs, for the variables its flags set. */
export const FLAG_NAMES_VARIABLE = 'NRI_FLAG_NAMES';

/**
 * A message of nri's in the words of who started it: under `webhook`, each variable its flags
 * set is named as that flag (`-tls-cert-file: cannot read cert.pem`, not NRI_TLS_CERT_FILE).
 */
export function inFlagTerms(message: string, env: Env): string {
  const pairs = (env[FLAG_NAMES_VARIABLE] ?? '').split(',').map((pair) => pair.split('='));
  const flags = new Map(pairs.filter((pair) => pair.length === 2 && /^-[\w-]+$/.test(pair[1]!)) as [string, string][]);
  if (flags.size === 0) return message;
  return message.replace(/\b(?:NRI_[A-Z0-9_]+|PORT)\b/g, (variable) => flags.get(variable) ?? variable);
}

/** Go's TLS 1.2 suites that nri serves, by IANA name, as OpenSSL names them; TLS 1.3's names are the same in both. */
const SECURE_SUITES: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_AES_128_GCM_SHA256: 'TLS_AES_128_GCM_SHA256',
  TLS_AES_256_GCM_SHA384: 'TLS_AES_256_GCM_SHA384',
  TLS_CHACHA20_POLY1305_SHA256: 'TLS_CHACHA20_POLY1305_SHA256',
};

/** Why a suite Go knows is refused (it accepts them, marked insecure or not). */
function insecureSuite(name: string): string | undefined {
  if (!/^TLS_/.test(name)) return undefined;
  if (/_RC4_/.test(name)) return 'RC4 is broken';
  if (/_3DES_/.test(name)) return '3DES is weak (Sweet32)';
  if (/_CBC_/.test(name)) return 'CBC suites are open to padding-oracle attacks (Lucky13)';
  if (/^TLS_RSA_WITH_/.test(name)) return 'RSA key exchange gives no forward secrecy';
  return undefined;
}

/** Go's tls.CurveID numbers, as OpenSSL names the groups. */
const CURVES: Record<string, string> = {
  '23': 'P-256',
  '24': 'P-384',
  '25': 'P-521',
  '29': 'X25519',
  '4588': 'X25519MLKEM768',
};

const BOOLEAN = /^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/;
const isTrue = (value: string) => /^(1|t|T|TRUE|true|True)$/.test(value);

export type FlagsOutcome = { kind: 'run'; env: Record<string, string> } | { kind: 'help'; text: string };

export function usage(): string {
  const lines = Object.entries(UPSTREAM_FLAGS).map(([name, spec]) => {
    const type = spec.kind === 'bool' ? '' : ` ${spec.kind === 'int' ? 'int' : 'string'}`;
    // as Go's flag package prints them: zero values (false, 0) are not shown as defaults
    const shown = spec.default !== undefined && spec.default !== 'false' && spec.default !== '0';
    return `  -${name}${type}\n    \t${spec.usage}${shown ? ` (default ${spec.kind === 'string' ? JSON.stringify(spec.default) : spec.default})` : ''}`;
  });
  return `Usage of webhook (nri, started as the upstream Network Resources Injector):\n${lines.join('\n')}\n`;
}

/** Go's flag syntax over `argv`: every flag's values, or what is wrong. */
function scan(argv: readonly string[]): Result<Map<string, string[]>> | { help: true } {
  const values = new Map<string, string[]>();
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--') {
      if (index + 1 < argv.length)
        return fail(`unexpected argument ${JSON.stringify(argv[index + 1])}: webhook takes flags only`);
      break;
    }
    if (!argument.startsWith('-') || argument === '-')
      return fail(`unexpected argument ${JSON.stringify(argument)}: webhook takes flags only`);
    const body = argument.replace(/^--?/, '');
    if (body === '' || body.startsWith('-') || body.startsWith('=')) return fail(`bad flag syntax: ${argument}`);
    const equals = body.indexOf('=');
    const name = equals < 0 ? body : body.slice(0, equals);
    if (name === 'h' || name === 'help') return { help: true };
    const spec = UPSTREAM_FLAGS[name];
    if (!spec) return fail(`flag provided but not defined: -${name}`);
    let value: string;
    if (equals >= 0) value = body.slice(equals + 1);
    else if (spec.kind === 'bool') value = 'true';
    else if (index + 1 < argv.length) value = argv[++index]!;
    else return fail(`flag needs an argument: -${name}`);
    if (spec.kind === 'bool' && !BOOLEAN.test(value))
      return fail(`invalid boolean value ${JSON.stringify(value)} for -${name}`);
    if (spec.kind === 'int' && !/^[+-]?\d+$/.test(value))
      return fail(`invalid value ${JSON.stringify(value)} for flag -${name}: parse error`);
    const previous = values.get(name) ?? [];
    values.set(name, spec.repeat ? [...previous, value] : [value]);
  }
  return ok(values);
}

/**
 * The environment nri runs with for upstream's flags: the settings each flag
 * maps to, over what the environment already says (upstream's `NAMESPACE` as
 * NRI_NAMESPACE). `serviceAccountCa`: the mounted ca.crt, when there is one.
 */
export function parseUpstreamFlags(
  argv: readonly string[],
  env: Env,
  serviceAccountCa: string | undefined,
): Result<FlagsOutcome> {
  const scanned = scan(argv);
  if ('help' in scanned) return ok({ kind: 'help', text: usage() });
  if (!scanned.ok) return scanned;
  const given = scanned.value;
  const one = (name: string): string => given.get(name)?.[0] ?? UPSTREAM_FLAGS[name]!.default ?? '';
  const port = (name: string): Result<string> => {
    const value = Number(one(name));
    // upstream's own bounds: unprivileged ports only
    return Number.isInteger(value) && value >= 1024 && value <= 65535
      ? ok(String(value))
      : fail(`-${name}=${one(name)}: invalid port number, choose between 1024 and 65535`);
  };

  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  // Upstream reads its ConfigMap from $NAMESPACE, else kube-system.
  if (!env.NRI_NAMESPACE) out.NRI_NAMESPACE = env.NAMESPACE || 'kube-system';

  if (isTrue(one('enable-http2')))
    return fail(
      '-enable-http2: nri serves HTTP/1.1 only (kube-apiserver calls webhooks over HTTP/1.1); remove the flag',
    );
  const tlsPort = port('port');
  if (!tlsPort.ok) return tlsPort;
  const healthPort = port('health-check-port');
  if (!healthPort.ok) return healthPort;
  out.NRI_TLS_PORT = tlsPort.value;
  out.PORT = healthPort.value;
  out.NRI_HTTP_REVIEWS = 'false'; // upstream's health port serves no review
  out.NRI_BIND_ADDRESS = one('bind-address');

  const certFile = one('tls-cert-file');
  const keyFile = one('tls-private-key-file');
  if (!certFile || !keyFile)
    return fail('-tls-cert-file and -tls-private-key-file must name files: the webhook serves HTTPS only');
  out.NRI_TLS_CERT_FILE = certFile;
  out.NRI_TLS_KEY_FILE = keyFile;

  if (isTrue(one('insecure'))) {
    delete out.NRI_TLS_CLIENT_CA_FILE;
  } else {
    const authorities = given.get('client-ca') ?? (serviceAccountCa ? [serviceAccountCa] : []);
    if (authorities.length === 0)
      return fail(
        '-insecure is false, so client certificates are required, but no -client-ca was given and no service account ca.crt is mounted; give -client-ca, or -insecure=true',
      );
    out.NRI_TLS_CLIENT_CA_FILE = authorities.join(',');
  }

  const version = one('tls-min-version');
  if (version === 'VersionTLS12' || version === 'VersionTLS13')
    out.NRI_TLS_MIN_VERSION = version === 'VersionTLS13' ? '1.3' : '1.2';
  else if (version === 'VersionTLS10' || version === 'VersionTLS11')
    return fail(
      `-tls-min-version=${version}: TLS 1.0 and 1.1 are deprecated (RFC 8996) and refused; use VersionTLS12 or VersionTLS13`,
    );
  else return fail(`-tls-min-version=${version}: expected VersionTLS12 or VersionTLS13`);

  const suites = one('tls-cipher-suites');
  if (suites) {
    const names: string[] = [];
    for (const suite of suites
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean)) {
      const why = insecureSuite(suite);
      if (why) return fail(`-tls-cipher-suites: ${suite} is refused: ${why}`);
      const openssl = SECURE_SUITES[suite];
      if (!openssl) return fail(`-tls-cipher-suites: unknown cipher suite ${suite}`);
      names.push(openssl);
    }
    out.NRI_TLS_CIPHERS = [...new Set(names)].join(':');
  }

  const curves = one('tls-curve-preferences');
  if (curves) {
    const names: string[] = [];
    for (const id of curves
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean)) {
      const curve = CURVES[id];
      if (!curve)
        return fail(
          `-tls-curve-preferences: unknown curve ID ${id} (known: ${Object.entries(CURVES)
            .map(([key, name]) => `${key} ${name}`)
            .join(', ')})`,
        );
      names.push(curve);
    }
    out.NRI_TLS_CURVES = names.join(':');
  }

  if (given.has('injectHugepageDownApi'))
    out.NRI_INJECT_HUGEPAGE_DOWN_API = String(isTrue(one('injectHugepageDownApi')));
  if (given.has('honor-resources')) out.NRI_HONOR_RESOURCES = String(isTrue(one('honor-resources')));
  if (given.has('network-resource-name-keys')) out.NRI_RESOURCE_NAME_KEYS = one('network-resource-name-keys');
  if (given.has('v')) {
    const level = Number(one('v'));
    out.NRI_LOG_LEVEL = level >= 5 ? 'trace' : level >= 2 ? 'debug' : 'info';
  }
  const setByFlags = Object.entries(FLAG_OF_VARIABLE).filter(
    ([variable, flag]) => given.has(flag.slice(1)) || (out[variable] !== undefined && out[variable] !== env[variable]),
  );
  out[FLAG_NAMES_VARIABLE] = setByFlags.map(([variable, flag]) => `${variable}=${flag}`).join(',');
  return ok({ kind: 'run', env: out });
}
