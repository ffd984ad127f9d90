// A backend MTA for gate tests: smtp-server on a loopback port that records
// every message with its envelope and the client details the gate forwarded
// (XCLIENT / XFORWARD), refuses the recipients a test names, and can be
// killed mid-dialogue (every socket destroyed) to simulate a crashed backend.

import net from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export interface SinkMessage {
  from: string;
  rcpts: string[];
  data: Buffer;
  remoteAddress: string;
  remotePort: number;
  helo: string;
  xclient: Record<string, string>;
  xforward: Record<string, string>;
}

export interface SinkOptions {
  /** Recipients refused at RCPT with 550 5.1.1 (local part or whole address). */
  unknownRcpts?: string[];
  xclient?: boolean;
  xforward?: boolean;
  /** Called with each DATA stream's first bytes; return 'hang' to never answer the final dot. */
  onData?: (session: SMTPServerSession) => 'hang' | undefined;
  /** SASL: accepted user/password pairs; absent = no AUTH. */
  users?: Record<string, string>;
  extra?: Partial<SMTPServerOptions>;
}

export interface Sink {
  port: number;
  address: string;
  messages: SinkMessage[];
  /** Connections the sink has accepted so far. */
  readonly sessions: number;
  /** Destroy every open connection and stop listening (a crashed MTA). */
  kill(): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the next DATA begins. */
  dataStarted(): Promise<void>;
}

function mapToObject(m: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (m instanceof Map) for (const [k, v] of m) out[String(k)] = String(v);
  return out;
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const messages: SinkMessage[] = [];
  const sockets = new Set<net.Socket>();
  let dataWaiters: Array<() => void> = [];
  let sessions = 0;
  const server = new SMTPServer({
    secure: false,
    disabledCommands: opts.users ? ['STARTTLS'] : ['AUTH', 'STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    useXClient: opts.xclient ?? false,
    useXForward: opts.xforward ?? false,
    size: 50_000_000,
    logger: false,
    banner: 'sink ready',
    onConnect(_session, cb) {
      sessions++;
      cb();
    },
    onAuth(auth, _session, cb) {
      const ok = opts.users && auth.username !== undefined && opts.users[auth.username] === auth.password;
      if (ok) cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, cb) {
      const a = address.address.toLowerCase();
      const local = a.split('@')[0];
      if (opts.unknownRcpts?.some((u) => u.toLowerCase() === a || u.toLowerCase() === local)) {
        const err = new Error('5.1.1 <' + a + '>: Recipient address rejected: User unknown') as Error & { responseCode: number };
        err.responseCode = 550;
        cb(err);
        return;
      }
      cb();
    },
    onData(stream, session, cb) {
      const waiters = dataWaiters;
      dataWaiters = [];
      for (const w of waiters) w();
      const hang = opts.onData?.(session) === 'hang';
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (hang) return;
        const s = session as SMTPServerSession & { xClient?: unknown; xForward?: unknown };
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcpts: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          remoteAddress: session.remoteAddress,
          remotePort: session.remotePort,
          helo: session.hostNameAppearsAs,
          xclient: mapToObject(s.xClient),
          xforward: mapToObject(s.xForward),
        });
        cb(null, 'Ok: queued as SINK' + messages.length);
      });
    },
    ...opts.extra,
  });
  server.on('error', () => undefined);
  const net_ = (server as unknown as { server: net.Server }).server;
  net_.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (net_.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    messages,
    get sessions() {
      return sessions;
    },
    async kill() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => net_.close(() => resolve()));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    dataStarted() {
      return new Promise((resolve) => dataWaiters.push(resolve));
    },
  };
}
