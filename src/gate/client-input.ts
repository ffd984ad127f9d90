// What the client sends, read as SMTP needs it: one command line at a time
// (with a length limit and bare-LF detection), or a whole DATA section
// (dot-unstuffed, size- and line-limited). Bytes read ahead stay buffered, so
// the session can tell when a client sent more than it was asked for
// (pipelining, pregreet). The socket is paused while too much is buffered.

import type { Socket } from 'node:net';

export type LineResult =
  | { kind: 'line'; text: string; raw: Buffer; bareLf: boolean }
  | { kind: 'toolong' }
  | { kind: 'timeout' }
  | { kind: 'eof' };

export interface DataLimits {
  maxBytes: number;
  lineLimit: number;
  timeoutMs: number;
}

export type DataResult =
  | {
      kind: 'data';
      /** The message, unstuffed, every line ended by CRLF; empty when tooBig. */
      message: Buffer;
      /** Bytes of message content received (counted on after the limit). */
      size: number;
      tooBig: boolean;
      longLine: boolean;
      bareLf: boolean;
    }
  | { kind: 'timeout' }
  | { kind: 'eof' };

const LF = 10;
const CR = 13;
const DOT = 46;
const CRLF = Buffer.from('\r\n');
/** Buffered bytes beyond which the socket is paused until the session reads them. */
const HIGH_WATER = 64 * 1024;

export class ClientInput {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  private socket: Socket;
  /** Total bytes received since the last `markReceived()` check (for the pregreet test). */
  private receivedCount = 0;

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
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }

  /** Resolve when more bytes arrive or the stream ends, or after `ms` (false then). */
  waitForInput(ms: number): Promise<boolean> {
    if (this.ended) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.socket.resume();
    });
  }

  /** One line, without its CRLF (or bare LF). A line over `limit` bytes is discarded whole and reported as toolong. */
  async readLine(limit: number, timeoutMs: number): Promise<LineResult> {
    const deadline = Date.now() + timeoutMs;
    let discarding = false;
    for (;;) {
      const lf = this.buf.indexOf(LF, this.pos);
      if (lf >= 0) {
        const crlf = lf > this.pos && this.buf[lf - 1] === CR;
        const raw = this.buf.subarray(this.pos, crlf ? lf - 1 : lf);
        this.pos = lf + 1;
        if (discarding || raw.length > limit) return { kind: 'toolong' };
        return { kind: 'line', text: raw.toString('utf8'), raw, bareLf: !crlf };
      }
      if (this.pending > limit + 2) {
        // Keep nothing of an over-long line but the fact that it is one.
        discarding = true;
        this.discard();
      }
      if (this.ended) return { kind: 'eof' };
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForInput(left))) return { kind: 'timeout' };
    }
  }

  /**
   * The DATA section up to the line "." (ended by CRLF). Lines are unstuffed
   * and re-ended with CRLF, so the message is re-sent to the backend in one
   * canonical framing whatever line ends the client used: what the gate
   * checked is what the backend gets (no SMTP smuggling through the gate).
   */
  async readData(limits: DataLimits): Promise<DataResult> {
    const deadline = Date.now() + limits.timeoutMs;
    const parts: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    let longLine = false;
    let bareLf = false;
    let atLineStart = true;
    let lineLength = 0;

    const append = (b: Buffer): void => {
      size += b.length;
      if (tooBig) return;
      if (size > limits.maxBytes) {
        tooBig = true;
        parts.length = 0;
        return;
      }
      parts.push(b);
    };

    for (;;) {
      for (;;) {
        const lf = this.buf.indexOf(LF, this.pos);
        if (lf < 0) {
          // A line longer than the limit: move what we have into the message so
          // the buffer stays small, keeping a trailing CR that may start CRLF.
          let end = this.buf.length;
          if (end - this.pos > limits.lineLimit + 2) {
            if (this.buf[end - 1] === CR) end--;
            let chunk = this.buf.subarray(this.pos, end);
            if (atLineStart && chunk[0] === DOT) chunk = chunk.subarray(1);
            lineLength += end - this.pos;
            longLine ||= lineLength > limits.lineLimit;
            append(chunk);
            atLineStart = false;
            this.pos = end;
          }
          break;
        }
        const crlf = lf > this.pos && this.buf[lf - 1] === CR;
        const content = this.buf.subarray(this.pos, crlf ? lf - 1 : lf);
        this.pos = lf + 1;
        if (!crlf) bareLf = true;
        if (atLineStart && crlf && content.length === 1 && content[0] === DOT) {
          const message = tooBig ? Buffer.alloc(0) : Buffer.concat(parts);
          return { kind: 'data', message, size, tooBig, longLine, bareLf };
        }
        lineLength += content.length;
        longLine ||= lineLength > limits.lineLimit;
        append(atLineStart && content[0] === DOT ? content.subarray(1) : content);
        append(CRLF);
        atLineStart = true;
        lineLength = 0;
      }
      if (this.ended) return { kind: 'eof' };
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForInput(left))) return { kind: 'timeout' };
    }
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
