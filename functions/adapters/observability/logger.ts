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

export type LineLevel = 'info' | 'warn';

/**
 * Writes lines laid out as pino lays them out (level, time, component, the
 * fields, msg) from fields the caller has already serialised, through the
 * logger's own stream, so they interleave with its other lines. For the line
 * every review writes: pino's generic serialiser costs several times more.
 */
export function preSerialisedLines(logger: Logger): (level: LineLevel, fields: string, msg: string) => void {
  const stream = (logger as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym]!;
  const component = JSON.stringify(logger.bindings().component ?? 'nri');
  return (level, fields, msg) => {
    if (!logger.isLevelEnabled(level)) return;
    stream.write(`{"level":"${level}","time":"${new Date().toISOString()}","component":${component},${fields},"msg":${JSON.stringify(msg)}}\n`);
  };
}
