// A pino logger whose JSON lines land in an array, for tests that assert what
// was logged (an error naming the setting to change, a log line per limit hit).

import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export interface CapturedLog {
  logger: Logger;
  lines: Array<Record<string, unknown> & { level: number; msg: string }>;
  /** Lines at pino level `error` (50) or above. */
  errors(): Array<Record<string, unknown> & { msg: string }>;
}

export function captureLogger(level = 'debug'): CapturedLog {
  const lines: CapturedLog['lines'] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines, errors: () => lines.filter((l) => l.level >= 50) };
}
