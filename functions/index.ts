// The functions-framework function `mutate`. Loaded by our own entry point
// (functions/main.ts, what `npm start` and the container run) or directly by
// the functions-framework CLI: `functions-framework --target=mutate --source=dist/index.js`.
import * as functions from '@google-cloud/functions-framework';
import { getApp } from './app.js';
import { sendJson, serveProbe, REVIEW_PATHS } from './adapters/http/listener.js';
import { answerReview } from './adapters/http/review-endpoint.js';

export const FUNCTION_NAME = 'mutate';

export const mutate: functions.HttpFunction = async (request, response) => {
  const app = await getApp();
  const path = request.path;
  if (request.method === 'GET' && (await serveProbe(path, app.probes, response))) return;
  if (request.method !== 'POST' || !REVIEW_PATHS.has(path)) {
    return sendJson(response, { status: 404, body: { error: 'not_found', message: 'send AdmissionReviews to POST /mutate' } });
  }
  // Our entry point hands over the raw body (read under a size cap); the CLI's
  // body parser hands over an object or text. The decoder accepts each.
  sendJson(response, await answerReview(request.body, app.runtime, 'http'));
};

functions.http(FUNCTION_NAME, mutate);
