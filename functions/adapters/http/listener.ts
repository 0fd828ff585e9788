// The request listener of both ports, plain HTTP (Knative's declared port:
// probes, metrics, reviews) and HTTPS (kube-apiserver): health, readiness and
// metrics routes, a body cap, a bound on reviews in flight, and a JSON answer
// for every failure.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import { pemOf } from '../../core/check/webhook.js';
import { BadRequest, notJson } from './bad-request.js';
import { ClientGone, readBody } from './read-body.js';
import { answerReview, refuse, type HttpAnswer, type ReviewRuntime, type Transport } from './review-endpoint.js';

export interface Probes {
  /** null when ready, else why not */
  readiness(): string | null;
  metrics(): Promise<{ contentType: string; text: string }>;
}

export interface ListenerOptions {
  runtime: ReviewRuntime;
  transport: Transport;
  maxBodyBytes: number;
  maxInFlight: number;
  /** health, readiness and metrics are served on the plain port only */
  probes?: Probes;
  /** false: this port answers no review (the plain port in a cluster, where any pod could reach it) */
  reviews?: boolean;
  /** true: end each connection after its answer (a superseded Knative revision, functions/main.ts) */
  closeAfterAnswer?: (request: IncomingMessage) => boolean;
}

export const REVIEW_PATHS = new Set(['/', '/mutate']);
/** GET on the HTTPS port: the certificate this connection was served, for `nri check` through the API server's service proxy. */
export const SERVED_CERTIFICATE_PATH = '/served-certificate';

/** The PEM of the certificate the TLS handshake of `request` presented; undefined on plain HTTP. */
function servedCertificatePem(request: IncomingMessage): string | undefined {
  if (!(request.socket instanceof TLSSocket)) return undefined;
  const raw = (request.socket.getCertificate() as { raw?: Buffer } | null)?.raw;
  return raw ? pemOf(raw) : undefined;
}

export function sendJson(response: ServerResponse, answer: HttpAnswer): void {
  if (response.headersSent) return;
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  response.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

const problem = (status: number, error: string, message: string): HttpAnswer => ({ status, body: { error, message } });

/** At most `max` reviews answered at once by one entry point; more are refused with 503 and Retry-After. */
export class InFlightLimit {
  private inFlight = 0;
  constructor(private readonly max: number) {}

  /** Counts the review until its response closes; false when `max` are in flight (and the 503 is sent). */
  admit(response: ServerResponse, runtime: Pick<ReviewRuntime, 'metrics'>): boolean {
    if (this.inFlight >= this.max) {
      response.setHeader('retry-after', '1');
      runtime.metrics.reviews.inc({ outcome: 'error', reason: 'overloaded' });
      sendJson(response, problem(503, 'overloaded', `more than ${this.max} reviews in flight`));
      return false;
    }
    this.inFlight++;
    response.once('close', () => this.inFlight--);
    return true;
  }
}

/** What nri reads and throws away of a refused body, at most, so that a client still sending it gets to read the refusal. */
const DRAIN_LIMITS = { bytes: 64 * 1024 * 1024, ms: 5000 };

/**
 * A refusal of a body nri will not read (413 over the cap, 415 not JSON). Closing at once would race a client that is
 * still sending: its next write meets a reset, which discards the answer
 * waiting in its socket. So the answer is written, what keeps arriving is read
 * and dropped (bounded in bytes and time), and only then is the connection closed.
 */
function refuseUnread(request: IncomingMessage, response: ServerResponse, answer: HttpAnswer): void {
  if (response.headersSent) return;
  const text = JSON.stringify(answer.body);
  response.writeHead(answer.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    connection: 'close',
  });
  response.write(text);
  let drained = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(deadline);
    request.off('data', onData);
    response.end();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMITS.bytes) close();
  };
  const deadline = setTimeout(close, DRAIN_LIMITS.ms);
  request.on('data', onData);
  request.once('end', close);
  request.once('error', close);
  request.once('close', close);
  request.resume();
}

export async function serveProbe(path: string, probes: Probes, response: ServerResponse): Promise<boolean> {
  if (path === '/healthz') {
    sendJson(response, { status: 200, body: { status: 'ok' } });
  } else if (path === '/readyz') {
    const reason = probes.readiness();
    sendJson(
      response,
      reason === null ? { status: 200, body: { status: 'ready' } } : problem(503, 'not_ready', reason),
    );
  } else if (path === '/metrics') {
    const { contentType, text } = await probes.metrics();
    response.writeHead(200, { 'content-type': contentType });
    response.end(text);
  } else {
    return false;
  }
  return true;
}

export function createListener(options: ListenerOptions) {
  const { runtime, transport, maxBodyBytes, maxInFlight, probes, reviews = true, closeAfterAnswer } = options;
  const limit = new InFlightLimit(maxInFlight);

  const failed = (response: ServerResponse) => (error: unknown) => {
    runtime.logger.error({ err: error, transport }, 'request failed');
    if (!response.headersSent)
      sendJson(response, problem(500, 'internal', 'the injector failed to answer; see its log'));
    else response.destroy();
  };

  function onBody(
    request: IncomingMessage,
    response: ServerResponse,
    error: Error | undefined,
    body: Buffer | undefined,
  ): void {
    if (error) {
      // Nobody is left to answer: an ordinary disconnect, not a failure of ours.
      if (error instanceof ClientGone) return runtime.logger.warn({ transport }, error.message);
      if (!(error instanceof BadRequest)) return failed(response)(error);
      const answer = refuse(runtime, error, transport);
      if (error.reason === 'too_large') return refuseUnread(request, response, answer);
      return sendJson(response, answer);
    }
    answerReview(body, runtime, transport, (answer) => sendJson(response, answer));
  }

  /** Plain callbacks on the review path: a promise only when a NAD must be read. */
  function handle(request: IncomingMessage, response: ServerResponse): void {
    if (closeAfterAnswer?.(request)) response.setHeader('connection', 'close');
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (request.method === 'GET' && probes) {
      serveProbe(path, probes, response)
        .then((served) => served || route(request, response, path))
        .catch(failed(response));
      return;
    }
    route(request, response, path);
  }

  function route(request: IncomingMessage, response: ServerResponse, path: string): void {
    if (request.method === 'GET' && path === SERVED_CERTIFICATE_PATH) {
      const certificate = servedCertificatePem(request);
      if (certificate) return sendJson(response, { status: 200, body: { certificate } });
    }
    if (!REVIEW_PATHS.has(path))
      return sendJson(
        response,
        problem(404, 'not_found', `no endpoint at ${path.slice(0, 100)}; send AdmissionReviews to POST /mutate`),
      );
    if (!reviews) {
      request.resume();
      return sendJson(
        response,
        problem(
          404,
          'reviews_off',
          `this ${transport} port serves probes and metrics only (NRI_HTTP_REVIEWS=false); kube-apiserver sends reviews over HTTPS`,
        ),
      );
    }
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST');
      return sendJson(response, problem(405, 'method_not_allowed', 'send AdmissionReviews with POST'));
    }
    const unsupported = notJson(request.headers['content-type']);
    if (unsupported) return refuseUnread(request, response, refuse(runtime, unsupported, transport));
    if (!limit.admit(response, runtime)) return void request.resume();
    readBody(request, maxBodyBytes, (error, body) => {
      try {
        onBody(request, response, error, body);
      } catch (thrown) {
        failed(response)(thrown);
      }
    });
  }

  return (request: IncomingMessage, response: ServerResponse): void => {
    try {
      handle(request, response);
    } catch (error) {
      failed(response)(error);
    }
  };
}
