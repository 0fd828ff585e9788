// `webhook`: nri started as the upstream injector is started, with its flags
// (config/upstream-flags.ts says how each maps to nri's settings). It turns the
// flags into the environment and replaces itself (execve) with nri's own
// process, started as the container starts it: same Node flags, same PID, so
// signals and exit codes are the platform's to see. Bad flags exit 2 with the
// reason and the usage, as Go's flag package does.
import { exitUnlessSupportedNode } from './config/node-runtime.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceAccountDir } from './config/service-account.js';
import { parseUpstreamFlags, usage } from './config/upstream-flags.js';

exitUnlessSupportedNode('webhook');

/** The start command's V8 flags, written into the bundle from package.json (scripts/bundle.mjs). */
declare const NRI_START_FLAGS: string[];

const serviceAccountCa = join(serviceAccountDir(process.env), 'ca.crt');
const outcome = parseUpstreamFlags(
  process.argv.slice(2),
  process.env,
  existsSync(serviceAccountCa) ? serviceAccountCa : undefined,
);
if (!outcome.ok) {
  process.stderr.write(`webhook: ${outcome.error}\n${usage()}`);
  process.exit(2);
}
if (outcome.value.kind === 'help') {
  process.stderr.write(outcome.value.text);
  process.exit(0);
}
const main = fileURLToPath(new URL('./main.js', import.meta.url));
process.execve!(process.execPath, [process.execPath, ...NRI_START_FLAGS, main], outcome.value.env);
