// The functions-framework function `mutate`, for functions-framework's own CLI
// as its authors intend it to be run (`npm run functions-framework`) and for
// its testing helper. The same review path, body cap and bound on reviews in
// flight as the container's listeners (functions/main.ts), which add what a
// webhook needs and the CLI does not give: HTTPS, the cap applied before the
// body is buffered, JSON 400s, a graceful SIGTERM.
import { exitUnlessSupportedNode } from './config/node-runtime.js';
import * as functions from '@google-cloud/functions-framework';
import { bodyTooLarge, notJson } from './adapters/http/bad-request.js';
import { InFlightLimit, sendJson, serveProbe, REVIEW_PATHS } from './adapters/http/listener.js';
import { answerReview, refuse } from './adapters/http/review-endpoint.js';
import { getApp, type App } from './app.js';

exitUnlessSupportedNode('nri');

export const FUNCTION_NAME = 'mutate';

export const mutate: functions.HttpFunction = async (request, response) => {
  const app: App = await getApp();
  const path = request.path;
  if (request.method === 'GET') {
    if (!(await serveProbe(path, app.probes, response))) notFound(response);
    return;
  }
  if (request.method !== 'POST' || !REVIEW_PATHS.has(path)) return notFound(response);
  const unsupported = notJson(request.get('content-type'));
  if (unsupported) return sendJson(response, refuse(app.runtime, unsupported, 'http'));
  // functions-framework has read the whole body before calling us (its parsers take up to
  // 1 GB), so the cap is applied to what it read; the container's listeners refuse it unread.
  const size = (request as { rawBody?: Buffer }).rawBody?.length ?? 0;
  if (size > app.settings.maxBodyBytes)
    return sendJson(response, refuse(app.runtime, bodyTooLarge(app.settings.maxBodyBytes, size), 'http'));
  limit ??= new InFlightLimit(app.settings.maxInFlight);
  if (!limit.admit(response, app.runtime)) return;
  // functions-framework's body parser hands over an object (JSON) or the raw text.
  answerReview(request.body, app.runtime, 'http', (answer) => sendJson(response, answer));
};

/** The same bound on reviews in flight as the container's listeners (NRI_MAX_IN_FLIGHT). */
let limit: InFlightLimit | undefined;

const notFound = (response: functions.Response) =>
  sendJson(response, { status: 404, body: { error: 'not_found', message: 'send AdmissionReviews to POST /mutate' } });

functions.http(FUNCTION_NAME, mutate);
