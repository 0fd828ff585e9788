// What `nri check` found: one result per check, and the exit status they add up to. Pure.

/** ok: healthy; warn: works, with a risk worth knowing; fail: broken; unknown: could not check; skip: does not apply. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'unknown' | 'skip';

export interface CheckResult {
  /** short and stable, for scripts reading -o json */
  name: 'webhook' | 'certificate' | 'replicas' | 'resources' | 'pods' | 'injectors';
  status: CheckStatus;
  /** one sentence: what was found */
  summary: string;
  /** the objects concerned, one line each */
  details: string[];
  /** what to do about it, when something is to be done */
  fix?: string;
}

export const result = (
  name: CheckResult['name'],
  status: CheckStatus,
  summary: string,
  details: string[] = [],
  fix?: string,
): CheckResult => (fix === undefined ? { name, status, summary, details } : { name, status, summary, details, fix });

/** 1 when a check failed, else 2 when one could not check, else 0. */
export function exitStatus(results: readonly CheckResult[]): 0 | 1 | 2 {
  if (results.some((check) => check.status === 'fail')) return 1;
  if (results.some((check) => check.status === 'unknown')) return 2;
  return 0;
}

/** At most `limit` lines, and how many more there were. */
export function firstLines(lines: readonly string[], limit = 20): string[] {
  return lines.length <= limit ? [...lines] : [...lines.slice(0, limit), `… and ${lines.length - limit} more`];
}

/** "1 pod", "2 pods". */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
