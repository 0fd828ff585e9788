// Bundles the function into dist/ with esbuild: one file per entry point, so a
// cold start reads one module instead of hundreds (see README, "Cold start").
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true }); // no stale chunks from an earlier build

await build({
  entryPoints: { main: 'functions/main.ts', index: 'functions/index.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  splitting: true, // client-node (YAML, cluster access) loads only when needed
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: true,
  // Less to parse at cold start; identifiers kept so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  logLevel: 'warning',
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __nriCreateRequire } from 'node:module'; const require = __nriCreateRequire(import.meta.url);" },
});
