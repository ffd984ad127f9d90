// The gate's SMTP client towards the backend MTA: one command, one reply,
// each with a deadline. Any timeout, close or garbled reply is a BackendError
// and leaves the connection closed — the session turns that into a 4xx for the
// client, never a 250 and never a 5xx of ours.
//
// Our own small client rather than nodemailer's SMTPConnection: the gate needs
// the backend's exact reply (code and every text line) to each command so it
// can relay it, raw MAIL/RCPT lines forwarded with their parameters, XCLIENT
// (whose success reply is a new 220 greeting), and a pass-through AUTH
// dialogue; SMTPConnection hides these behind its send-a-whole-message API.

import net from 'node:net';
import type { Reply } from './reply.js';
import { RearmableTimer } from './rearmable-timer.js';

/** `identity`: the backend cannot be told the real client (XCLIENT required and not accepted). */
export type BackendErrorKind = 'connect' | 'timeout' | 'closed' | 'protocol' | 'identity';

export class BackendError extends Error {
  constructor(
    public readonly kind: BackendErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

export function isBackendError(e: unknown): e is BackendError {
  return e instanceof BackendError;
}

export interface BackendOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** Default deadline for a reply, in ms. */
  commandTimeoutMs: number;
}

/** Bounds on what we buffer from the backend (it is trusted, but not unboundedly). */
const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 200;
const CRLF = Buffer.from('\r\n');
const DOT_CRLF = Buffer.from('.\r\n');
const REPLY_LINE = /^(\d{3})([ -]|$)(.*)$/;

export class BackendConnection {
  private readonly socket: net.Socket;
  private buf = '';
  private lines: string[] = [];
  /** Replies that came with nobody waiting for one. */
  private readonly replies: Reply[] = [];
  private waiter: { resolve: (r: Reply) => void; reject: (e: BackendError) => void; endsExchange: boolean } | undefined;
  private failure: BackendError | undefined;
  /**
   * A command (or pipelined group) is written and its replies not all read:
   * the next one waits its turn, so replies pair with their commands. The
   * session sends one at a time anyway; the keepalive NOOP is what may overlap.
   */
  private busy = false;
  private readonly queue: Array<() => void> = [];
  /** The one reply deadline of this connection, re-armed for each reply awaited. */
  private readonly timer = new RearmableTimer(() => this.timedOut());
  /** EHLO keywords of the backend, upper-case keyword → rest of the line. */
  extensions = new Map<string, string>();

  private constructor(
    socket: net.Socket,
    private readonly opts: BackendOptions,
  ) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (s: string) => this.onData(s));
    socket.on('close', () => this.fail(new BackendError('closed', 'backend closed the connection')));
    socket.on('error', (e) => this.fail(new BackendError('closed', `backend connection error: ${e.message}`)));
  }

  /** Connect and read the greeting; rejects (BackendError) unless it is 2xx. */
  static open(opts: BackendOptions): Promise<BackendConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new BackendError('connect', `backend ${opts.host}:${opts.port}: connect timeout`));
      }, opts.connectTimeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new BackendError('connect', `backend ${opts.host}:${opts.port}: ${e.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        const conn = new BackendConnection(socket, opts);
        conn
          .readReply(opts.commandTimeoutMs, false)
          .then((greeting) => {
            if (greeting.code !== 220) {
              conn.destroy();
              reject(new BackendError('protocol', `backend greeting: ${greeting.code} ${greeting.lines.join(' ')}`));
            } else resolve(conn);
          })
          .catch(reject);
      });
    });
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** The gate's own address on this connection: the one the backend sees and must trust. */
  get localAddress(): string {
    return this.socket.localAddress ?? '?';
  }

  get closeReason(): string | undefined {
    return this.failure?.message;
  }

  /** Send one command line (without CRLF) and read its reply. Commands are serialised. */
  command(line: string | Buffer, timeoutMs = this.opts.commandTimeoutMs): Promise<Reply> {
    if (this.busy) return this.later(() => this.command(line, timeoutMs));
    // Nothing unsolicited may pass for this command's reply.
    return this.request(typeof line === 'string' ? `${line}\r\n` : Buffer.concat([line, CRLF]), timeoutMs, true);
  }

  /**
   * Several commands in one write, then their replies in order (RFC 2920; only
   * when the backend offers PIPELINING). Each write is a system call and a
   * wake-up of the backend: fewer of them is most of the relay's speed.
   */
  pipeline(lines: Array<string | Buffer>, timeoutMs = this.opts.commandTimeoutMs): Promise<Reply[]> {
    if (this.busy) return this.later(() => this.pipeline(lines, timeoutMs));
    return this.group(Buffer.concat(lines.map((l) => Buffer.concat([typeof l === 'string' ? Buffer.from(l, 'latin1') : l, CRLF]))), lines.length, timeoutMs);
  }

  /** EHLO, recording the backend's extensions; falls back to HELO when EHLO is refused. */
  async ehlo(name: string): Promise<Reply> {
    let r = await this.command(`EHLO ${name}`);
    this.extensions = new Map();
    if (r.code === 250) {
      for (const l of r.lines.slice(1)) {
        const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(l.trim());
        if (m) this.extensions.set(m[1].toUpperCase(), (m[2] ?? '').trim());
      }
      return r;
    }
    r = await this.command(`HELO ${name}`);
    return r;
  }

  /**
   * After a 354: send the message (CRLF lines; its parts each start a line),
   * dot-stuffed, and the final dot; read the reply. The parts are written as
   * they are, never joined: a message may be megabytes.
   */
  sendMessage(message: Buffer[], timeoutMs: number): Promise<Reply> {
    if (this.busy) return this.later(() => this.sendMessage(message, timeoutMs));
    return this.request([...message.flatMap(dotStuffed), DOT_CRLF], timeoutMs, false);
  }

  /** RFC 3030: the whole message (its parts, in order) as one `BDAT n LAST` chunk (no dot-stuffing, no 354 round trip); its reply. */
  sendChunk(message: Buffer[], timeoutMs: number): Promise<Reply> {
    if (this.busy) return this.later(() => this.sendChunk(message, timeoutMs));
    let n = 0;
    for (const part of message) n += part.length;
    return this.request([Buffer.from(`BDAT ${n} LAST\r\n`), ...message], timeoutMs, true);
  }

  /** Polite close: QUIT, then close whatever the answer. */
  async quit(): Promise<void> {
    if (this.closed) return;
    try {
      await this.command('QUIT', 2000);
    } catch {
      // closing anyway
    }
    this.destroy();
  }

  destroy(): void {
    this.fail(new BackendError('closed', 'backend connection closed by the gate'));
    this.socket.destroy();
  }

  /** Write `data` and read one reply; the exchange ends with it. */
  private request(data: string | Buffer | Buffer[], timeoutMs: number, fresh: boolean): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    this.busy = true;
    if (fresh) this.replies.length = 0;
    if (Array.isArray(data)) {
      // One writev for the parts.
      this.socket.cork();
      for (const part of data) this.socket.write(part);
      this.socket.uncork();
    } else this.socket.write(data);
    return this.readReply(timeoutMs, true);
  }

  /** Write `data` and read `n` replies; the exchange ends with the last (or a failure). */
  private async group(data: Buffer, n: number, timeoutMs: number): Promise<Reply[]> {
    if (this.failure) throw this.failure;
    this.busy = true;
    this.replies.length = 0;
    this.socket.write(data);
    const out: Reply[] = [];
    try {
      for (let i = 0; i < n; i++) out.push(await this.readReply(timeoutMs, false));
    } finally {
      this.exchangeDone();
    }
    return out;
  }

  /** Run `fn` once the exchange in flight is over. */
  private later<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => this.queue.push(() => void fn().then(resolve, reject)));
  }

  /**
   * The next exchange may go. Not at once: the rest of the chunk being parsed
   * may hold unsolicited lines, which must be set aside before it writes.
   */
  private exchangeDone(): void {
    this.busy = false;
    const next = this.queue.shift();
    if (next) queueMicrotask(next);
  }

  private readReply(timeoutMs: number, endsExchange: boolean): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready || this.failure) {
      if (endsExchange) this.exchangeDone();
      return ready ? Promise.resolve(ready) : Promise.reject(this.failure);
    }
    return new Promise((resolve, reject) => {
      this.timer.arm(timeoutMs);
      this.waiter = { resolve, reject, endsExchange };
    });
  }

  private timedOut(): void {
    // The timer outlives replies that came in time; only a reply still awaited has timed out.
    if (!this.waiter) return;
    // The dialogue is out of step now: the connection cannot be reused.
    this.fail(new BackendError('timeout', `backend did not answer within ${Math.round(this.timer.duration / 1000)}s`));
    this.socket.destroy();
  }

  private onData(s: string): void {
    const buf = this.buf.length > 0 ? this.buf + s : s;
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf('\n', start)) >= 0) {
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.onLine(buf.slice(start, end));
      start = nl + 1;
      if (this.failure) return;
    }
    this.buf = start === 0 ? buf : buf.slice(start);
    if (this.buf.length > MAX_REPLY_LINE) this.protocolError('reply line too long');
  }

  private onLine(line: string): void {
    const m = REPLY_LINE.exec(line);
    if (!m || (this.lines.length > 0 && !line.startsWith(this.lines[0].slice(0, 3)))) {
      this.protocolError(`unexpected reply line "${line.slice(0, 80)}"`);
      return;
    }
    this.lines.push(line);
    if (this.lines.length > MAX_REPLY_LINES) {
      this.protocolError('reply has too many lines');
      return;
    }
    if (m[2] === '-') return;
    const reply: Reply = { code: Number(m[1]), lines: this.lines.length === 1 ? [line.slice(4)] : this.lines.map((l) => l.slice(4)) };
    this.lines = [];
    const w = this.waiter;
    this.waiter = undefined;
    if (!w) {
      this.replies.push(reply);
      return;
    }
    if (w.endsExchange) this.exchangeDone();
    w.resolve(reply);
  }

  private protocolError(what: string): void {
    this.fail(new BackendError('protocol', `backend protocol error: ${what}`));
    this.socket.destroy();
  }

  private fail(e: BackendError): void {
    if (this.failure) return;
    this.failure = e;
    this.timer.clear();
    const w = this.waiter;
    this.waiter = undefined;
    if (w?.endsExchange) this.exchangeDone();
    w?.reject(e);
  }
}

/** The message as SMTP carries it: a line starting with "." gets another; ends with CRLF. */
export function dotStuffed(message: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  let i = 0;
  while (i < message.length) {
    if (message[i] === 0x2e && (i === 0 || message[i - 1] === 0x0a)) {
      out.push(message.subarray(start, i), Buffer.from('.'));
      start = i;
    }
    const nl = message.indexOf(0x0a, i);
    if (nl < 0) break;
    i = nl + 1;
  }
  out.push(message.subarray(start));
  if (message.length > 0 && !(message[message.length - 2] === 0x0d && message[message.length - 1] === 0x0a)) {
    out.push(Buffer.from('\r\n'));
  }
  return out.filter((b) => b.length > 0);
}
