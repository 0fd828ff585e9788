// `nri check`'s text answer: one block per check, what it found, the objects concerned and what
// to do. Pure: results in, text out.
import { count, type CheckResult, type CheckStatus } from '../core/check/report.js';

const MARK: Record<CheckStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', unknown: '??', skip: '--' };

export function checkReport(server: string, checks: readonly CheckResult[], exitStatus: number): string {
  const lines = [`nri check: ${server}`, ''];
  for (const check of checks) {
    lines.push(`[${MARK[check.status].padEnd(4)}] ${check.name.padEnd(11)} ${check.summary}`);
    for (const detail of check.details) lines.push(`${' '.repeat(19)}${detail}`);
    if (check.fix && check.status !== 'ok') lines.push(`${' '.repeat(19)}fix: ${check.fix}`);
  }
  const withStatus = (status: CheckStatus) => checks.filter((check) => check.status === status).length;
  const parts = [
    `${withStatus('fail')} failed`,
    count(withStatus('warn'), 'warning'),
    `${withStatus('unknown')} could not check`,
  ];
  lines.push(
    '',
    `${exitStatus === 0 ? 'healthy' : exitStatus === 1 ? 'NOT HEALTHY' : 'INCOMPLETE'}: ${parts.join(', ')} (exit ${exitStatus})`,
  );
  return `${lines.join('\n')}\n`;
}
