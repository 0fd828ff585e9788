// The suite runs on the Node line nri ships (package.json engines, the image's
// base): `npm ci` installs that Node from the npm registry as a development
// dependency, and npm scripts put it first on PATH.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { MINIMUM_NODE_MAJOR, unsupportedNode } from '../../functions/config/node-runtime.js';
import { repoRoot } from '../support/fixtures.js';

const manifest = JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8'));
const major = (version: string) => Number(/(\d+)/.exec(version)![1]);

describe('runtime', () => {
  it('is the Node major that engines names, not the machine’s older one', () => {
    assert.equal(major(process.versions.node), major(manifest.engines.node));
  });

  it('comes from the pinned node development dependency', () => {
    assert.equal(major(manifest.devDependencies.node), major(manifest.engines.node));
    const lock = JSON.parse(readFileSync(new URL('package-lock.json', repoRoot), 'utf8'));
    assert.equal(process.versions.node, lock.packages['node_modules/node'].version);
  });

  it('approves every install script npm ci runs, so npm prints no allowScripts notice', () => {
    const lock = JSON.parse(readFileSync(new URL('package-lock.json', repoRoot), 'utf8'));
    const scripted = Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean }>)
      .filter(([, entry]) => entry.hasInstallScript)
      .map(([path]) => path.replace(/^.*node_modules\//, ''));
    assert.deepEqual(scripted.sort(), Object.keys(manifest.allowScripts ?? {}).sort());
  });

  it('is the major nri itself refuses to run below, with a message that says what to do', () => {
    assert.equal(MINIMUM_NODE_MAJOR, major(manifest.engines.node));
    assert.equal(unsupportedNode(`${MINIMUM_NODE_MAJOR}.0.0`, '/x/node'), undefined);
    assert.equal(unsupportedNode(`${MINIMUM_NODE_MAJOR + 1}.2.3`, '/x/node'), undefined);
    const message = unsupportedNode('20.20.2', '/usr/local/bin/node');
    assert.match(
      message ?? '',
      /^nri runs on Node\.js 26 or newer; this is Node\.js 20\.20\.2 \(\/usr\/local\/bin\/node\)\. /,
    );
    assert.match(message ?? '', /after npm ci --ignore-scripts it is missing: run npm rebuild node/);
  });
});
