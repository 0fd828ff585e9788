// What the subcommands of `nri` share on their command line: `--flag value` or `--flag=value`,
// -h/--help, and the two ways a run ends before it starts (bad usage, help asked).

/** Bad usage: exit 2, with the reason and where help is. */
export class Usage extends Error {}
export class HelpAsked extends Error {}

/** Hands each flag and a reader of its value to `handle`; -h/--help throws HelpAsked. */
export function eachFlag(argv: readonly string[], handle: (flag: string, value: () => string) => void): void {
  for (let index = 0; index < argv.length; index++) {
    const [flag, inline] = argv[index]!.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === '-h' || flag === '--help') throw new HelpAsked();
    handle(flag, () => {
      const next = inline ?? argv[++index];
      if (next === undefined) throw new Usage(`${flag} needs a value`);
      return next;
    });
  }
}
