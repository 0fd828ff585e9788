// Test PKI made with the openssl CLI: a CA, a server certificate for
// localhost/127.0.0.1, and a client certificate, in a temporary directory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** PEM text of the CA certificate */
  caPem: string;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

export function issue(
  dir: string,
  name: string,
  subject: string,
  options: { ca: { cert: string; key: string }; san?: string; days?: number; client?: boolean },
): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr], dir);
  const lines = [
    options.client ? 'extendedKeyUsage=clientAuth' : 'extendedKeyUsage=serverAuth',
    'basicConstraints=CA:FALSE',
  ];
  if (options.san) lines.push(`subjectAltName=${options.san}`);
  writeFileSync(ext, `${lines.join('\n')}\n`);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      options.ca.cert,
      '-CAkey',
      options.ca.key,
      '-CAcreateserial',
      '-days',
      String(options.days ?? 2),
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    dir,
  );
  return { cert, key };
}

export function createPki(prefix = 'nri-pki-'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey], dir);
  openssl(['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=nri-test-ca', '-days', '2', '-out', caCert], dir);
  const ca = { cert: caCert, key: caKey };
  const server = issue(dir, 'server', '/CN=localhost', { ca, san: 'DNS:localhost,IP:127.0.0.1' });
  const client = issue(dir, 'client', '/CN=kube-apiserver', { ca, client: true });
  return {
    dir,
    caCert,
    caKey,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    caPem: readFileSync(caCert, 'utf8'),
  };
}
