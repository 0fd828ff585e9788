// Structured JSON logs (pino). Reviews log a summary line, never a pod spec.
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../../config/settings.js';

export type { Logger };

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { component: 'nri' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces: these never belong in a log line.
      redact: { paths: ['pod', 'object', 'request.object', '*.token', '*.data'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 }),
  );
}
