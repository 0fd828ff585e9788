// What `npm run build` leaves in build/dist/ (and `npm run bundle` in dist/): the bundle the container runs, and the
// V8 code cache that keeps client-node's parse out of a cold start.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  CLIENT_NODE_BUNDLE,
  CODE_CACHE_SUFFIX,
  runWithCodeCache,
} from '../../functions/adapters/kube/load-client-node.js';
import { repoRoot } from '../support/fixtures.js';
import { startNodeFlags } from '../support/start-command.js';

const bundle = fileURLToPath(new URL(`build/dist/${CLIENT_NODE_BUNDLE}`, repoRoot));

describe('the bundle', () => {
  it('holds client-node as CommonJS with a code cache that nri, started as `npm start` starts it, accepts', () => {
    assert.ok(existsSync(bundle + CODE_CACHE_SUFFIX));
    // V8 checks its flags against the cache's: run with exactly the start script's.
    const loader = fileURLToPath(new URL('build/functions/adapters/kube/load-client-node.js', repoRoot));
    const script = `const m = await import(${JSON.stringify(loader)}); const r = m.runWithCodeCache(${JSON.stringify(bundle)}); console.log(JSON.stringify({ rejected: r.cacheRejected, kubeConfig: typeof r.exports.KubeConfig }));`;
    const loaded = JSON.parse(
      execFileSync(process.execPath, [...startNodeFlags(), '--input-type=module', '-e', script], { encoding: 'utf8' }),
    );
    assert.deepEqual(loaded, { rejected: false, kubeConfig: 'function' });
  });

  it('holds client-node once: no chunk carries a second copy', () => {
    const dist = fileURLToPath(new URL('build/dist/', repoRoot));
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.js') || file.endsWith('.cjs'),
    );
    const copies = files.filter((file) => readFileSync(join(dist, file), 'utf8').includes('KubeConfig=class'));
    assert.deepEqual(copies, [CLIENT_NODE_BUNDLE]);
    const bytes = files.reduce((sum, file) => sum + statSync(join(dist, file)).size, 0);
    process.stdout.write(`# build/dist: ${files.length} code files, ${(bytes / 1024 / 1024).toFixed(2)} MiB\n`);
  });

  it('for the image, holds only what the container runs: no source maps, no functions-framework entry', () => {
    const out = mkdtempSync(join(tmpdir(), 'nri-image-dist-'));
    execFileSync(process.execPath, ['scripts/bundle.mjs', out, '--for-image'], { cwd: fileURLToPath(repoRoot) });
    const files = readdirSync(out, { recursive: true, encoding: 'utf8' });
    assert.deepEqual(
      files.filter((file) => file.endsWith('.map')),
      [],
    );
    assert.ok(!files.includes('index.js'), 'no functions-framework entry');
    for (const entry of ['main.js', 'nri.js', 'webhook.js', CLIENT_NODE_BUNDLE])
      assert.ok(files.includes(entry), entry);
    const code = files.filter((file) => /\.c?js$/.test(file));
    assert.deepEqual(
      code.filter((file) => readFileSync(join(out, file), 'utf8').includes('@google-cloud/functions-framework')),
      [],
    );
    const bytes = files.reduce((sum, file) => sum + statSync(join(out, file)).size, 0);
    process.stdout.write(`# image dist: ${files.length} files, ${(bytes / 1024 / 1024).toFixed(2)} MiB\n`);
    // It runs: nri explain from it, as the image's `nri` does.
    const explained = execFileSync(
      process.execPath,
      [
        join(out, 'nri.js'),
        'explain',
        '-f',
        'examples/reviews/one-network.json',
        '--nads',
        'examples/nads',
        '-o',
        'patch',
      ],
      { cwd: fileURLToPath(repoRoot), encoding: 'utf8' },
    );
    assert.equal(JSON.parse(explained).length, 4);
  });

  it('still loads client-node when the cache is missing or stale', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nri-bundle-'));
    const copy = join(dir, CLIENT_NODE_BUNDLE);
    copyFileSync(bundle, copy);
    const missing = runWithCodeCache(copy);
    assert.equal(missing.cacheRejected, true);
    assert.equal(typeof (missing.exports as { KubeConfig?: unknown }).KubeConfig, 'function');
    writeFileSync(copy + CODE_CACHE_SUFFIX, 'not a V8 code cache');
    // In a fresh process: this one has the source in V8's in-memory cache already.
    const loader = fileURLToPath(new URL('build/functions/adapters/kube/load-client-node.js', repoRoot));
    const script = `const m = await import(${JSON.stringify(loader)}); const r = m.runWithCodeCache(${JSON.stringify(copy)}); console.log(JSON.stringify({ rejected: r.cacheRejected, kubeConfig: typeof r.exports.KubeConfig }));`;
    const stale = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
    );
    assert.deepEqual(stale, { rejected: true, kubeConfig: 'function' });
  });
});
