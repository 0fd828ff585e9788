// The age bound on kept-alive HTTPS connections (adapters/http/connection-age.ts), on a fake clock.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { connectionAgeLimit } from '../../functions/adapters/http/connection-age.js';

const on = (socket: object) => ({ socket }) as unknown as IncomingMessage;

describe('connection age limit', () => {
  it('closes a connection at its first answer past its jittered age, each connection counted from its own first request', () => {
    let clock = 1_000_000;
    const jitter = [0, 1]; // the shortest (75%) and the longest (125%) age
    const tooOld = connectionAgeLimit(
      10,
      () => jitter.shift()!,
      () => clock,
    );
    const early = {};
    const late = {};
    assert.equal(tooOld(on(early)), false);
    assert.equal(tooOld(on(late)), false);
    clock += 7_499;
    assert.equal(tooOld(on(early)), false);
    clock += 1;
    assert.equal(tooOld(on(early)), true, 'at 75% of 10 s');
    assert.equal(tooOld(on(late)), false);
    clock += 5_000;
    assert.equal(tooOld(on(late)), true, 'at 125% of 10 s');
  });

  it('never closes with an age of 0', () => {
    let clock = 0;
    const tooOld = connectionAgeLimit(0, Math.random, () => clock);
    const socket = {};
    tooOld(on(socket));
    clock += 86_400_000;
    assert.equal(tooOld(on(socket)), false);
  });
});
