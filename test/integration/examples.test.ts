// Every example in examples/ answers as its .expected.json says (the README's
// own commands are run by readme.test.ts).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../support/fixtures.js';
import { decodePatch, send, startFunction, type RunningFunction } from '../support/function-process.js';

const reviewsDir = new URL('examples/reviews/', repoRoot);
const examples = readdirSync(reviewsDir)
  .filter((name) => name.endsWith('.json') && !name.endsWith('.expected.json'))
  .map((name) => ({
    name: name.replace(/\.json$/, ''),
    review: readFileSync(new URL(name, reviewsDir), 'utf8'),
    expected: JSON.parse(readFileSync(new URL(name.replace(/\.json$/, '.expected.json'), reviewsDir), 'utf8')),
  }));
const readme = readFileSync(new URL('README.md', repoRoot), 'utf8');

describe('examples/', () => {
  const running = new Map<string, RunningFunction>();
  const functionFor = async (env: Record<string, string> = {}) => {
    const key = JSON.stringify(env);
    if (!running.has(key)) running.set(key, await startFunction(env));
    return running.get(key)!;
  };
  after(async () => {
    await Promise.all([...running.values()].map((fn) => fn.stop()));
  });

  it('has the common cases', () => {
    assert.deepEqual(examples.map((e) => e.name).sort(), [
      'denied-bad-annotation',
      'denied-missing-network',
      'node-selector',
      'one-network',
      'sriov-hugepages',
      'two-networks',
    ]);
  });

  for (const example of examples) {
    it(`${example.name} answers as ${example.name}.expected.json says`, async () => {
      const fn = await functionFor(example.expected.env);
      const result = await send(`${fn.url}/mutate`, { body: example.review });
      assert.equal(result.status, 200);
      assert.equal(result.json.response.uid, JSON.parse(example.review).request.uid);
      assert.equal(result.json.response.allowed, example.expected.allowed);
      if (example.expected.patch) assert.deepEqual(decodePatch(result), example.expected.patch);
      else assert.equal(result.json.response.patch, undefined);
      if (example.expected.status) assert.deepEqual(result.json.response.status, example.expected.status);
      assert.ok(readme.includes(`examples/reviews/${example.name}.json`), `README mentions ${example.name}`);
    });
  }
});
