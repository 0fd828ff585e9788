// The registration half of `nri check`: nri's MutatingWebhookConfiguration, where it sends
// reviews, and whether its caBundle verifies the certificate nri serves there. Pure: the
// adapters fetch the objects and the served certificate.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { isObject } from '../json.js';
import { count, result, type CheckResult } from './report.js';

export const WEBHOOK_CONFIGURATION = 'nri-network-resources-injector';

/** Where kube-apiserver sends nri's reviews. */
export type WebhookTarget =
  | { kind: 'service'; namespace: string; name: string; port: number; path: string }
  | { kind: 'url'; url: string };

/** nri's webhook as registered. */
export interface Registration {
  webhookName: string;
  target: WebhookTarget;
  /** PEM text of the caBundle; '' when there is none */
  caBundle: string;
  failurePolicy: string;
  namespaceSelector: unknown;
  objectSelector: unknown;
}

export const targetLabel = (target: WebhookTarget): string =>
  target.kind === 'url' ? target.url : `service ${target.namespace}/${target.name}:${target.port}${target.path}`;

/** The host name the served certificate must be valid for, as kube-apiserver checks it. */
export const targetHost = (target: WebhookTarget): string =>
  target.kind === 'url'
    ? new URL(target.url).hostname.replace(/^\[|\]$/g, '')
    : `${target.name}.${target.namespace}.svc`;

function registrationOf(webhook: Record<string, unknown>): Registration | string {
  const name = typeof webhook.name === 'string' ? webhook.name : '(unnamed)';
  const clientConfig = isObject(webhook.clientConfig) ? webhook.clientConfig : {};
  let target: WebhookTarget;
  if (isObject(clientConfig.service)) {
    const { namespace, name: service, port, path } = clientConfig.service;
    if (typeof namespace !== 'string' || typeof service !== 'string')
      return `webhook ${name} names a service without namespace or name`;
    target = {
      kind: 'service',
      namespace,
      name: service,
      port: typeof port === 'number' ? port : 443,
      path: typeof path === 'string' ? path : '/',
    };
  } else if (typeof clientConfig.url === 'string') target = { kind: 'url', url: clientConfig.url };
  else return `webhook ${name} has neither clientConfig.service nor clientConfig.url`;
  return {
    webhookName: name,
    target,
    caBundle: typeof clientConfig.caBundle === 'string' ? Buffer.from(clientConfig.caBundle, 'base64').toString() : '',
    failurePolicy: typeof webhook.failurePolicy === 'string' ? webhook.failurePolicy : 'Fail',
    namespaceSelector: webhook.namespaceSelector,
    objectSelector: webhook.objectSelector,
  };
}

/** The webhook check: the configuration exists, names where to send reviews and carries a caBundle. */
export function checkRegistration(
  configurationName: string,
  configuration: unknown,
): { check: CheckResult; registration?: Registration } {
  const where = `MutatingWebhookConfiguration ${configurationName}`;
  if (configuration === undefined)
    return {
      check: result(
        'webhook',
        'fail',
        `${where} does not exist: kube-apiserver sends nri no pod, and pods are created without their devices`,
        [],
        'apply the install overlay again (README, "Install"), or name the configuration with --webhook-configuration',
      ),
    };
  const webhooks = isObject(configuration) && Array.isArray(configuration.webhooks) ? configuration.webhooks : [];
  const webhook = webhooks.find(isObject);
  if (!webhook)
    return { check: result('webhook', 'fail', `${where} holds no webhook`, [], 'apply the install overlay again') };
  const registration = registrationOf(webhook);
  if (typeof registration === 'string')
    return { check: result('webhook', 'fail', `${where}: ${registration}`, [], 'apply the install overlay again') };
  const details = [
    `webhook ${registration.webhookName} calls ${targetLabel(registration.target)}`,
    `failurePolicy ${registration.failurePolicy}${
      registration.failurePolicy === 'Ignore'
        ? ': a pod created while nri cannot answer is admitted without its devices (the pods check finds them)'
        : ''
    }`,
  ];
  if (registration.caBundle.trim() === '')
    return {
      check: result(
        'webhook',
        'fail',
        `${where} has no caBundle: kube-apiserver cannot verify nri and every review fails`,
        details,
        'check that cert-manager’s cainjector runs and that the annotation cert-manager.io/inject-ca-from names the Certificate nri-webhook-serving in nri’s namespace',
      ),
      registration,
    };
  return { check: result('webhook', 'ok', `${where} is registered`, details), registration };
}

/** A DER certificate as PEM text. */
export const pemOf = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;

/** Every certificate in a PEM text. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

/** A distinguished name on one line; cert-manager's certificates often have an empty subject. */
const dn = (name: string | undefined) => (name ? name.replace(/\n/g, ', ') : '(empty)');

const issuedBy = (certificate: X509Certificate, issuer: X509Certificate) =>
  certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);

const DAY_MS = 86_400_000;

/**
 * The certificate check: `served` (the leaf nri served, then any intermediates it sends) chains to a
 * certificate of the caBundle, is valid for the host kube-apiserver calls, and is not near its end.
 */
export function checkServedCertificate(
  registration: Registration,
  served: string,
  now: Date,
  warnDays: number,
): CheckResult {
  let chain: X509Certificate[];
  let roots: X509Certificate[];
  try {
    chain = pemCertificates(served);
    roots = pemCertificates(registration.caBundle);
  } catch (error) {
    return result('certificate', 'fail', `a certificate could not be read: ${(error as Error).message}`);
  }
  const [leaf, ...intermediates] = chain;
  if (!leaf) return result('certificate', 'unknown', `${targetLabel(registration.target)} showed no certificate`);
  const host = targetHost(registration.target);
  const notAfter = new Date(leaf.validTo);
  const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
  const details = [
    `served: subject ${dn(leaf.subject)}, issuer ${dn(leaf.issuer)}, SANs ${leaf.subjectAltName ?? '(none)'}, serial ${leaf.serialNumber}`,
    `valid until ${notAfter.toISOString()} (${count(daysLeft, 'day')})`,
  ];
  if (roots.length === 0)
    return result('certificate', 'fail', 'the caBundle holds no certificate', details, 'see the webhook check');
  let current = leaf;
  let trusted = false;
  for (let hops = 0; hops <= intermediates.length && !trusted; hops++) {
    trusted = roots.some((root) => issuedBy(current, root));
    if (trusted) break;
    const next = intermediates.find((candidate) => issuedBy(current, candidate));
    if (!next) break;
    current = next;
  }
  if (!trusted)
    return result(
      'certificate',
      'fail',
      'the caBundle does not verify the certificate nri serves: kube-apiserver refuses to call nri (x509: certificate signed by unknown authority)',
      [...details, `caBundle: ${roots.map((root) => dn(root.subject)).join('; ')}`],
      'put the CA that issued the certificate in the caBundle: the ca.crt of the Certificate nri-webhook-serving’s Secret, which cainjector copies there when cert-manager.io/inject-ca-from names that Certificate',
    );
  const validForHost = isIP(host) ? leaf.checkIP(host) !== undefined : leaf.checkHost(host) !== undefined;
  if (!validForHost)
    return result(
      'certificate',
      'fail',
      `the certificate nri serves is not valid for ${host}, the name kube-apiserver calls`,
      details,
      `issue it with ${host} among its dnsNames (knative/certificates.yaml)`,
    );
  if (notAfter.getTime() <= now.getTime() || new Date(leaf.validFrom).getTime() > now.getTime())
    return result(
      'certificate',
      'fail',
      `the certificate nri serves ${notAfter.getTime() <= now.getTime() ? `expired at ${notAfter.toISOString()}` : 'is not valid yet'}: kube-apiserver refuses to call nri`,
      details,
      'check why cert-manager did not renew it (kubectl describe certificate nri-webhook-serving); nri reloads a renewed one without restarting',
    );
  if (daysLeft < warnDays)
    return result(
      'certificate',
      'warn',
      `the certificate nri serves expires in ${count(daysLeft, 'day')}; cert-manager renews it 30 days ahead`,
      details,
      'check that cert-manager renews it (kubectl describe certificate nri-webhook-serving)',
    );
  return result('certificate', 'ok', `the caBundle verifies the certificate nri serves, valid for ${host}`, details);
}
