// The functions-framework function `mutate`. Loaded by our own entry point
// (functions/main.ts, what `npm start` and the container run) or directly by
// the functions-framework CLI: `functions-framework --target=mutate --source=dist/index.js`.
import * as functions from '@google-cloud/functions-framework';
import { getApp, readyApp, type App } from './app.js';
import { sendAnswer, sendJson, serveProbe, REVIEW_PATHS } from './adapters/http/listener.js';
import { answerReview } from './adapters/http/review-endpoint.js';

export const FUNCTION_NAME = 'mutate';

export const mutate: functions.HttpFunction = (request, response) => {
  const app = readyApp();
  return app ? serve(app, request, response) : getApp().then((loaded) => serve(loaded, request, response));
};

function serve(app: App, request: functions.Request, response: functions.Response): void | Promise<void> {
  const path = request.path;
  if (request.method === 'GET') {
    return serveProbe(path, app.probes, response).then((served) => void (served || notFound(response)));
  }
  if (request.method !== 'POST' || !REVIEW_PATHS.has(path)) return notFound(response);
  // Our entry point hands over the raw body (read under a size cap); the CLI's
  // body parser hands over an object or text. The decoder accepts each.
  return sendAnswer(response, answerReview(request.body, app.runtime, 'http'));
}

const notFound = (response: functions.Response) => sendJson(response, { status: 404, body: { error: 'not_found', message: 'send AdmissionReviews to POST /mutate' } });

functions.http(FUNCTION_NAME, mutate);
