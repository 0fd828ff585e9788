// The function `mutate` served by functions-framework as its authors intend:
// their CLI (npm run functions-framework) and their testing helper. The
// container serves the same review path through its own listeners (main.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createPki } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { repoRoot } from '../support/fixtures.js';
import { decodePatch, eventually, freePort, send } from '../support/function-process.js';

const example = readFileSync(new URL('examples/reviews/one-network.json', repoRoot), 'utf8');
const expected = JSON.parse(readFileSync(new URL('examples/reviews/one-network.expected.json', repoRoot), 'utf8'));

describe('functions-framework', () => {
  it('serves the bundled function through its CLI, as `npm run functions-framework` does', async () => {
    const port = await freePort();
    const root = fileURLToPath(repoRoot);
    const cli = spawn(
      process.execPath,
      [
        'node_modules/@google-cloud/functions-framework/build/src/main.js',
        '--target=mutate',
        '--source=build/dist/index.js',
      ],
      {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: root, PORT: String(port), NRI_LOG_LEVEL: 'warn' },
        stdio: 'ignore',
      },
    );
    try {
      await eventually(
        () =>
          send(`http://127.0.0.1:${port}/readyz`).then(
            (r) => r.status,
            () => 0,
          ),
        (status) => status === 200,
        15000,
      );
      const result = await send(`http://127.0.0.1:${port}/mutate`, { body: example });
      assert.equal(result.status, 200);
      assert.equal(result.json.response.allowed, true);
      assert.deepEqual(decodePatch(result), expected.patch);
      const asText = await send(`http://127.0.0.1:${port}/mutate`, {
        body: example,
        headers: { 'content-type': 'text/plain' },
      });
      assert.equal(asText.status, 415, 'the same Content-Type rule as the container');
      assert.equal(asText.json.error, 'unsupported_media_type');
    } finally {
      cli.kill('SIGTERM');
    }
  });

  it('holds the CLI to the same body cap and bound on reviews in flight as the container', async () => {
    // NADs from a fake API server that never lists and answers each GET after 800 ms: a review stays in flight.
    const api = new FakeApiServer(createPki());
    await api.start();
    api.upsertNad('default', 'foo-network', { 'k8s.v1.cni.cncf.io/resourceName': 'example.com/foo' });
    api.fault('nadList', { hang: true });
    api.fault('nadWatch', { hang: true });
    api.fault('nadGet', { delayMs: 800 });
    const port = await freePort();
    const root = fileURLToPath(repoRoot);
    const cli = spawn(
      process.execPath,
      [
        'node_modules/@google-cloud/functions-framework/build/src/main.js',
        '--target=mutate',
        '--source=build/dist/index.js',
      ],
      {
        cwd: root,
        env: {
          PATH: process.env.PATH,
          HOME: root,
          PORT: String(port),
          NRI_LOG_LEVEL: 'warn',
          KUBECONFIG: api.kubeconfigPath,
          NRI_MAX_BODY_BYTES: '4096',
          NRI_MAX_IN_FLIGHT: '1',
        },
        stdio: 'ignore',
      },
    );
    try {
      await eventually(
        () =>
          send(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.status,
            () => 0,
          ),
        (status) => status === 200,
        15000,
      );
      const big = await send(`http://127.0.0.1:${port}/mutate`, {
        body: JSON.stringify({ padding: 'x'.repeat(5000) }),
      });
      assert.equal(big.status, 413);
      assert.deepEqual(big.json, {
        error: 'too_large',
        message: `the request body of ${5000 + 14} bytes exceeds the limit of 4096 bytes`,
      });
      const [first, second] = await Promise.all([
        send(`http://127.0.0.1:${port}/mutate`, { body: example }),
        new Promise((resolve) => setTimeout(resolve, 200)).then(() =>
          send(`http://127.0.0.1:${port}/mutate`, { body: example }),
        ),
      ]);
      assert.equal(first.status, 200);
      assert.equal(first.json.response.allowed, true);
      assert.equal(second.status, 503);
      assert.equal(second.headers['retry-after'], '1');
      assert.deepEqual(second.json, { error: 'overloaded', message: 'more than 1 reviews in flight' });
    } finally {
      cli.kill('SIGTERM');
      await api.stop();
    }
  });

  it("answers through functions-framework's testing helper", async () => {
    await import('../../functions/index.js'); // registers `mutate`
    const { getTestServer } = await import('@google-cloud/functions-framework/testing');
    const server = getTestServer('mutate');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const result = await send(`http://127.0.0.1:${port}/mutate`, { body: example });
      assert.deepEqual(decodePatch(result), expected.patch);
      assert.equal((await send(`http://127.0.0.1:${port}/nope`)).status, 404);
    } finally {
      server.close();
    }
  });
});
