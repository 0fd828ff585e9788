// The review endpoint's own failure handling, with an in-memory runtime: a bug
// in deciding becomes one clear internal denial; a failure in answering (log,
// metrics, reply) is not mistaken for one and is not answered twice.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { NadSource } from '../../functions/adapters/nad-source.js';
import { createLogger } from '../../functions/adapters/observability/logger.js';
import { createMetrics } from '../../functions/adapters/observability/metrics.js';
import { answerReview, type HttpAnswer, type ReviewRuntime } from '../../functions/adapters/http/review-endpoint.js';
import { defaultSettings, defaultSwitches, realisticReview, sriovNad } from '../support/fixtures.js';
import { metricValue } from '../support/metrics.js';

const foo = sriovNad('default', 'foo-network', 'example.com/foo');

/** A source that holds `foo`, or throws from fromMemory when told to. */
function source(throwing?: Error): NadSource {
  return {
    fromMemory: (refs) => {
      if (throwing) throw throwing;
      return new Map(refs.map((ref) => [`${ref.namespace}/${ref.name}`, { status: 'found' as const, nad: foo }]));
    },
    read: () => Promise.reject(new Error('not expected: every NAD is in memory')),
    readiness: () => null,
    start: () => undefined,
    stop: async () => undefined,
    describe: () => ({}),
  };
}

function runtimeWith(nads: NadSource) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = createMetrics();
  const runtime: ReviewRuntime = {
    context: () => ({ settings: defaultSettings, switches: defaultSwitches }),
    nads,
    metrics,
    logger: createLogger('info', sink),
  };
  const reviews = async (labels: string) =>
    metricValue(await metrics.registry.metrics(), 'nri_admission_reviews_total', labels);
  return { runtime, lines, reviews };
}

function body(): string {
  const review = realisticReview();
  review.request.object.metadata!.annotations = { 'k8s.v1.cni.cncf.io/networks': 'foo-network' };
  return JSON.stringify(review);
}

describe('review endpoint failures', () => {
  it('answers a bug in deciding with one internal denial, counted and logged once', async () => {
    const { runtime, lines, reviews } = runtimeWith(source(new Error('boom')));
    const answers: HttpAnswer[] = [];
    answerReview(body(), runtime, 'https', (answer) => answers.push(answer));
    assert.equal(answers.length, 1);
    const response = JSON.parse(answers[0]!.body as string).response;
    assert.equal(response.allowed, false);
    assert.equal(response.status.code, 500);
    assert.match(response.status.message, /internal error in the network resources injector: boom/);
    assert.equal(await reviews('outcome="error",reason="internal"'), 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines.filter((line) => line.msg === 'review failed unexpectedly').length, 1);
  });

  it('lets a failure in answering reach the caller, without a second answer or count', async () => {
    const { runtime, reviews } = runtimeWith(source());
    runtime.logger.info = () => {
      throw new Error('log stream broken');
    };
    const answers: HttpAnswer[] = [];
    assert.throws(() => answerReview(body(), runtime, 'https', (answer) => answers.push(answer)), /log stream broken/);
    assert.equal(answers.length, 0, 'the listener answers 500 for it; the endpoint must not answer as well');
    assert.equal(await reviews('outcome="patched",reason="injected"'), 1);
    assert.equal(await reviews('outcome="error",reason="internal"'), 0);
  });
});
