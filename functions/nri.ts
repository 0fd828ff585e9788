// `nri`: the command-line tool beside the function (`npx nri …` in a checkout,
// `nri …` in the image). One subcommand today: explain (cli/explain.ts).
import { exitUnlessSupportedNode } from './config/node-runtime.js';
import { explain, EXPLAIN_USAGE } from './cli/explain.js';

exitUnlessSupportedNode('nri');

const [command, ...rest] = process.argv.slice(2);
const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);
if (command === 'explain') {
  explain(rest, out, err).then(
    (status) => {
      process.exitCode = status;
    },
    (error: Error) => {
      err(`nri explain: ${error.message}\n`);
      process.exitCode = 2;
    },
  );
} else {
  err(`${command === undefined || command === '--help' || command === '-h' ? '' : `nri: unknown command ${command}\n\n`}Usage: nri explain …\n\n${EXPLAIN_USAGE}`);
  process.exitCode = command === '--help' || command === '-h' ? 0 : 2;
}
