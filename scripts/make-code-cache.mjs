// Writes V8's code cache for <out>/client-node.cjs. Run by scripts/bundle.mjs in
// a process started with `npm start`'s V8 flags, which the cache must match.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';

// Made through the very loader the function uses (the wrapper must match byte for byte for V8 to accept it).
const loader = await build({
  entryPoints: ['functions/adapters/kube/load-client-node.ts'],
  bundle: false,
  format: 'esm',
  platform: 'node',
  write: false,
  logLevel: 'warning',
});
const { runWithCodeCache, CODE_CACHE_SUFFIX } = await import(
  `data:text/javascript;base64,${Buffer.from(loader.outputFiles[0].text).toString('base64')}`
);
const out = process.argv[2] ?? 'dist';
const { script, exports: clientNode } = runWithCodeCache(resolve(out, 'client-node.cjs'));
// Run what nri runs at start, so that those functions are compiled into the cache too.
const config = new clientNode.KubeConfig();
config.loadFromOptions({
  clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
  users: [{ name: 'u', token: 't' }],
  contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
  currentContext: 'x',
});
// And what every request to the API server runs: credentials and TLS options applied.
await config.applyToHTTPSOptions({ method: 'GET', headers: { accept: 'application/json' } });
writeFileSync(resolve(out, `client-node.cjs${CODE_CACHE_SUFFIX}`), script.createCachedData());
