// Environment -> typed settings. Takes the environment as an argument; reads no files.
// A bad value is an error naming the variable, and startup stops on it.
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { isDnsLabel, isDnsSubdomain, isQualifiedName } from '../core/names.js';
import { fail, ok, quote, type Result } from '../core/result.js';
import type { CoreSettings, Switches } from '../core/types.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface TlsSettings {
  certFile: string;
  keyFile: string;
  port: number;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ciphers?: string;
  /** OpenSSL group list, e.g. "X25519:P-256" */
  curves?: string;
  clientCaFiles: string[];
}

export interface Settings {
  port: number;
  /** the address both listeners bind; undefined: every address */
  bindAddress?: string;
  /** whether the plain-HTTP port answers reviews (local runs) or only probes and metrics (a cluster) */
  httpReviews: boolean;
  core: CoreSettings;
  /** feature switches from the environment; the ConfigMap may override them */
  envSwitches: Switches;
  /** undefined: the namespace we run in (service account), else kube-system */
  namespace?: string;
  controlSwitchesConfigMap: string;
  /** NADs from files instead of a cluster */
  nadsPath?: string;
  apiTimeoutMs: number;
  watchTimeoutSeconds: number;
  /** the NAD list as a watch's initial events (WatchList) where kube-apiserver offers it */
  streamingList: boolean;
  /** how often the control-switch ConfigMap is read with a GET where RBAC allows no list/watch of it */
  switchesPollSeconds: number;
  maxBodyBytes: number;
  maxInFlight: number;
  shutdownTimeoutMs: number;
  /** how long kube-apiserver may keep one HTTPS connection before nri's answer closes it; 0: no limit */
  maxConnectionAgeSeconds: number;
  tls?: TlsSettings;
  logLevel: LogLevel;
  /** the Knative Service and revision this replica belongs to, when its readiness follows their traffic */
  knative?: { service: string; revision: string };
}

type Env = Record<string, string | undefined>;

class SettingsError extends Error {}

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = text(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new SettingsError(`${name}=${quote(env[name])} must be true or false`);
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = text(env, name);
  if (value === undefined) return fallback;
  const number = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new SettingsError(`${name}=${quote(value)} must be a whole number from ${min} to ${max}`);
  }
  return number;
}

/**
 * A comma-separated list. Where an empty list would mean something else than the
 * default (no resource keys, no excluded namespace), a variable set to nothing is
 * refused rather than silently read as unset.
 */
function list(
  env: Env,
  name: string,
  fallback: string[],
  check: (item: string) => boolean,
  what: string,
  options: { refuseEmpty?: boolean } = {},
): string[] {
  const value = text(env, name);
  if (value === undefined && options.refuseEmpty && env[name] !== undefined) {
    throw new SettingsError(
      `${name} is set but empty: unset it for the default (${fallback.join(',')}), or name at least one ${what.replace(/^an? /, '')}`,
    );
  }
  if (value === undefined) return fallback;
  const items = value.split(',').map((item) => item.trim());
  const bad = items.find((item) => !check(item));
  if (bad !== undefined) throw new SettingsError(`${name}: ${quote(bad)} is not ${what}`);
  return items;
}

function dnsLabel(env: Env, name: string): string | undefined {
  const value = text(env, name);
  if (value !== undefined && !isDnsLabel(value))
    throw new SettingsError(`${name}=${quote(value)} must be a DNS-1123 label`);
  return value;
}

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** OpenSSL's own word on a cipher or curve list; pure (no files, no sockets). */
function tlsOptionProblem(option: { ciphers: string } | { ecdhCurve: string }): string | undefined {
  try {
    createSecureContext(option);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Every TLS variable is checked whether or not a certificate is set, so a typo never waits for the day TLS is turned on. */
function tlsSettings(env: Env): TlsSettings | undefined {
  const certFile = text(env, 'NRI_TLS_CERT_FILE');
  const keyFile = text(env, 'NRI_TLS_KEY_FILE');
  const port = integer(env, 'NRI_TLS_PORT', 8443, 0, 65535);
  const minVersion = text(env, 'NRI_TLS_MIN_VERSION') ?? '1.2';
  if (minVersion !== '1.2' && minVersion !== '1.3')
    throw new SettingsError(`NRI_TLS_MIN_VERSION=${quote(minVersion)} must be 1.2 or 1.3`);
  const ciphers = text(env, 'NRI_TLS_CIPHERS');
  const cipherError = ciphers === undefined ? undefined : tlsOptionProblem({ ciphers });
  if (cipherError !== undefined)
    throw new SettingsError(`NRI_TLS_CIPHERS=${quote(ciphers)} is not a cipher list OpenSSL accepts: ${cipherError}`);
  const curves = text(env, 'NRI_TLS_CURVES');
  const curveError = curves === undefined ? undefined : tlsOptionProblem({ ecdhCurve: curves });
  if (curveError !== undefined)
    throw new SettingsError(
      `NRI_TLS_CURVES=${quote(curves)} is not a curve list OpenSSL accepts (names such as X25519:P-256): ${curveError}`,
    );
  const clientCaFiles = list(env, 'NRI_TLS_CLIENT_CA_FILE', [], (item) => item !== '', 'a file path');
  if (!certFile && !keyFile) {
    if (clientCaFiles.length > 0)
      throw new SettingsError('NRI_TLS_CLIENT_CA_FILE needs NRI_TLS_CERT_FILE and NRI_TLS_KEY_FILE');
    return undefined;
  }
  if (!certFile || !keyFile)
    throw new SettingsError(
      `${certFile ? 'NRI_TLS_KEY_FILE' : 'NRI_TLS_CERT_FILE'} must be set together with ${certFile ? 'NRI_TLS_CERT_FILE' : 'NRI_TLS_KEY_FILE'}`,
    );
  const tls: TlsSettings = {
    certFile,
    keyFile,
    port,
    minVersion: minVersion === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    clientCaFiles,
  };
  if (ciphers) tls.ciphers = ciphers;
  if (curves) tls.curves = curves;
  return tls;
}

/**
 * Knative sets K_SERVICE and K_REVISION in every revision's pods. With both, readiness follows
 * the Service's traffic (core/knative-traffic.ts) unless NRI_FOLLOW_KNATIVE_TRAFFIC=false.
 */
function knativeRevision(env: Env): Settings['knative'] {
  if (!bool(env, 'NRI_FOLLOW_KNATIVE_TRAFFIC', true)) return undefined;
  const service = dnsLabel(env, 'K_SERVICE');
  const revision = dnsLabel(env, 'K_REVISION');
  return service && revision ? { service, revision } : undefined;
}

export function parseSettings(env: Env): Result<Settings> {
  try {
    const logLevel = (text(env, 'NRI_LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
    if (!LOG_LEVELS.includes(logLevel))
      throw new SettingsError(`NRI_LOG_LEVEL=${quote(env.NRI_LOG_LEVEL)} must be one of ${LOG_LEVELS.join(', ')}`);
    const settings: Settings = {
      port: integer(env, 'PORT', 8080, 0, 65535),
      httpReviews: bool(env, 'NRI_HTTP_REVIEWS', true),
      core: {
        resourceNameKeys: list(
          env,
          'NRI_RESOURCE_NAME_KEYS',
          ['k8s.v1.cni.cncf.io/resourceName'],
          isQualifiedName,
          'an annotation key',
          { refuseEmpty: true },
        ),
        excludedNamespaces: new Set(
          list(env, 'NRI_EXCLUDE_NAMESPACES', ['kube-system'], isDnsLabel, 'a namespace name', { refuseEmpty: true }),
        ),
        multusNamespace: dnsLabel(env, 'NRI_MULTUS_NAMESPACE') ?? 'kube-system',
      },
      envSwitches: {
        honorExistingResources: bool(env, 'NRI_HONOR_RESOURCES', false),
        hugePageDownApi: bool(env, 'NRI_INJECT_HUGEPAGE_DOWN_API', false),
        userDefinedInjections: new Map(),
      },
      controlSwitchesConfigMap: text(env, 'NRI_CONTROL_SWITCHES_CONFIGMAP') ?? 'nri-control-switches',
      apiTimeoutMs: integer(env, 'NRI_API_TIMEOUT_MS', 3000, 100, 9000),
      watchTimeoutSeconds: integer(env, 'NRI_WATCH_TIMEOUT_SECONDS', 300, 1, 3600),
      streamingList: bool(env, 'NRI_STREAMING_LIST', true),
      switchesPollSeconds: integer(env, 'NRI_CONTROL_SWITCHES_POLL_SECONDS', 30, 1, 3600),
      maxBodyBytes: integer(env, 'NRI_MAX_BODY_BYTES', 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
      maxInFlight: integer(env, 'NRI_MAX_IN_FLIGHT', 512, 1, 100000),
      shutdownTimeoutMs: integer(env, 'NRI_SHUTDOWN_TIMEOUT_MS', 20000, 0, 600000),
      maxConnectionAgeSeconds: integer(env, 'NRI_MAX_CONNECTION_AGE_SECONDS', 15, 0, 3600),
      logLevel,
    };
    const bindAddress = text(env, 'NRI_BIND_ADDRESS');
    if (bindAddress !== undefined && isIP(bindAddress) === 0)
      throw new SettingsError(`NRI_BIND_ADDRESS=${quote(bindAddress)} must be an IPv4 or IPv6 address`);
    if (bindAddress) settings.bindAddress = bindAddress;
    const namespace = dnsLabel(env, 'NRI_NAMESPACE');
    if (namespace) settings.namespace = namespace;
    if (!isDnsSubdomain(settings.controlSwitchesConfigMap)) {
      throw new SettingsError(
        `NRI_CONTROL_SWITCHES_CONFIGMAP=${quote(settings.controlSwitchesConfigMap)} must be a ConfigMap name`,
      );
    }
    const nadsPath = text(env, 'NRI_NADS');
    if (nadsPath) settings.nadsPath = nadsPath;
    const tls = tlsSettings(env);
    if (tls) settings.tls = tls;
    const knative = knativeRevision(env);
    if (knative) settings.knative = knative;
    return ok(settings);
  } catch (error) {
    if (error instanceof SettingsError) return fail(error.message);
    throw error;
  }
}
