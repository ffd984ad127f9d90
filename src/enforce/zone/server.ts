// The zone's DNS server: UDP and TCP on each `zone.listen` address,
// answering from memory (answer.ts over data.ts).
//
// Limits on what a client can make it do:
// - only `zone.allow_from` is answered (others get REFUSED over UDP, within
//   the rate limit, and a closed connection over TCP);
// - UDP answers per client per second are capped (rate-limit.ts); of those
//   over the cap every `slip`-th goes out as an empty truncated reply (a real
//   resolver retries over TCP, a forged source gets nothing larger than the
//   query), the rest are dropped;
// - a UDP answer never exceeds 512 bytes, or the asker's EDNS size up to
//   1232: a larger one is sent empty with TC set (RFC 1035 §4.2.1), and the
//   TCP answer is whole;
// - TCP: at most `max_connections`, closed after `idle_timeout_s` without a
//   query, at most 64 KiB buffered per connection;
// - a message that cannot be decoded gets FORMERR (or nothing when it is not
//   even a header, or is a response); nothing a client sends throws out of here.

import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import type { Clock } from '../../core/types.js';
import type { IpTrie, StoreLogger } from '../../store/index.js';
import { answer, EDNS_UDP_SIZE, formErr, RCODE, type AnswerContext } from './answer.js';
import { ResponseRateLimit } from './rate-limit.js';
import { FastPath } from './fast.js';

export interface ZoneServerOptions {
  context: AnswerContext;
  clock: Clock;
  /** Who may ask. */
  allowFrom: IpTrie;
  rateLimit: { perSecond: number; burst: number; slip: number };
  tcp: { maxConnections: number; idleTimeoutS: number };
  logger?: StoreLogger;
}

export interface ZoneServerStats {
  queries: number;
  refused: number;
  formerr: number;
  rateLimited: number;
  truncated: number;
}

const PLAIN_UDP = 512;
const TCP_BUFFER_MAX = 65537;

export class ZoneServer {
  readonly stats: ZoneServerStats = { queries: 0, refused: 0, formerr: 0, rateLimited: 0, truncated: 0 };
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly connections = new Set<net.Socket>();
  private readonly limiter: ResponseRateLimit;
  private slipCount = 0;
  private readonly fast: FastPath;

  constructor(private readonly opts: ZoneServerOptions) {
    this.fast = new FastPath(opts.context);
    this.limiter = new ResponseRateLimit({ perSecond: opts.rateLimit.perSecond, burst: opts.rateLimit.burst });
  }

  /** Listen on UDP and TCP at host:port (port 0: a free port, the same for both). Returns the port. */
  async listen(host: string, port: number): Promise<number> {
    const v6 = host.includes(':');
    for (let attempt = 0; ; attempt++) {
      const server = net.createServer((c) => this.onConnection(c));
      server.maxConnections = this.opts.tcp.maxConnections;
      const bound = await listenTcp(server, host, port);
      const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' });
      try {
        await bindUdp(socket, host, bound);
      } catch (e) {
        socket.close();
        await new Promise<void>((r) => server.close(() => r()));
        // Port 0: TCP's free port may be taken for UDP; try another.
        if (port === 0 && attempt < 20) continue;
        throw e;
      }
      socket.on('message', (msg, rinfo) => this.onUdp(socket, msg, rinfo));
      socket.on('error', (err) => this.opts.logger?.warn({ err: err.message }, 'zone: UDP socket error'));
      this.udp.push(socket);
      this.tcp.push(server);
      return bound;
    }
  }

  private onUdp(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const now = this.opts.clock.now();
    if (!this.limiter.take(rinfo.address, now)) {
      this.stats.rateLimited++;
      const slip = this.opts.rateLimit.slip;
      if (slip > 0 && ++this.slipCount % slip === 0) {
        const tc = truncatedHeader(msg);
        if (tc) socket.send(tc, rinfo.port, rinfo.address);
      }
      return;
    }
    const out = this.respond(msg, rinfo.address, 'udp');
    if (out) socket.send(out, rinfo.port, rinfo.address);
  }

  /** The wire reply to one message, or undefined to stay silent. */
  respond(msg: Buffer, from: string, transport: 'udp' | 'tcp'): Buffer | undefined {
    if (msg.length < 12 || (msg[2] & 0x80) !== 0) return undefined;
    if (!this.opts.allowFrom.has(from)) {
      this.stats.refused++;
      return refusedHeader(msg);
    }
    const fast = this.fast.answer(msg, this.opts.clock.now());
    if (fast) {
      this.stats.queries++;
      return fast;
    }
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      this.stats.formerr++;
      return formErr(msg);
    }
    this.stats.queries++;
    let reply: Packet;
    try {
      reply = answer(query, this.opts.context, this.opts.clock.now());
    } catch (err) {
      // A bug, not the client's fault: SERVFAIL, logged, the server goes on.
      this.opts.logger?.error({ err: String(err) }, 'zone: answering failed');
      return rcodeHeader(msg, RCODE.SERVFAIL);
    }
    const out = dnsPacket.encode(reply);
    if (transport === 'tcp') return out;
    const opt = (query.additionals ?? []).find((a) => a.type === 'OPT');
    const limit = opt && opt.type === 'OPT' ? Math.max(PLAIN_UDP, Math.min(opt.udpPayloadSize, EDNS_UDP_SIZE)) : PLAIN_UDP;
    if (out.length <= limit) return out;
    this.stats.truncated++;
    return dnsPacket.encode({ ...reply, flags: (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [] });
  }

  private onConnection(conn: net.Socket): void {
    const from = conn.remoteAddress ?? '';
    if (!this.opts.allowFrom.has(from)) {
      this.stats.refused++;
      conn.destroy();
      return;
    }
    this.connections.add(conn);
    conn.on('close', () => this.connections.delete(conn));
    conn.on('error', () => conn.destroy());
    conn.setTimeout(this.opts.tcp.idleTimeoutS * 1000, () => conn.destroy());
    let buf: Buffer = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > TCP_BUFFER_MAX) {
        conn.destroy();
        return;
      }
      while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, len + 2);
        buf = buf.subarray(len + 2);
        const out = this.respond(msg, from, 'tcp');
        if (!out) continue;
        const frame = Buffer.alloc(out.length + 2);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        conn.write(frame);
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await Promise.all([
      ...this.udp.map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]);
  }
}

/** The query's header and question back with QR and an RCODE, nothing else (the same size as the query, no amplification). */
function rcodeHeader(msg: Buffer, rcode: number, tc = false): Buffer | undefined {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0) return undefined;
  const qdcount = msg.readUInt16BE(4);
  // Keep the one question when it parses; otherwise the header alone.
  let end = 12;
  if (qdcount === 1) {
    let i = 12;
    while (i < msg.length && msg[i] !== 0 && (msg[i] & 0xc0) === 0) i += msg[i] + 1;
    end = i < msg.length && msg[i] === 0 && i + 5 <= msg.length ? i + 5 : 12;
  }
  const out = Buffer.from(msg.subarray(0, end));
  out[2] = 0x80 | (msg[2] & 0x79) | (tc ? 0x02 : 0);
  out[3] = rcode;
  out.writeUInt16BE(end > 12 ? 1 : 0, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  return out;
}

function refusedHeader(msg: Buffer): Buffer | undefined {
  return rcodeHeader(msg, RCODE.REFUSED);
}

function truncatedHeader(msg: Buffer): Buffer | undefined {
  return rcodeHeader(msg, RCODE.NOERROR, true);
}

function listenTcp(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function bindUdp(socket: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address: host, exclusive: false }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
