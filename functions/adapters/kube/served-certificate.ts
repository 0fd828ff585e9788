// How `nri check` sees the certificate nri serves where kube-apiserver calls it. A webhook
// registered by Service is asked through the API server's service proxy (the path
// kube-apiserver's own connection takes, and the only one open from outside the cluster): nri
// answers GET /served-certificate with the certificate that very connection was served. A webhook
// registered by URL is dialled directly and its TLS handshake read.
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import { isObject } from '../../core/json.js';
import { pemOf, type WebhookTarget } from '../../core/check/webhook.js';
import { SERVED_CERTIFICATE_PATH } from '../http/listener.js';
import type { KubeClient } from './kube-client.js';

/** The service-proxy path to nri's served-certificate endpoint, as RBAC names it: https:NAME:PORT. */
export const servedCertificateProxyPath = (target: Extract<WebhookTarget, { kind: 'service' }>) =>
  `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/services/https:${encodeURIComponent(target.name)}:${target.port}/proxy${SERVED_CERTIFICATE_PATH}`;

/** PEM text: the leaf the target serves, then the rest of the chain it sends. Rejects with a readable reason. */
export async function fetchServedCertificate(
  target: WebhookTarget,
  kube: KubeClient,
  timeoutMs: number,
): Promise<string> {
  if (target.kind === 'service') {
    const answer = await kube.getObject(servedCertificateProxyPath(target));
    if (answer === undefined)
      throw new Error(
        `service ${target.namespace}/${target.name} answered 404 to ${SERVED_CERTIFICATE_PATH}: it is not nri, or an nri release before nri check`,
      );
    if (!isObject(answer) || typeof answer.certificate !== 'string')
      throw new Error(`service ${target.namespace}/${target.name} sent no certificate`);
    return answer.certificate;
  }
  const url = new URL(target.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('secureConnect', () => {
      const pems: string[] = [];
      const seen = new Set<string>();
      // Walk the chain the server sent; a self-signed certificate is its own issuer.
      for (
        let peer = socket.getPeerCertificate(true);
        peer?.raw && !seen.has(peer.fingerprint256);
        peer = peer.issuerCertificate
      ) {
        seen.add(peer.fingerprint256);
        pems.push(pemOf(peer.raw));
      }
      socket.end();
      resolve(pems.join(''));
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake with ${url.host} within ${timeoutMs} ms`)));
    socket.once('error', (error) => reject(new Error(`cannot reach ${url.host}: ${error.message}`)));
  });
}
