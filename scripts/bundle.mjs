// Bundles the function with esbuild into dist/ (`npm start`, the image), or into
// the folder given as the first argument (`npm run build`: build/dist, which the
// tests run, so that they never replace the files under a running `npm start`):
// the entry points, a few shared chunks, and @kubernetes/client-node as a
// CommonJS file with V8's code cache beside it, loaded only with a cluster.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const args = process.argv.slice(2);
const out = args.find((arg) => !arg.startsWith('--')) ?? 'dist';
// --for-image (knative/Dockerfile): only what the container runs. No source maps (Node reads them
// only with --enable-source-maps, which the container does not pass: 5 MB unread) and no
// functions-framework entry (index.js: the container runs main.js; the image has no node_modules).
const forImage = args.includes('--for-image');
rmSync(out, { recursive: true, force: true }); // no stale chunks from an earlier build

const common = {
  bundle: true,
  platform: 'node',
  target: 'node26',
  sourcemap: !forImage,
  // Less to parse at cold start; identifiers kept so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

// The start command's V8 flags, for `webhook` (functions/webhook.ts) to start nri with.
const startFlags = JSON.parse(readFileSync('package.json', 'utf8'))
  .scripts.start.split(' ')
  .filter((word) => word.startsWith('--'));

await build({
  ...common,
  entryPoints: {
    main: 'functions/main.ts',
    ...(forImage ? {} : { index: 'functions/index.ts' }),
    webhook: 'functions/webhook.ts',
    nri: 'functions/nri.ts',
  },
  define: { NRI_START_FLAGS: JSON.stringify(startFlags) },
  outdir: out,
  format: 'esm',
  splitting: true, // functions-framework and client-node load only when needed
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __nriCreateRequire } from 'node:module'; const require = __nriCreateRequire(import.meta.url);",
  },
});

await build({
  ...common,
  entryPoints: ['functions/adapters/kube/client-node.ts'],
  outfile: `${out}/client-node.cjs`,
  format: 'cjs',
});

// Store V8's code cache for it, made in a process started with the same V8
// flags as `npm start` and the container: V8 rejects a cache made under other flags.
execFileSync(process.execPath, [...startFlags, 'scripts/make-code-cache.mjs', out], { stdio: 'inherit' });
