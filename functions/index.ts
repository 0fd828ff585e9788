// The functions-framework function `mutate`, for functions-framework's own CLI
// as its authors intend it to be run (`npm run functions-framework`) and for
// its testing helper. The same review path as the container's listeners
// (functions/main.ts), which add what a webhook needs and the CLI does not
// give: HTTPS, a body cap before buffering, JSON 400s, a graceful SIGTERM.
import * as functions from '@google-cloud/functions-framework';
import { sendJson, serveProbe, REVIEW_PATHS } from './adapters/http/listener.js';
import { answerReview } from './adapters/http/review-endpoint.js';
import { getApp, type App } from './app.js';

export const FUNCTION_NAME = 'mutate';

export const mutate: functions.HttpFunction = async (request, response) => {
  const app: App = await getApp();
  const path = request.path;
  if (request.method === 'GET') {
    if (!(await serveProbe(path, app.probes, response))) notFound(response);
    return;
  }
  if (request.method !== 'POST' || !REVIEW_PATHS.has(path)) return notFound(response);
  // functions-framework's body parser hands over an object (JSON) or the raw text.
  answerReview(request.body, app.runtime, 'http', (answer) => sendJson(response, answer));
};

const notFound = (response: functions.Response) => sendJson(response, { status: 404, body: { error: 'not_found', message: 'send AdmissionReviews to POST /mutate' } });

functions.http(FUNCTION_NAME, mutate);
