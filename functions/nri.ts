// `nri`: the command-line tool beside the function (`npx nri …` in a checkout,
// `nri …` in the image): explain (cli/explain.ts) and check (cli/check.ts).
import { exitUnlessSupportedNode } from './config/node-runtime.js';
import { check, CHECK_USAGE } from './cli/check.js';
import { explain, EXPLAIN_USAGE } from './cli/explain.js';

exitUnlessSupportedNode('nri');

const [command, ...rest] = process.argv.slice(2);
const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);
const commands = { explain, check } as const;
if (command === 'explain' || command === 'check') {
  commands[command](rest, out, err).then(
    (status) => {
      process.exitCode = status;
    },
    (error: Error) => {
      err(`nri ${command}: ${error.message}\n`);
      process.exitCode = 2;
    },
  );
} else if (command === '--help' || command === '-h') {
  out(`Usage: nri explain …  |  nri check …\n\n${EXPLAIN_USAGE}\n${CHECK_USAGE}`);
} else {
  err(
    `${command === undefined ? 'nri: a command is required' : `nri: unknown command ${command}`}\nRun "nri --help" for usage.\n`,
  );
  process.exitCode = 2;
}
