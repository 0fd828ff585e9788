// npm run bench:large-cluster: only the large-cluster rows of `npm run bench` (bench/large-cluster.ts),
// for a run that wants the real control plane's figures without the loopback rounds before them.
import { cpus, totalmem } from 'node:os';
import { largeClusterRows } from './large-cluster.js';
import { onAllCpus } from './targets.js';

const rows = await onAllCpus(largeClusterRows);
const header = ['Measure', 'nri', 'Baseline', 'Ratio', 'Goal', ''];
console.log(
  `\nMachine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; one run.\n`,
);
console.log([header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n'));
if (rows.some((row) => row[5] === 'MISSED')) process.exitCode = 1;
