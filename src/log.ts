// The one place loggers are made: JSON lines (pino) to stdout, stderr or a file.

import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** A file path, or null/undefined for stdout. */
  file?: string | null;
  /** Where to write when no file is given. Default stdout; CLI commands that print results use stderr. */
  stream?: 'stdout' | 'stderr';
  /**
   * Buffer writes in 4 KiB blocks, flushed at least once a second (fast: one
   * write per block, not per line; call `logger.flush()` before exit).
   * Default true for files and stdout.
   */
  buffered?: boolean;
  name?: string;
}

const BUFFER_BYTES = 4096;
const FLUSH_MS = 1000;
const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!LEVELS.includes(level)) throw new Error(`log level "${level}" is not one of ${LEVELS.join(', ')}`);
  const buffered = opts.buffered ?? opts.stream !== 'stderr';
  const target = opts.file ? { dest: opts.file, mkdir: true } : { dest: opts.stream === 'stderr' ? 2 : 1 };
  const dest = pino.destination({ ...target, sync: !buffered, minLength: buffered ? BUFFER_BYTES : 0 });
  if (buffered) {
    const timer = setInterval(() => {
      try {
        dest.flush();
      } catch {
        // not open yet, or a write in progress: the next tick flushes
      }
    }, FLUSH_MS);
    timer.unref();
  }
  const logger = pino({ level: level as LevelWithSilent, name: opts.name ?? 'frontline', base: { pid: process.pid } }, dest);
  plainLoggers.add(logger);
  return logger;
}

/** Loggers made here: default levels, epoch time, no formatters, hooks, redaction or serializers. */
const plainLoggers = new WeakSet<Logger>();

/**
 * `logger.info(fields, msg)` for a line written on every decision: for a
 * logger made by createLogger, the same JSON line pino would write, built
 * directly (pino's generic path cost about three times as much); any other
 * logger (tests' own, children) goes through pino. Fields must be plain JSON
 * data; undefined ones are left out, as pino does.
 */
export function infoLine(logger: Logger, fields: Record<string, unknown>, msg: string): void {
  if (!plainLoggers.has(logger)) {
    logger.info(fields, msg);
    return;
  }
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as { write(s: string): unknown };
  let line = `{"level":30,"time":${Date.now()}${internals[pino.symbols.chindingsSym] as string}`;
  for (const key in fields) {
    const v = fields[key];
    if (v === undefined) continue;
    line += `,${JSON.stringify(key)}:${typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null') : JSON.stringify(v)}`;
  }
  stream.write(`${line},"msg":${JSON.stringify(msg)}}\n`);
}

/** A logger that writes nothing (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
