// The one place loggers are made: JSON lines (pino) to stdout, stderr or a file.

import { pino, type Logger, type LevelWithSilent } from 'pino';
import { lineDestination } from './log-destination.js';

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

/**
 * Log lines are written in blocks of this many bytes (and at least every
 * FLUSH_MS, and at exit): ~30 decision lines a write(2). With 4 KiB blocks
 * the write was a line in three, ~4% of a decision's CPU in process.
 */
const BUFFER_BYTES = 32768;
const FLUSH_MS = 1000;
const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!LEVELS.includes(level)) throw new Error(`log level "${level}" is not one of ${LEVELS.join(', ')}`);
  const buffered = opts.buffered ?? opts.stream !== 'stderr';
  const target = { dest: opts.file ? opts.file : opts.stream === 'stderr' ? 2 : 1 };
  const dest = lineDestination({ dest: target.dest, minLength: buffered ? BUFFER_BYTES : 0, flushMs: FLUSH_MS });
  const logger = pino({ level: level as LevelWithSilent, name: opts.name ?? 'frontline', base: { pid: process.pid } }, dest);
  plainLoggers.add(logger);
  return logger;
}

/** Loggers made here: default levels, epoch time, no formatters, hooks, redaction or serializers. */
const plainLoggers = new WeakSet<Logger>();

/**
 * `logger.child(bindings)` that keeps infoLine's fast path: a child of a
 * logger made by createLogger, given bindings only (no options), is as plain
 * as its parent; pino writes its bindings into the child's chindings, which
 * infoLine copies.
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  const child = logger.child(bindings);
  if (plainLoggers.has(logger)) plainLoggers.add(child);
  return child;
}

/**
 * A field value that is JSON text already: infoLine writes the text as it
 * is; anything else that serialises it (pino, JSON.stringify) gets the
 * value it stands for.
 */
export class JsonText {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

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
    line += `${keyPrefix(key)}${typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null') : typeof v === 'string' ? jsonString(v) : v instanceof JsonText ? v.text : JSON.stringify(v)}`;
  }
  stream.write(`${line},"msg":${JSON.stringify(msg)}}\n`);
}

/** `,"key":` for a field name: the same few names on every line, so made once each. */
const keyPrefixes = new Map<string, string>();
function keyPrefix(key: string): string {
  let p = keyPrefixes.get(key);
  if (p === undefined) {
    p = `,${JSON.stringify(key)}:`;
    if (keyPrefixes.size < 1000) keyPrefixes.set(key, p);
  }
  return p;
}

/** JSON for a string: quoted as it is when nothing in it needs escaping (nearly always), else JSON.stringify. */
const NEEDS_ESCAPE = /["\\\x00-\x1f\u2028\u2029\ud800-\udfff]/;
export function jsonString(v: string): string {
  return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`;
}

/** A logger that writes nothing (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
