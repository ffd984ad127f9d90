// The configured IP-to-AS table file (`asn.table`), loaded at start and again
// whenever its modification time or size changes (checked every
// `asn.check_interval_s`), so a cron job that downloads a fresh iptoasn dump
// needs no restart. A load that fails keeps the table in use (AsnDatabase).

import { stat } from 'node:fs/promises';
import { AsnDatabase, type BadLine } from './asn.js';

export interface AsnFileLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AsnFile {
  readonly database: AsnDatabase;
  /** Check the file now and load it if it changed (the timer does this on its own). */
  check(): Promise<void>;
  close(): void;
}

/** Bad lines logged per load; beyond, only their count. */
const BAD_LINES_LOGGED = 10;

export async function openAsnFile(path: string, opts: { checkIntervalS: number; logger: AsnFileLogger }): Promise<AsnFile> {
  const { logger } = opts;
  let bad: BadLine[] = [];
  const database = new AsnDatabase((b) => bad.push(b));
  let seen = '';
  let running: Promise<void> | undefined;

  async function load(): Promise<void> {
    let version: string;
    try {
      const s = await stat(path);
      version = `${s.mtimeMs}:${s.size}`;
    } catch (e) {
      if (seen !== 'missing') logger.error({ file: path, err: (e as Error).message }, `asn.table ${path} cannot be read; AS lists match with the table loaded before, if any`);
      seen = 'missing';
      return;
    }
    if (version === seen) return;
    seen = version;
    bad = [];
    const r = await database.load(path);
    for (const b of bad.slice(0, BAD_LINES_LOGGED)) logger.warn({ file: b.file, line: b.line, why: b.why }, `asn.table: line ${b.line} skipped: ${b.why}`);
    if (r.error !== undefined) logger.error({ file: path, err: r.error }, `asn.table not loaded: ${r.error}`);
    else logger.info({ file: path, ranges: r.ranges, bad: r.bad }, `asn.table loaded: ${r.ranges} ranges`);
  }

  const check = (): Promise<void> => (running ??= load().finally(() => (running = undefined)));
  await check();
  const timer = setInterval(() => void check(), opts.checkIntervalS * 1000);
  timer.unref();
  return { database, check, close: () => clearInterval(timer) };
}
