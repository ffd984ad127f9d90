// A scripted SMTP client for tests that must misbehave on purpose: talk
// before the greeting, pipeline without PIPELINING, send HTTP, over-long
// lines, bare LFs. Reads whole (multi-line) replies; knows when the server
// hung up.

import net from 'node:net';

export interface TalkReply {
  code: number;
  lines: string[];
  /** All lines joined by "\n", without codes. */
  text: string;
}

export class SmtpTalk {
  private buf = '';
  private waiters: Array<() => void> = [];
  private ended = false;
  /** Everything received, for assertions on raw output. */
  transcript = '';

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      this.buf += s;
      this.transcript += s;
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<SmtpTalk> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new SmtpTalk(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Bytes received and not yet read as replies. */
  get unread(): string {
    return this.buf;
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  sendRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string, timeoutMs = 5000): Promise<TalkReply> {
    this.send(line);
    return this.reply(timeoutMs);
  }

  /** The next complete reply; rejects on timeout or when the server hangs up first. */
  async reply(timeoutMs = 5000): Promise<TalkReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.take();
      if (r) return r;
      if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server has closed the connection (or after timeoutMs, false). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }

  close(): void {
    this.socket.destroy();
  }

  private take(): TalkReply | undefined {
    const lines: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', pos);
      if (nl < 0) return undefined;
      const line = this.buf.slice(pos, nl).replace(/\r$/, '');
      pos = nl + 1;
      lines.push(line);
      if (!/^\d{3}-/.test(line)) break;
    }
    this.buf = this.buf.slice(pos);
    const code = Number(lines[lines.length - 1].slice(0, 3));
    const texts = lines.map((l) => l.slice(4));
    return { code, lines: texts, text: texts.join('\n') };
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
