// The per-review log line is serialised by hand for speed; it must read
// exactly as the line pino itself would write, and honour the level.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, preSerialisedLines } from '../../functions/adapters/observability/logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

const fields = { uid: 'u-1', namespace: 'team "a"', podName: 'web-*', networks: ['team/net@eth1', 'ü/ß'], resources: { 'example.com/foo': 2 }, decision: 'denied', reason: 'bad "quote"\nnewline', durationMs: 0.125, transport: 'https' };
const serialised = Object.entries(fields).map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',');

describe('pre-serialised log lines', () => {
  it('read exactly as the line pino writes for the same fields', async () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    logger.warn(fields, 'review denied');
    preSerialisedLines(logger)('warn', serialised, 'review denied');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines.length, 2);
    const [fromPino, fromUs] = lines.map((line) => JSON.parse(line));
    assert.match(fromUs.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual({ ...fromUs, time: 0 }, { ...fromPino, time: 0 });
    assert.deepEqual(Object.keys(fromUs), Object.keys(fromPino), 'same key order');
  });

  it('write nothing below the logger level', async () => {
    const { lines, stream } = capture();
    const write = preSerialisedLines(createLogger('warn', stream));
    write('info', serialised, 'review patched');
    write('warn', serialised, 'review denied');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]!).level, 'warn');
  });
});
