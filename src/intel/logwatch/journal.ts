// The systemd journal through `journalctl -f -o json`. Each entry brings its
// message, program (SYSLOG_IDENTIFIER) and unit (_SYSTEMD_UNIT) as separate
// fields: no syslog header to parse. The cursor of the last entry processed
// is saved, so a restart continues after it (--after-cursor). journalctl is
// restarted if it exits; when it is not installed, the source is off with a
// warning.
//
// SYSLOG_IDENTIFIER is whatever the logging process says it is: any local
// user can log as "sshd". `units:` limits the source to the trusted
// _SYSTEMD_UNIT field (journalctl -u, and checked again here).

import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../../log.js';
import { cutText, type LogLine } from './line.js';
import { LineSplitter } from './splitter.js';
import type { OffsetStore } from './state.js';

export interface JournalOptions {
  journalctl?: string;
  units?: readonly string[];
  /** With no saved cursor: only new entries (`end`, default) or the whole journal (`start`). */
  startAt?: 'end' | 'start';
  maxLineBytes: number;
  offsets: OffsetStore;
  /** Key of the cursor in the state file. */
  stateKey: string;
  onLines: (lines: LogLine[]) => Promise<void> | void;
  logger?: Logger;
  /** Wait before restarting journalctl after it exits (default 5 s). */
  restartDelayMs?: number;
}

interface JournalEntry {
  MESSAGE?: string | number[] | null;
  SYSLOG_IDENTIFIER?: string | number[];
  _SYSTEMD_UNIT?: string | number[];
  __CURSOR?: string;
  __REALTIME_TIMESTAMP?: string;
}

function text(v: string | number[] | null | undefined): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'string' ? v : Array.isArray(v) ? Buffer.from(v).toString('utf8') : undefined;
}

/** A journal JSON line as a LogLine, or undefined when it has no message (or a unit outside `units`). */
export function journalLine(json: string, maxLineBytes: number, units: readonly string[], lineNo: number): { line?: LogLine; cursor?: string } {
  let e: JournalEntry;
  try {
    e = JSON.parse(json) as JournalEntry;
  } catch {
    return {};
  }
  if (typeof e !== 'object' || e === null) return {};
  const cursor = typeof e.__CURSOR === 'string' ? e.__CURSOR : undefined;
  const message = text(e.MESSAGE);
  if (message === undefined) return { cursor };
  const unit = text(e._SYSTEMD_UNIT);
  if (units.length > 0 && (unit === undefined || !units.includes(unit))) return { cursor };
  const { text: cutMessage, cut } = cutText(message, maxLineBytes);
  const program = text(e.SYSLOG_IDENTIFIER);
  const us = Number(e.__REALTIME_TIMESTAMP);
  return {
    cursor,
    line: { text: cutMessage, message: cutMessage, program, cut, lineNo, time: Number.isFinite(us) && us > 0 ? Math.floor(us / 1000) : undefined },
  };
}

export class JournalSource {
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private lineNo = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: JournalOptions) {}

  start(): void {
    if (this.stopped) return;
    const cursor = this.opts.offsets.cursor(this.opts.stateKey);
    const args = ['-f', '-o', 'json', '--no-pager', '--output-fields=MESSAGE,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT'];
    if (cursor) args.push(`--after-cursor=${cursor}`);
    else args.push('-n', this.opts.startAt === 'start' ? 'all' : '0');
    for (const u of this.opts.units ?? []) args.push('-u', u);
    const cmd = this.opts.journalctl ?? 'journalctl';
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // JSON escaping can multiply a message's length by six; the message itself is cut later.
    const splitter = new LineSplitter(Math.max(65536, this.opts.maxLineBytes * 8));
    let offset = 0;
    let missing = false;
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        missing = true;
        this.child = undefined;
        this.opts.logger?.warn({ journalctl: cmd }, 'journalctl not found: the journal source is off');
      } else this.opts.logger?.error({ err: e.message }, 'journalctl failed');
    });
    child.stderr!.on('data', (d: Buffer) => this.opts.logger?.warn({ journalctl: d.toString().trim().slice(0, 500) }, 'journalctl says'));
    child.stdout!.on('data', (chunk: Buffer) => {
      const split = splitter.push(chunk, offset);
      offset += chunk.length;
      if (split.length === 0) return;
      child.stdout!.pause();
      this.queue = this.queue
        .then(() => this.process(split.map((s) => s.text)))
        .catch((e) => this.opts.logger?.error({ err: (e as Error).message }, 'journal lines not processed'))
        .finally(() => child.stdout!.resume());
    });
    child.on('close', (code) => {
      this.child = undefined;
      if (this.stopped || missing) return;
      this.opts.logger?.warn({ code }, 'journalctl exited: restarting');
      this.restartTimer = setTimeout(() => this.start(), this.opts.restartDelayMs ?? 5000);
    });
  }

  private async process(jsonLines: string[]): Promise<void> {
    const lines: LogLine[] = [];
    let cursor: string | undefined;
    for (const json of jsonLines) {
      const r = journalLine(json, this.opts.maxLineBytes, this.opts.units ?? [], this.lineNo + 1);
      if (r.cursor) cursor = r.cursor;
      if (r.line) {
        this.lineNo++;
        lines.push(r.line);
      }
    }
    if (lines.length > 0) await this.opts.onLines(lines);
    if (cursor) {
      this.opts.offsets.setCursor(this.opts.stateKey, cursor);
      await this.opts.offsets.save();
    }
  }

  /** Lines handed over so far are processed once this resolves. */
  drained(): Promise<void> {
    return this.queue;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child && child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const closed = new Promise<void>((res) => child.once('close', () => res()));
      child.kill('SIGTERM');
      await closed;
    }
    await this.queue;
  }
}
