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
  options: {
    ca: { cert: string; key: string };
    san?: string;
    days?: number;
    client?: boolean;
    /** an exact end of validity (the certificate then starts an hour ago), for a certificate that expires during a test */
    notAfter?: Date;
  },
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
  if (options.notAfter) {
    // `openssl x509` counts only whole days; `openssl ca` takes exact dates, with a database of its own.
    const utc = (date: Date) => `${date.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`;
    writeFileSync(join(dir, `${name}.index`), '');
    writeFileSync(join(dir, `${name}.serial`), '01\n');
    const config = join(dir, `${name}.cnf`);
    writeFileSync(
      config,
      `[ca]\ndefault_ca=test\n[test]\ndatabase=${name}.index\nnew_certs_dir=.\nserial=${name}.serial\ndefault_md=sha256\npolicy=any\nunique_subject=no\n[any]\ncommonName=supplied\n`,
    );
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        config,
        '-cert',
        options.ca.cert,
        '-keyfile',
        options.ca.key,
        '-in',
        csr,
        '-out',
        cert,
      ]
        .concat(['-startdate', utc(new Date(Date.now() - 3_600_000)), '-enddate', utc(options.notAfter)])
        .concat(['-extfile', ext, '-notext']),
      dir,
    );
    return { cert, key };
  }
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
