// The README's commands, run as a reader would run them: every shell block names
// the test that runs it, and the ones that need no cluster run here, over real
// HTTP, through `npm start` itself (which bundles into dist/, apart from the
// build/dist/ the other tests run).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../support/fixtures.js';
import { eventually, freePort, send } from '../support/function-process.js';
import { readmeBlocks, readmeCommand, writeInstallOverlay } from '../support/readme.js';

const root = fileURLToPath(repoRoot);
const examples = (name: string) =>
  JSON.parse(readFileSync(new URL(`examples/reviews/${name}.expected.json`, repoRoot), 'utf8'));

/** A shell command run from the repository root in its own process group, its output collected. */
function shell(
  command: string,
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
    cwd: root,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    },
  };
}

/** Runs a command to its end; its stdout (stderr on failure, in the message). */
function run(command: string): string {
  return execFileSync('bash', ['-o', 'pipefail', '-c', command], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('README', () => {
  it('gives the two commands', () => {
    assert.equal(readmeCommand('quick-start'), 'npm ci && npm start\n');
    assert.equal(readmeBlocks().find((block) => block.marker === 'ci')?.code, 'npm test\n');
    assert.match(
      readFileSync(new URL('.ci/run', repoRoot), 'utf8'),
      /^npm ci .*\n(?:.*\n)*npm test$/m,
      "CI runs npm ci, then the README's test command",
    );
  });

  it("reads in an operator's order, with a table of contents, short enough for ten minutes", () => {
    const readme = readFileSync(new URL('README.md', repoRoot), 'utf8');
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((match) => match[1]);
    assert.deepEqual(sections, [
      'What it does',
      'Quick start',
      'Install',
      'Configure',
      'Migrate from the upstream injector',
      'Troubleshoot',
      'Operate',
      'More',
    ]);
    const contents = /^\*\*Contents:\*\*([\s\S]*?)\n\n/m.exec(readme)![1]!;
    for (const section of sections) assert.ok(contents.includes(`[${section}](#`), `contents link ${section}`);
    const lines = readme.trimEnd().split('\n').length;
    assert.ok(lines <= 400, `${lines} lines: the front door is read in ten minutes; depth goes to docs/`);
    for (const link of readme.matchAll(/\]\((docs\/[a-z-]+\.md)/g))
      assert.ok(existsSync(new URL(link[1]!, repoRoot)), link[1]);
  });

  it("says next to every ratio of the benchmark table how it was computed (a median of in-round ratios is not the figures' quotient)", () => {
    const text = readFileSync(new URL('docs/benchmarks.md', repoRoot), 'utf8');
    const start = text.indexOf('| Measure | nri | Baseline | Ratio |');
    const table = text.slice(start, text.indexOf('\n\n', start)).split('\n').slice(2);
    const ratios = table.map((line) => line.split(' | ')[3] ?? '').filter((cell) => /^\d+\.\d\d/.test(cell));
    assert.ok(ratios.length >= 10, `${ratios.length} ratios`);
    for (const cell of ratios)
      assert.match(cell, /^\d+\.\d\d \((nri ÷ baseline|median of \d+ in-round ratios|mean ÷ mean)\)$/);
  });

  it('ships the Apache-2.0 licence package.json names, and a NOTICE', () => {
    assert.equal(JSON.parse(readFileSync(new URL('package.json', repoRoot), 'utf8')).license, 'Apache-2.0');
    assert.match(
      readFileSync(new URL('LICENSE', repoRoot), 'utf8'),
      /^\s+Apache License\n\s+Version 2\.0, January 2004/,
    );
    assert.match(readFileSync(new URL('NOTICE', repoRoot), 'utf8'), /Apache License, Version 2\.0/);
  });

  it('names, above every shell block, the test that runs it, and that test reads the block', () => {
    const shellBlocks = readmeBlocks().filter((block) => block.language === 'sh');
    assert.ok(shellBlocks.length >= 8);
    for (const block of shellBlocks) {
      assert.ok(block.marker, `no <!-- test: … --> above:\n${block.code}`);
      if (block.marker.startsWith('not run')) {
        assert.match(block.code, /^docker /m, 'only a Docker engine is beyond the tests');
        continue;
      }
      if (block.marker === 'ci') continue;
      for (const part of block.marker.split(',')) {
        const words = part.trim().split(' ');
        const [file, id] =
          words[0] === 'e2e' ? [`test/e2e/${words[1]}`, words[2]] : [`test/integration/${words[0]}`, words[1]];
        assert.ok(existsSync(new URL(file!, repoRoot)), `${file} exists`);
        assert.ok(
          readFileSync(new URL(file!, repoRoot), 'utf8').includes(`readmeCommand('${id}')`),
          `${file} runs the block "${id}"`,
        );
      }
    }
  });

  it('shows the patch the one-network example really gets', () => {
    const block = /<!-- example-patch: one-network -->\s*```json\n([\s\S]*?)```/.exec(
      readFileSync(new URL('README.md', repoRoot), 'utf8'),
    );
    assert.ok(block, 'README has the marked example block');
    const operations = (text: string) =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line));
    assert.deepEqual(operations(block[1]!), examples('one-network').patch);
  });

  it('documents every environment variable the function reads', () => {
    const readme = readFileSync(new URL('README.md', repoRoot), 'utf8');
    const source = readFileSync(new URL('functions/config/settings.ts', repoRoot), 'utf8');
    const variables = new Set([...source.matchAll(/'((?:NRI_|PORT)[A-Z0-9_]*)'/g)].map((m) => m[1]!));
    variables.add('KUBECONFIG');
    assert.ok(variables.size > 15);
    for (const variable of variables)
      assert.match(
        readme,
        new RegExp(`^\\| (?:\`[A-Z_]+\`, )?\`${variable}\`(?:, \`[A-Z_]+\`)? \\|`, 'm'),
        `${variable} is in the configuration table`,
      );
  });

  it('shows the existing-namespace overlay as examples/overlays/webhooks has it', () => {
    const snippet = readmeBlocks().find(
      (block) => block.language === 'yaml' && block.code.includes('follow-namespace'),
    )!.code;
    const example = parseAllDocuments(
      readFileSync(new URL('examples/overlays/webhooks/kustomization.yaml', repoRoot), 'utf8'),
    )[0]!.toJS();
    const shown = parseAllDocuments(snippet)[0]!.toJS();
    for (const key of Object.keys(shown)) assert.deepEqual(shown[key], example[key], key);
  });

  it('install: the overlay its block writes renders nri with its own namespace and the image named', () => {
    const dir = writeInstallOverlay();
    const objects = parseAllDocuments(
      execFileSync('kubectl', ['kustomize', join(dir, 'overlays', 'prod')], { encoding: 'utf8' }),
    ).map((document) => document.toJS());
    assert.equal(objects.find((object) => object.kind === 'Namespace')?.metadata.name, 'nri');
    const ksvc = objects.find((object) => object.kind === 'Service' && object.apiVersion === 'serving.knative.dev/v1');
    assert.equal(ksvc.spec.template.spec.containers[0].image, 'registry.example.com/nri:0.1.0');
    assert.match(
      readmeCommand('install'),
      /^kubectl apply -k overlays\/prod$/m,
      'the e2e suite applies what this renders',
    );
    // Run in a checkout, the block leaves nothing git would list as untracked.
    if (existsSync(new URL('.git', repoRoot))) {
      execFileSync('git', ['check-ignore', '--quiet', '--no-index', 'overlays/prod/kustomization.yaml'], {
        cwd: fileURLToPath(repoRoot),
      });
    }
  });

  it('explain: the summary of the two-networks example', () => {
    const output = run(readmeCommand('explain'));
    assert.match(output, /^Pod default\/web-\*$/m);
    assert.match(
      output,
      /^Resources: +example\.com\/foo=1 in container "app", intel\.com\/sriov_netdevice_a=1 in container "app"$/m,
    );
    assert.match(output, /^Volumes: +podnetinfo \(Downward API\) mounted at \/etc\/podnetinfo in "app", "sidecar"$/m);
    assert.match(output, /^Result: +patched \(\d+ JSONPatch operations\)$/m);
  });

  describe('run as written, against `npm start`', () => {
    let server: ReturnType<typeof shell> | undefined;
    after(async () => {
      await server?.stop();
    });

    const serving = async (port: number) => {
      await eventually(
        () =>
          send(`http://localhost:${port}/healthz`, { timeoutMs: 500 }).then(
            (r) => r.status,
            () => 0,
          ),
        (status) => status === 200,
        60000,
        100,
      );
    };

    it('quick-start: `npm start` serves the example NADs', async () => {
      const port = await freePort();
      const start = shell(readmeCommand('quick-start').replace(/^npm ci && /, ''), { PORT: String(port) });
      try {
        await serving(port);
        const answer = await send(`http://localhost:${port}/mutate`, {
          body: readFileSync(new URL('examples/reviews/one-network.json', repoRoot), 'utf8'),
        });
        assert.equal(answer.json.response.allowed, true);
      } finally {
        await start.stop();
      }
    });

    it('SIGTERM to `npm start` (a terminal, a process manager) stops nri too, not npm alone', async () => {
      const port = await freePort();
      const npm = spawn('npm', ['start'], { cwd: root, env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
      try {
        await serving(port);
        const exited = new Promise((resolve) => npm.once('exit', resolve));
        npm.kill('SIGTERM');
        await exited;
        const refused = await eventually(
          () =>
            send(`http://localhost:${port}/healthz`, { timeoutMs: 500 }).then(
              () => false,
              () => true,
            ),
          (gone) => gone,
          15000,
          200,
        );
        assert.ok(refused, 'nri stopped listening');
      } finally {
        if (npm.exitCode === null) npm.kill('SIGKILL');
      }
    });

    it('logs: the recipe reads every line, and keeps nri serving', async () => {
      const port = await freePort();
      server = shell(readmeCommand('logs'), { PORT: String(port) });
      await serving(port);
      const at = (command: string) => command.replaceAll('localhost:8080', `localhost:${port}`);

      // try-it: the decoded patch of the one-network example
      const printed = run(at(readmeCommand('try-it')));
      assert.deepEqual(
        printed
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line)),
        examples('one-network').patch,
      );
      assert.equal(
        printed,
        /<!-- example-patch: one-network -->\s*```json\n([\s\S]*?)```/.exec(
          readFileSync(new URL('README.md', repoRoot), 'utf8'),
        )![1],
        'the README shows exactly what the command prints',
      );

      // compare-example: every example that needs no other setting agrees with its .expected.json
      for (const name of [
        'one-network',
        'two-networks',
        'node-selector',
        'denied-missing-network',
        'denied-bad-annotation',
      ]) {
        assert.equal(
          run(at(readmeCommand('compare-example')).replace(/^example=.*$/m, `example=${name}`)),
          'as expected\n',
          name,
        );
      }
      // sriov-hugepages needs NRI_INJECT_HUGEPAGE_DOWN_API=true, which this server lacks: the difference is shown, and no "as expected"
      const differs = run(
        `${at(readmeCommand('compare-example'))
          .replace(/^example=.*$/m, 'example=sriov-hugepages')
          .trimEnd()} || true`,
      );
      assert.match(differs, /hugepages_1G_request_testpmd/);
      assert.doesNotMatch(differs, /as expected/);

      await eventually(
        () => server!.output(),
        (text) => /^info review patched /m.test(text) && /^warn review denied /m.test(text),
        10000,
        100,
      );
      assert.equal(server.child.exitCode, null, 'nri is still serving behind the pipe');
      assert.doesNotMatch(server.output(), /parse error/);
    });
  });
});
