// Raw-socket SMTP for benchmarks, with as little overhead of its own as
// possible so the numbers measure what sits between client and sink: a sink
// that accepts everything and counts messages, and a lock-step client that
// sends one transaction after another on one connection.

import net from 'node:net';

const DOT = Buffer.from('\r\n.\r\n');

export interface FastSink {
  port: number;
  /** Messages accepted (final 250 sent). */
  readonly messages: number;
  readonly connections: number;
  close(): Promise<void>;
}

/** An SMTP server that says yes to everything, fast. Announces PIPELINING, 8BITMIME and SIZE only. */
export function startFastSink(host = '127.0.0.1', port = 0): Promise<FastSink> {
  let messages = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let inData = false;
    let pending = '';
    // The last bytes of the data seen so far, so a dot line split across chunks is still found.
    let tail: Buffer = Buffer.alloc(0);
    socket.write('220 sink.bench ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      let buf: Buffer = chunk;
      const out: string[] = [];
      while (buf.length > 0) {
        if (inData) {
          const joined = tail.length > 0 ? Buffer.concat([tail, buf]) : buf;
          const at = joined.indexOf(DOT);
          if (at < 0) {
            tail = joined.subarray(Math.max(0, joined.length - 4));
            buf = Buffer.alloc(0);
            break;
          }
          inData = false;
          messages++;
          out.push('250 2.0.0 Ok: queued\r\n');
          const consumed = at + DOT.length - tail.length;
          tail = Buffer.alloc(0);
          buf = buf.subarray(consumed);
          continue;
        }
        pending += buf.toString('latin1');
        buf = Buffer.alloc(0);
        let nl: number;
        while ((nl = pending.indexOf('\r\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 2);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO') out.push('250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n');
          else if (verb === 'HELO') out.push('250 sink.bench\r\n');
          else if (verb === 'DATA') {
            out.push('354 End data with <CR><LF>.<CR><LF>\r\n');
            inData = true;
            // The CRLF that ended DATA starts the dot sequence of an empty message.
            tail = Buffer.from('\r\n');
            buf = Buffer.from(pending, 'latin1');
            pending = '';
            break;
          } else if (verb === 'QUIT') {
            out.push('221 2.0.0 Bye\r\n');
            socket.end(out.join(''));
            return;
          } else out.push('250 2.0.0 Ok\r\n');
        }
      }
      if (out.length > 0) socket.write(out.join(''));
    });
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        get messages() {
          return messages;
        },
        get connections() {
          return connections;
        },
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

/** One SMTP client connection that sends a command and waits for the whole reply. */
export class SmtpConn {
  private buf = '';
  private waiting?: (reply: string) => void;
  private failed?: Error;
  private closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.deliver();
    });
    const end = (e?: Error): void => {
      this.closed = true;
      this.failed ??= e ?? new Error('connection closed');
      const w = this.waiting;
      this.waiting = undefined;
      w?.(`000 ${this.failed.message}`);
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  static connect(port: number, host = '127.0.0.1'): Promise<SmtpConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host);
      s.once('connect', () => resolve(new SmtpConn(s)));
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The reply's last line (code and text) once complete. */
  private deliver(): void {
    if (!this.waiting) return;
    // A reply ends with a line whose fourth character is a space.
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\r\n', start);
      if (nl < 0) return;
      const line = this.buf.slice(start, nl);
      start = nl + 2;
      if (line.length < 4 || line[3] !== '-') {
        this.buf = this.buf.slice(start);
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
        return;
      }
    }
  }

  /** Wait for the next reply (the greeting, or the answer to what was written). */
  reply(): Promise<string> {
    if (this.closed) return Promise.resolve(`000 ${this.failed?.message ?? 'closed'}`);
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.deliver();
    });
  }

  send(text: string | Buffer): Promise<string> {
    const p = this.reply();
    if (!this.closed) this.socket.write(text);
    return p;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A message of about `size` bytes (headers + body, CRLF), no line starting with a dot. */
export function benchMessage(from: string, to: string, size: number): Buffer {
  const head = [
    `From: Bench Sender <${from}>`,
    `To: <${to}>`,
    'Subject: benchmark message',
    'Date: Mon, 01 Jan 2024 00:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@bench.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    '',
  ].join('\r\n');
  const line = 'The quick brown fox jumps over the lazy dog, again and again and again.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= size) body += line;
  body += 'x'.repeat(Math.max(0, size - head.length - body.length - 2)) + '\r\n';
  return Buffer.from(head + body);
}

export interface LoadResult {
  /** Messages the server accepted with 250 during the measured window. */
  accepted: number;
  /** Messages accepted with 250 over the whole run, warm-up included. */
  acceptedTotal: number;
  /** Replies other than the expected ones during the measured window (first few kept). */
  errors: number;
  errorExamples: string[];
  seconds: number;
}

/**
 * `clients` connections, each sending transactions in lock step (MAIL, RCPT,
 * DATA, message) for `warmupS` + `seconds`; counts the 250s after the message
 * within the measured window.
 */
export async function runLoad(opts: { port: number; clients: number; seconds: number; warmupS: number; messageSize: number; from: string; helo: string }): Promise<LoadResult> {
  let measuring = false;
  let stop = false;
  let accepted = 0;
  let acceptedTotal = 0;
  let errors = 0;
  const errorExamples: string[] = [];
  const message = Buffer.concat([benchMessage(opts.from, 'user@dest.test', opts.messageSize), Buffer.from('.\r\n')]);
  const fail = (what: string): void => {
    if (!measuring) return;
    errors++;
    if (errorExamples.length < 5) errorExamples.push(what);
  };

  async function client(id: number): Promise<void> {
    let n = 0;
    while (!stop) {
      let c: SmtpConn;
      try {
        c = await SmtpConn.connect(opts.port);
      } catch (e) {
        fail(`connect: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      let r = await c.reply();
      if (!r.startsWith('220')) {
        fail(`greeting: ${r}`);
        c.destroy();
        continue;
      }
      r = await c.send(`EHLO ${opts.helo}\r\n`);
      if (!r.startsWith('250')) fail(`EHLO: ${r}`);
      while (!stop && !c.isClosed) {
        n++;
        r = await c.send(`MAIL FROM:<${opts.from}>\r\n`);
        if (!r.startsWith('250')) {
          fail(`MAIL: ${r}`);
          if (r.startsWith('421') || r.startsWith('000')) break;
          await c.send('RSET\r\n');
          continue;
        }
        r = await c.send(`RCPT TO:<user${id}.${n}@dest.test>\r\n`);
        if (!r.startsWith('250')) {
          fail(`RCPT: ${r}`);
          await c.send('RSET\r\n');
          continue;
        }
        r = await c.send('DATA\r\n');
        if (!r.startsWith('354')) {
          fail(`DATA: ${r}`);
          await c.send('RSET\r\n');
          continue;
        }
        r = await c.send(message);
        if (r.startsWith('250')) {
          acceptedTotal++;
          if (measuring) accepted++;
        } else fail(`end of data: ${r}`);
      }
      if (!c.isClosed) await c.send('QUIT\r\n');
      c.destroy();
    }
  }

  const loops = Array.from({ length: opts.clients }, (_, i) => client(i));
  await new Promise((r) => setTimeout(r, opts.warmupS * 1000));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  return { accepted, acceptedTotal, errors, errorExamples, seconds };
}
