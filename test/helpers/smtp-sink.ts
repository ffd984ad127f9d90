// A backend MTA for gate tests: smtp-server on a loopback port that records
// every message with its envelope and the client details the gate forwarded
// (XCLIENT / XFORWARD), refuses the recipients a test names, and can be
// killed mid-dialogue (every socket destroyed) to simulate a crashed backend.
//
// It relays as Postfix does by default: a recipient in an outside domain is
// taken from a client in its mynetworks (127.0.0.0/8, as Postfix's default
// mynetworks_style = host on loopback) and refused 454 4.7.1 "Relay access
// denied" (Postfix's defer_unauth_destination) from anyone else. The client is
// the XCLIENT ADDR when the gate sent one, else the connection's address
// (XFORWARD changes nothing, as in Postfix).

import net from 'node:net';
import ipaddr from 'ipaddr.js';
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
  /** The relay model (see the top of the file); `false` = relay for everyone (an open relay). */
  relay?: { mynetworks: string[]; outsideDomains: string[] } | false;
  /** SASL: accepted user/password pairs; absent = no AUTH. */
  users?: Record<string, string>;
  extra?: Partial<SMTPServerOptions>;
}

export interface Sink {
  port: number;
  address: string;
  messages: SinkMessage[];
  /** Connections the sink has accepted so far (since forgetSessions). */
  readonly sessions: number;
  /** Recipients in outside domains it accepted (relayed), with the client they were relayed for. */
  relayed: Array<{ rcpt: string; client: string }>;
  /** Start counting sessions from zero (after the gate's own relay self-test). */
  forgetSessions(): void;
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

export const DEFAULT_RELAY = { mynetworks: ['127.0.0.0/8', '::1/128'], outsideDomains: ['example.invalid', 'outside.example'] };

function inNetworks(ip: string, nets: string[]): boolean {
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.process(ip.replace(/^IPV6:/i, ''));
  } catch {
    return false;
  }
  return nets.some((n) => {
    const [net, len] = ipaddr.parseCIDR(n);
    return a.kind() === net.kind() && a.match(net, len);
  });
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const messages: SinkMessage[] = [];
  const relayed: Sink['relayed'] = [];
  const relay = opts.relay === undefined ? DEFAULT_RELAY : opts.relay;
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
    onRcptTo(address, session, cb) {
      const a = address.address.toLowerCase();
      const local = a.split('@')[0];
      const domain = a.split('@')[1] ?? '';
      if ((relay || DEFAULT_RELAY).outsideDomains.includes(domain)) {
        // XFORWARD is for logs only, as in Postfix: judge the address from before it.
        const forwarded = (session as SMTPServerSession & { xForward?: Map<string, string> }).xForward;
        const client = String(forwarded?.get('ADDR:DEFAULT') ?? session.remoteAddress);
        if (relay && !inNetworks(client, relay.mynetworks)) {
          const err = new Error(`4.7.1 <${a}>: Relay access denied`) as Error & { responseCode: number };
          err.responseCode = 454;
          cb(err);
          return;
        }
        relayed.push({ rcpt: a, client });
      }
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
    relayed,
    get sessions() {
      return sessions;
    },
    forgetSessions() {
      sessions = 0;
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
