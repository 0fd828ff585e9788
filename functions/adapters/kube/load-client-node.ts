// Loads @kubernetes/client-node (its KubeConfig), the heaviest module nri has:
// about 1 MB of code whose parsing would dominate a cold start. `npm run build`
// bundles it as dist/client-node.cjs and stores V8's code cache beside it, so
// that a replica starting under load skips the parse. (Node's own
// module.enableCompileCache writes its cache at run time, keyed by path, which a
// read-only root filesystem and a build in another folder both defeat.)
// A cache from another V8 version is rejected by V8 and the file compiles as usual.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

export type ClientNode = typeof import('./client-node.js');

export const CLIENT_NODE_BUNDLE = 'client-node.cjs';
export const CODE_CACHE_SUFFIX = '.v8cache';

/** Runs a CommonJS bundle through vm.Script with V8's code cache. */
export function runWithCodeCache(file: string): { exports: unknown; cacheRejected: boolean; script: Script } {
  const source = readFileSync(file, 'utf8');
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(file + CODE_CACHE_SUFFIX);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const module = { exports: {} as unknown };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return {
    exports: module.exports,
    cacheRejected: cachedData === undefined || script.cachedDataRejected === true,
    script,
  };
}

function bundledCopy(): string | undefined {
  // In dist/ this module sits in dist/ or dist/chunks/; elsewhere (tsc output) there is no bundle.
  for (const relative of [`./${CLIENT_NODE_BUNDLE}`, `../${CLIENT_NODE_BUNDLE}`]) {
    const file = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** The tsc output's own module, for runs outside a bundle. A variable, so that the bundler does not put a second copy of client-node in dist/. */
const UNBUNDLED = './client-node.js';

export async function loadClientNode(): Promise<ClientNode> {
  const file = bundledCopy();
  if (!file) return (await import(UNBUNDLED)) as ClientNode;
  return runWithCodeCache(file).exports as ClientNode;
}
