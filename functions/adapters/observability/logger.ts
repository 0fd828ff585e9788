// Structured JSON logs (pino). Reviews log a summary line, never a pod spec.
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../../config/settings.js';

export type { Logger };

/** How long a buffered log line may wait before it is written. */
const FLUSH_EVERY_MS = 500;

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  // Lines are buffered and written 4 KiB at a time (one syscall per many
  // reviews instead of one per line), and at least every FLUSH_EVERY_MS.
  // Written synchronously, as pino does by default: an asynchronous write
  // costs a thread-pool round trip and a callback, more than the write itself.
  const stream = destination ?? pino.destination({ dest: 1, sync: true, minLength: 4096 });
  if (!destination) setInterval(() => (stream as ReturnType<typeof pino.destination>).flush(), FLUSH_EVERY_MS).unref();
  return pino(
    {
      level,
      base: { component: 'nri' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}
