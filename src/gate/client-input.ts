// What the client sends, read as SMTP needs it: one command line at a time
// (with a length limit and bare-LF detection), or a whole DATA section
// (dot-unstuffed, size- and line-limited). Bytes read ahead stay buffered, so
// the session can tell when a client sent more than it was asked for
// (pipelining, pregreet). The socket is paused while too much is buffered.
//
// This runs for every command of every message, so it keeps its costs per
// read down: one promise per line or message (not one per wait), one timer
// per connection re-armed for each wait (not a new one each time), and the
// message copied in runs of lines that need no change rather than line by line.

import type { Socket } from 'node:net';
import { RearmableTimer } from './rearmable-timer.js';
import { MessageBuffer } from './memory-budget.js';

export type LineResult =
  | { kind: 'line'; text: string; raw: Buffer; bareLf: boolean }
  | { kind: 'toolong' }
  | { kind: 'timeout' }
  | { kind: 'eof' };

export interface DataLimits {
  maxBytes: number;
  lineLimit: number;
  timeoutMs: number;
  /** Where the message is held (charged to the gate's memory budget); default: a new unbudgeted buffer. */
  into?: MessageBuffer;
}

export type DataResult =
  | {
      kind: 'data';
      /** The message, unstuffed, every line ended by CRLF; empty when tooBig or overBudget. A view of `into`'s buffer. */
      message: Buffer;
      /** Bytes of message content received (counted on after the limit). */
      size: number;
      tooBig: boolean;
      /** Holding the message would have exceeded the memory budget: it was read to its end and dropped. */
      overBudget: boolean;
      longLine: boolean;
      /** A line was ended by LF alone (it was ended by CRLF in the message). */
      bareLf: boolean;
      /** A CR not followed by LF was in a line (it was made CRLF in the message). */
      bareCr: boolean;
    }
  | { kind: 'timeout' }
  | { kind: 'eof' };

const LF = 10;
const CR = 13;
const DOT = 46;
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
/** Buffered bytes beyond which the socket is paused until the session reads them. */
const HIGH_WATER = 64 * 1024;

const TOOLONG: LineResult = Object.freeze({ kind: 'toolong' });
const TIMEOUT = Object.freeze({ kind: 'timeout' as const });
const EOF = Object.freeze({ kind: 'eof' as const });

export class ClientInput {
  private buf: Buffer = EMPTY;
  private pos = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  private socket: Socket;
  /** Total bytes received since the last `markReceived()` check (for the pregreet test). */
  private receivedCount = 0;
  /** The one timer of this connection's waits; fires `onTimeout` unless the wait ended first. */
  private readonly timer = new RearmableTimer(() => this.onTimer());
  private onTimeout: (() => void) | undefined;

  private readonly onData = (chunk: Buffer): void => {
    this.receivedCount += chunk.length;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
    if (this.pending > HIGH_WATER && !this.wake) this.socket.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };
  private onTimer(): void {
    const f = this.onTimeout;
    this.onTimeout = undefined;
    f?.();
  }

  constructor(socket: Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  /**
   * Stop reading (before STARTTLS): the socket is paused so the bytes that
   * follow (the TLS handshake) stay in it; buffered plaintext is dropped.
   */
  detach(): void {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    this.discard();
  }

  /** Read from another socket from now on (the TLS socket after STARTTLS). */
  attach(socket: Socket): void {
    this.socket = socket;
    this.listen(socket);
  }

  /** The session is over: no wait is pending any more, and the timer must not hold the process. */
  close(): void {
    this.timer.clear();
    this.onTimeout = undefined;
  }

  /** Bytes received and not yet consumed. */
  get pending(): number {
    return this.buf.length - this.pos;
  }

  get received(): number {
    return this.receivedCount;
  }

  get eof(): boolean {
    return this.ended;
  }

  discard(): void {
    this.buf = EMPTY;
    this.pos = 0;
  }

  /** Resolve when more bytes arrive or the stream ends, or after `ms` (false then). */
  waitForInput(ms: number): Promise<boolean> {
    if (this.ended) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.arm(ms, () => {
        this.wake = undefined;
        resolve(false);
      });
      this.wake = () => {
        this.onTimeout = undefined;
        resolve(true);
      };
      this.socket.resume();
    });
  }

  /** One line, without its CRLF (or bare LF). A line over `limit` bytes is discarded whole and reported as toolong. */
  readLine(limit: number, timeoutMs: number): Promise<LineResult> {
    // Whether part of an over-long line was already thrown away, across waits.
    const state = { discarding: false };
    const now = this.takeLine(limit, state);
    if (now) return Promise.resolve(now);
    return this.waitFor(timeoutMs, () => this.takeLine(limit, state), TIMEOUT);
  }

  /**
   * The DATA section up to `<CR><LF>.<CR><LF>`, and nothing else. Lines are
   * unstuffed and re-ended with CRLF (a bare LF or bare CR too), so the
   * message is re-sent to the backend in one canonical framing whatever line
   * ends the client used: what the gate checked is what the backend gets,
   * and no next hop can find another end in it (no SMTP smuggling).
   */
  readData(limits: DataLimits): Promise<DataResult> {
    const reader = new DataReader(limits);
    const now = this.takeData(reader);
    if (now) return Promise.resolve(now);
    return this.waitFor(limits.timeoutMs, () => this.takeData(reader), TIMEOUT);
  }

  /**
   * Read and throw away `n` bytes: a BDAT chunk the session refuses (RFC
   * 3030 has the server consume it whatever its reply), so that no byte of
   * it is ever read as a command.
   */
  skip(n: number, timeoutMs: number): Promise<'done' | 'timeout' | 'eof'> {
    let left = n;
    const take = (): 'done' | undefined => {
      const k = Math.min(left, this.pending);
      this.pos += k;
      left -= k;
      if (this.pos >= this.buf.length) this.discard();
      return left === 0 ? 'done' : undefined;
    };
    const now = take();
    if (now) return Promise.resolve(now);
    return this.waitFor(timeoutMs, take, 'timeout' as const).then((r) => (typeof r === 'string' ? r : 'eof'));
  }

  /**
   * Resolve with `take()`'s first answer, trying again as input arrives;
   * `timedOut` once `ms` have passed; eof when the stream ends first.
   */
  private waitFor<T>(ms: number, take: () => T | undefined, timedOut: T): Promise<T | typeof EOF> {
    if (this.ended) return Promise.resolve(EOF);
    return new Promise((resolve) => {
      const attempt = (): void => {
        const r = take() ?? (this.ended ? EOF : undefined);
        if (r !== undefined) {
          this.onTimeout = undefined;
          resolve(r);
          return;
        }
        this.wake = attempt;
        this.socket.resume();
      };
      this.arm(ms, () => {
        this.wake = undefined;
        resolve(timedOut);
      });
      this.wake = attempt;
      this.socket.resume();
    });
  }

  /** The next complete line, or undefined when more input is needed. */
  private takeLine(limit: number, state: { discarding: boolean }): LineResult | undefined {
    const lf = this.buf.indexOf(LF, this.pos);
    if (lf >= 0) {
      const crlf = lf > this.pos && this.buf[lf - 1] === CR;
      const raw = this.buf.subarray(this.pos, crlf ? lf - 1 : lf);
      this.pos = lf + 1;
      if (state.discarding || raw.length > limit) return TOOLONG;
      return { kind: 'line', text: raw.toString('utf8'), raw, bareLf: !crlf };
    }
    if (this.pending > limit + 2) {
      // Keep nothing of an over-long line but the fact that it is one.
      state.discarding = true;
      this.discard();
    }
    return undefined;
  }

  /** Feed the buffered input to `reader`; its result once the final dot was read. */
  private takeData(reader: DataReader): DataResult | undefined {
    const r = reader.scan(this.buf, this.pos);
    this.pos = reader.consumed;
    return r;
  }

  /** Call `fn` after `ms` unless the wait ends first; the connection's one timer, re-armed. */
  private arm(ms: number, fn: () => void): void {
    this.onTimeout = fn;
    this.timer.arm(ms);
  }


  private listen(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/**
 * One DATA section being read: unstuffs, re-ends lines with CRLF, counts
 * size and line lengths. Lines that need no change (CRLF-ended, no bare CR,
 * no leading dot to remove) are copied as runs of the input, once, into the
 * message buffer (so the socket's chunks are not kept alive by the message).
 *
 * The end is `<CR><LF>.<CR><LF>` and nothing else (SMTP smuggling): a "."
 * line ends the message only when the line before it ended with CRLF (or it
 * is the first line). A bare LF or a bare CR ends a line of the message as
 * CRLF would; it is reported (bareLf, bareCr) for the session's bare_lf test.
 */
class DataReader {
  private readonly held: MessageBuffer;
  private size = 0;
  private tooBig = false;
  private overBudget = false;
  private longLine = false;
  private bareLf = false;
  private bareCr = false;
  private atLineStart = true;
  /** The line before ended with CRLF (or there was none): a "." line here is the end. */
  private afterCrlf = true;
  private lineLength = 0;
  /** Where scanning stopped in the buffer given to the last scan(). */
  consumed = 0;

  constructor(private readonly limits: DataLimits) {
    this.held = limits.into ?? (MessageBuffer.open(undefined, 16 * 1024, limits.maxBytes) as MessageBuffer);
  }

  /** Read lines of `buf` from `pos`; the result once the final dot was read, else undefined (all of buf used or kept). */
  scan(buf: Buffer, pos: number): DataResult | undefined {
    const { lineLimit } = this.limits;
    // Start of the run of unchanged lines not yet appended.
    let run = pos;
    // The next CR at or after pos: one search per line finds both CRLFs and bare CRs.
    let cr = buf.indexOf(CR, pos);
    for (;;) {
      const lf = buf.indexOf(LF, pos);
      if (lf < 0) {
        this.append(buf.subarray(run, pos));
        // A line longer than the limit: move what we have into the message so
        // the buffer stays small, keeping a trailing CR that may start CRLF.
        let end = buf.length;
        if (end - pos > lineLimit + 2) {
          if (buf[end - 1] === CR) end--;
          let start = pos;
          if (this.atLineStart && buf[start] === DOT) start++;
          this.lineLength += end - pos;
          this.longLine ||= this.lineLength > lineLimit;
          this.appendContent(buf, start, end, cr);
          this.atLineStart = false;
          pos = end;
        }
        this.consumed = pos;
        return undefined;
      }
      const crlf = lf > pos && buf[lf - 1] === CR;
      const contentEnd = crlf ? lf - 1 : lf;
      const bareCr = cr >= 0 && cr < contentEnd;
      if (this.atLineStart && this.afterCrlf && crlf && contentEnd - pos === 1 && buf[pos] === DOT) {
        this.append(buf.subarray(run, pos));
        this.consumed = lf + 1;
        const message = this.tooBig || this.overBudget ? EMPTY : this.held.bytes;
        return { kind: 'data', message, size: this.size, tooBig: this.tooBig, overBudget: this.overBudget, longLine: this.longLine, bareLf: this.bareLf, bareCr: this.bareCr };
      }
      const dotted = this.atLineStart && buf[pos] === DOT && contentEnd > pos;
      if (!crlf) this.bareLf = true;
      this.lineLength += contentEnd - pos;
      this.longLine ||= this.lineLength > lineLimit;
      if (!crlf || dotted || bareCr) {
        // This line changes (a bare LF or CR becomes CRLF, a leading dot goes): end the run before it.
        this.append(buf.subarray(run, pos));
        this.appendContent(buf, dotted ? pos + 1 : pos, contentEnd, cr);
        this.append(CRLF);
        run = lf + 1;
      }
      this.atLineStart = true;
      this.afterCrlf = crlf;
      this.lineLength = 0;
      pos = lf + 1;
      if (cr >= 0 && cr < pos) cr = buf.indexOf(CR, pos);
    }
  }

  /** buf[start, end) as message text, every bare CR in it made CRLF; `cr` is the first CR at or after start's line. */
  private appendContent(buf: Buffer, start: number, end: number, cr: number): void {
    if (cr >= 0 && cr < start) cr = buf.indexOf(CR, start);
    while (cr >= 0 && cr < end) {
      this.bareCr = true;
      this.append(buf.subarray(start, cr));
      this.append(CRLF);
      start = cr + 1;
      cr = buf.indexOf(CR, start);
    }
    this.append(buf.subarray(start, end));
  }

  private append(b: Buffer): void {
    if (b.length === 0) return;
    this.size += b.length;
    if (this.tooBig || this.overBudget) return;
    if (this.size > this.limits.maxBytes) {
      // Counted on to the end, no longer held.
      this.tooBig = true;
      this.held.release();
      return;
    }
    if (!this.held.append(b)) this.overBudget = true;
  }
}
