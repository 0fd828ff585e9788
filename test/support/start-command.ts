// The command `npm start` runs, which the container, the benchmark and the code
// cache must all match: read from package.json so there is one place to change it.
import { readFileSync } from 'node:fs';
import { repoRoot } from './fixtures.js';

/**
 * The words of the start script, e.g. ["node", "--max-old-space-size=96", "dist/main.js"]; its
 * leading `exec` (which makes the shell npm runs it in become Node, so SIGTERM reaches it) is the
 * shell's, not the command's.
 */
export function startCommand(): string[] {
  const script = JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')).scripts.start as string;
  return script.replace(/^exec /, '').split(' ');
}

/** The V8 flags of the start command. */
export const startNodeFlags = (): string[] => startCommand().filter((word) => word.startsWith('--'));
