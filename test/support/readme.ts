// The README's shell blocks, as the tests that run them read them: each block
// follows a `<!-- test: … -->` line that names who runs it under which id.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './fixtures.js';

export interface ReadmeBlock {
  /** what the marker above it says, e.g. "readme.test.ts logs" or "e2e cluster.test.ts verify" */
  marker: string | undefined;
  language: string;
  code: string;
}

export function readmeBlocks(): ReadmeBlock[] {
  const text = readFileSync(new URL('README.md', repoRoot), 'utf8');
  const blocks: ReadmeBlock[] = [];
  for (const match of text.matchAll(/(?:<!-- test: (.*?) -->\n)?```(\w*)\n([\s\S]*?)```/g)) {
    blocks.push({ marker: match[1], language: match[2]!, code: match[3]! });
  }
  return blocks;
}

/** The shell block whose marker names `id` (among the ids after the file name). */
export function readmeCommand(id: string): string {
  const found = readmeBlocks().filter((block) => block.marker?.split(/[ ,]+/).includes(id));
  if (found.length !== 1) throw new Error(`README has ${found.length} blocks marked with "${id}"`);
  return found[0]!.code;
}

/**
 * The README's install overlay, written as its block writes it (the heredoc, run by
 * bash) in a fresh folder beside a link to this repository's knative/; returns
 * the folder, whose overlays/prod is what `kubectl apply -k overlays/prod` applies.
 */
export function writeInstallOverlay(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nri-readme-install-'));
  symlinkSync(fileURLToPath(new URL('knative', repoRoot)), join(dir, 'knative'));
  const block = readmeCommand('install');
  const heredoc = block.slice(0, block.indexOf('\nYAML\n') + '\nYAML\n'.length);
  execFileSync('bash', ['-e', '-o', 'pipefail', '-c', heredoc], { cwd: dir });
  return dir;
}
