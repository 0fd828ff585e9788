// The serving certificate, key and optional client CAs, read from files that
// cert-manager writes and the kubelet swaps atomically (a "..data" symlink
// rename). Watched through the directory, re-checked on a timer; a broken new
// pair never replaces a working one.
import { createHash, X509Certificate } from 'node:crypto';
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsSettings } from '../../config/settings.js';

/** A file's bytes; an error naming the variable that points at it. */
function readNamed(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`${variable}: cannot read ${file}: ${(error as Error).message}`);
  }
}

export interface TlsMaterial {
  options: SecureContextOptions;
  notAfter: Date;
  fingerprint: string;
}

/** Reads and checks the files; throws with a readable reason when they do not make a usable pair. */
export function loadTlsMaterial(tls: TlsSettings): TlsMaterial {
  const cert = readNamed('NRI_TLS_CERT_FILE', tls.certFile);
  const key = readNamed('NRI_TLS_KEY_FILE', tls.keyFile);
  const ca =
    tls.clientCaFiles.length > 0
      ? tls.clientCaFiles.map((file) => readNamed('NRI_TLS_CLIENT_CA_FILE', file))
      : undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (error) {
    throw new Error(`NRI_TLS_CERT_FILE: ${tls.certFile} holds no readable certificate: ${(error as Error).message}`);
  }
  // `ca` is what client certificates are checked against. Without client CAs
  // it is an empty list, never left out: left out, OpenSSL is handed Node's
  // ~140 bundled public roots, whose parsing was ~35 ms of every cold start,
  // for a listener that asks no client for a certificate.
  const options: SecureContextOptions = {
    cert,
    key,
    minVersion: tls.minVersion,
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    ...(tls.curves ? { ecdhCurve: tls.curves } : {}),
    ca: ca ?? [],
  };
  // createSecureContext checks that the key matches the certificate (the ciphers were checked with the settings).
  try {
    createSecureContext(options);
  } catch (error) {
    throw new Error(
      `NRI_TLS_CERT_FILE/NRI_TLS_KEY_FILE: ${tls.certFile} and ${tls.keyFile} are not a usable pair: ${(error as Error).message}`,
    );
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() < Date.now())
    throw new Error(`NRI_TLS_CERT_FILE: the certificate in ${tls.certFile} expired at ${notAfter.toISOString()}`);
  const fingerprint = createHash('sha256')
    .update(cert)
    .update(key)
    .update(ca ? Buffer.concat(ca) : '')
    .digest('hex');
  return { options, notAfter, fingerprint };
}

export interface TlsWatcher {
  stop(): void;
}

/** Calls onChange with new material whenever the files change to a valid pair; onError otherwise. */
export function watchTlsMaterial(
  tls: TlsSettings,
  current: () => TlsMaterial,
  onChange: (material: TlsMaterial) => void,
  onError: (error: Error) => void,
  pollMs = 5000,
): TlsWatcher {
  let lastFailure = '';
  const check = () => {
    let next: TlsMaterial;
    try {
      next = loadTlsMaterial(tls);
    } catch (error) {
      const message = (error as Error).message;
      if (message !== lastFailure) onError(error as Error); // say it once per distinct failure
      lastFailure = message;
      return;
    }
    lastFailure = '';
    if (next.fingerprint !== current().fingerprint) onChange(next);
  };
  let debounce: NodeJS.Timeout | undefined;
  const soon = () => {
    clearTimeout(debounce);
    debounce = setTimeout(check, 200);
    debounce.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const directory of new Set([tls.certFile, tls.keyFile, ...tls.clientCaFiles].map((file) => dirname(file)))) {
    try {
      const watcher = watch(directory, soon);
      watcher.on('error', () => undefined); // the timer below still notices changes
      watchers.push(watcher);
    } catch {
      /* directory not watchable: the timer is enough */
    }
  }
  const timer = setInterval(check, pollMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      clearTimeout(debounce);
      for (const watcher of watchers) watcher.close();
    },
  };
}
