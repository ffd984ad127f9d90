// A stub DNS client on dns-packet over UDP and TCP. Not node:dns: c-ares
// refuses names that SPF must be able to query (`foo:bar/baz.example.com`
// gives EBADNAME), and it hides TTLs and the difference between NXDOMAIN and
// NODATA. Here any label bytes go on the wire as long as the name fits the
// wire format, and every outcome has a typed error.

import type dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import ipaddr from 'ipaddr.js';
import { DnsError, type MxRecord, type Resolver } from './types.js';
import { reverseName } from './reverse.js';
import { checkName, dataOf, interpret, type DnsAnswer, type QType, type Querier } from './answer.js';
import type { DnsServer } from './servers.js';
import { routeTo, UdpSocketPool, type PooledSocket, type UdpRoute } from './udp-sockets.js';

/** Where dropped answers are told (at debug: a flood of forgeries must not flood the log). */
export interface DnsLogger {
  debug(fields: object, msg: string): void;
}

export interface DnsClientOptions {
  /** Recursive resolvers to ask, in order of preference (IP literals). */
  servers: DnsServer[];
  /** Milliseconds to wait for one attempt's reply (UDP, or the TCP retry after truncation). Default 2000. */
  timeoutMs?: number;
  /** Further attempts after the first; attempt i goes to servers[i % servers.length]. Default 2. */
  retries?: number;
  /** EDNS0 UDP payload size we advertise. Default 1232 (the DNS Flag Day 2020 value). */
  udpPayloadSize?: number;
  /** Longest CNAME chain followed inside an answer. Default 8. */
  maxCnameChain?: number;
  /** UDP sockets open at once per local address, each on a random port; a query picks one at random. Default 4. */
  udpSockets?: number;
  /** Queries a UDP socket sends before it is replaced by one on a new random port. Default 64. */
  udpSocketQueries?: number;
  /** Milliseconds a UDP socket is used for before it is replaced. Default 30000. */
  udpSocketAgeMs?: number;
  logger?: DnsLogger;
}

/** Datagrams dropped because they did not answer a query we are waiting for. */
export interface DnsDropStats {
  /** Not a DNS reply, or a reply whose id no query on that socket waits for. */
  unknownId: number;
  /** The right id from another address or port than the query went to. */
  wrongSource: number;
  /** The right id and source, but not the question asked (name, type or class). */
  wrongQuestion: number;
}

export interface DnsClientStats {
  /** Questions asked (each may take several attempts and servers). */
  questions: number;
  /** Questions that no server answered in time, after every attempt (TIMEOUT). */
  timeouts: number;
  /** Attempts whose reply did not come within timeoutMs. */
  attemptTimeouts: number;
  /** UDP datagrams sent. */
  udpQueries: number;
  /** UDP sockets opened (each on its own random port). */
  udpSockets: number;
  dropped: DnsDropStats;
}

interface Pending {
  server: DnsServer;
  /** The server's address as the socket family writes it. */
  sendTo: string;
  qname: string;
  qtype: string;
  deliver(packet: DecodedPacket): void;
}

/** An answer the server gave; `undefined` from an attempt means none came in time. */
type Reply = DecodedPacket & { rcode?: string };

function positive(n: number, name: string): number {
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`DnsClient: ${name} must be a whole number > 0, got ${n}`);
  return n;
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return ipaddr.process(a).toString() === ipaddr.process(b).toString();
  } catch {
    return false;
  }
}

/** RFC 5452 §9.1: the reply repeats our one question: name (any case), type and class. */
function matchesQuestion(packet: DecodedPacket, qname: string, qtype: string): boolean {
  const q = packet.questions?.[0];
  return packet.questions?.length === 1 && q !== undefined && q.type === qtype && q.class === 'IN' && q.name.toLowerCase() === qname.toLowerCase();
}

export class DnsClient implements Resolver, Querier {
  private readonly servers: DnsServer[];
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly udpPayloadSize: number;
  private readonly maxCnameChain: number;
  private readonly routes: Map<DnsServer, UdpRoute>;
  private readonly sockets: UdpSocketPool<Pending>;
  private readonly logger?: DnsLogger;
  private readonly counts: DnsClientStats = { questions: 0, timeouts: 0, attemptTimeouts: 0, udpQueries: 0, udpSockets: 0, dropped: { unknownId: 0, wrongSource: 0, wrongQuestion: 0 } };
  private readonly tcpConnections = new Set<net.Socket>();
  private readonly timers = new Set<{ timer: NodeJS.Timeout; cancel: () => void }>();
  /** Bumped by close(): queries started before it stop instead of trying further servers. */
  private generation = 0;

  constructor(opts: DnsClientOptions) {
    if (opts.servers.length === 0) throw new Error('DnsClient: at least one DNS server is required');
    for (const s of opts.servers) {
      if (!net.isIP(s.host)) throw new Error(`DnsClient: server host "${s.host}" is not an IP address`);
      if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new Error(`DnsClient: bad port ${s.port} for ${s.host}`);
    }
    this.servers = opts.servers.map((s) => ({ ...s }));
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.retries = opts.retries ?? 2;
    this.udpPayloadSize = opts.udpPayloadSize ?? 1232;
    this.maxCnameChain = opts.maxCnameChain ?? 8;
    this.routes = new Map(this.servers.map((s) => [s, routeTo(s.host)]));
    this.logger = opts.logger;
    this.sockets = new UdpSocketPool<Pending>({
      size: positive(opts.udpSockets ?? 4, 'udpSockets'),
      maxQueries: positive(opts.udpSocketQueries ?? 64, 'udpSocketQueries'),
      maxAgeMs: positive(opts.udpSocketAgeMs ?? 30_000, 'udpSocketAgeMs'),
      onMessage: (s, msg, rinfo) => this.onMessage(s, msg, rinfo),
    });
  }

  get stats(): DnsClientStats {
    return { ...this.counts, udpSockets: this.sockets.opened, dropped: { ...this.counts.dropped } };
  }

  /** Local addresses and ports of the UDP sockets open now. */
  localAddresses(): { address: string; port: number }[] {
    return this.sockets.addresses();
  }

  async a(name: string): Promise<string[]> {
    return dataOf(await this.query(name, 'A'));
  }
  async aaaa(name: string): Promise<string[]> {
    return dataOf(await this.query(name, 'AAAA'));
  }
  async txt(name: string): Promise<string[]> {
    return dataOf(await this.query(name, 'TXT'));
  }
  async mx(name: string): Promise<MxRecord[]> {
    return dataOf(await this.query(name, 'MX'));
  }
  async ptr(ip: string): Promise<string[]> {
    let name: string;
    try {
      name = reverseName(ip);
    } catch {
      throw new DnsError('BADNAME', ip, 'PTR');
    }
    return dataOf(await this.query(name, 'PTR'));
  }

  /**
   * Ask one question. Resolves with the records and TTLs (NOERROR) or a void
   * answer (NXDOMAIN / NODATA, with the SOA-derived negative TTL); rejects
   * with a DnsError for BADNAME (nothing sent), TIMEOUT, SERVFAIL, REFUSED,
   * FORMERR.
   */
  async query<T extends QType>(name: string, type: T): Promise<DnsAnswer<T>> {
    const qname = checkName(name, type);
    this.counts.questions++;
    const generation = this.generation;
    let fault: DnsError | undefined;
    const answeredBy = new Set<number>();
    const attempts = this.retries + 1;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const serverIndex = attempt % this.servers.length;
      // A server that already said SERVFAIL/REFUSED will say it again; go on only to servers not yet heard from.
      if (answeredBy.has(serverIndex)) {
        if (answeredBy.size >= this.servers.length) break;
        continue;
      }
      const server = this.servers[serverIndex];
      const reply = await this.exchange(server, qname, type);
      if (generation !== this.generation) break;
      if (!reply) continue;
      try {
        return interpret(reply, qname, type, this.maxCnameChain);
      } catch (e) {
        if (!(e instanceof DnsError) || (e.code !== 'SERVFAIL' && e.code !== 'REFUSED')) throw e;
        fault = e;
        answeredBy.add(serverIndex);
      }
    }
    if (fault === undefined) this.counts.timeouts++;
    throw fault ?? new DnsError('TIMEOUT', qname, type);
  }

  /** Release the sockets. Queries still waiting fail with TIMEOUT; later queries open new sockets. */
  close(): void {
    this.generation++;
    for (const t of this.timers) {
      clearTimeout(t.timer);
      t.cancel();
    }
    this.timers.clear();
    this.sockets.closeAll();
    for (const c of this.tcpConnections) c.destroy();
    this.tcpConnections.clear();
  }

  /** One attempt at one server: UDP, then TCP if the reply was truncated. Undefined when nothing usable came back. */
  private async exchange(server: DnsServer, qname: string, qtype: QType): Promise<Reply | undefined> {
    let reply = await this.udp(server, qname, qtype, true);
    // RFC 6891 §7: a server that does not understand EDNS answers FORMERR without an OPT record; ask again without.
    if (reply && reply.rcode === 'FORMERR' && !(reply.additionals ?? []).some((a) => a.type === 'OPT')) {
      reply = await this.udp(server, qname, qtype, false);
    }
    if (reply && reply.flag_tc) reply = await this.tcp(server, qname, qtype);
    return reply;
  }

  private message(id: number, qname: string, qtype: QType, edns: boolean): Packet {
    return {
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: qtype, name: qname, class: 'IN' }],
      additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: this.udpPayloadSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
    };
  }

  /** Start an attempt's timer; `onTimeout` settles the attempt (also called by close()). Returns the canceller. */
  private deadline(onTimeout: () => void): () => void {
    const entry = {
      timer: setTimeout(() => {
        this.timers.delete(entry);
        this.counts.attemptTimeouts++;
        onTimeout();
      }, this.timeoutMs),
      cancel: onTimeout,
    };
    this.timers.add(entry);
    return () => {
      clearTimeout(entry.timer);
      this.timers.delete(entry);
    };
  }

  /** Stray, late or forged datagrams are dropped, counted, and told at debug. A wrong one does not end the wait: the true answer may follow. */
  private onMessage(s: PooledSocket<Pending>, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let packet: DecodedPacket | undefined;
    try {
      packet = dnsPacket.decode(msg);
    } catch {
      packet = undefined;
    }
    const p = packet?.id === undefined ? undefined : s.pending.get(packet.id);
    if (!packet || !p || !packet.flag_qr) return this.drop('unknownId', rinfo, p);
    if (rinfo.port !== p.server.port || !sameAddress(rinfo.address, p.sendTo)) return this.drop('wrongSource', rinfo, p);
    if (!matchesQuestion(packet, p.qname, p.qtype)) return this.drop('wrongQuestion', rinfo, p);
    p.deliver(packet);
  }

  private drop(why: keyof DnsDropStats, rinfo: dgram.RemoteInfo, p: Pending | undefined): void {
    this.counts.dropped[why]++;
    if (!this.logger) return;
    const fields = { from: `${rinfo.address}:${rinfo.port}`, why, ...(p ? { question: `${p.qtype} ${p.qname}`, server: `${p.sendTo}:${p.server.port}` } : {}) };
    this.logger.debug(fields, `DNS answer dropped (${why}) from ${fields.from}`);
  }

  private udp(server: DnsServer, qname: string, qtype: QType, edns: boolean): Promise<Reply | undefined> {
    const route = this.routes.get(server)!;
    const s = this.sockets.acquire(route);
    const id = s.freeId();
    const buf = dnsPacket.encode(this.message(id, qname, qtype, edns));
    this.counts.udpQueries++;
    return new Promise((resolve) => {
      let done = false;
      const finish = (reply: Reply | undefined): void => {
        if (done) return;
        done = true;
        stop();
        s.pending.delete(id);
        this.sockets.settled(s);
        resolve(reply);
      };
      const stop = this.deadline(() => finish(undefined));
      s.pending.set(id, { server, sendTo: route.sendTo, qname, qtype, deliver: (packet) => finish(packet) });
      s.socket.send(buf, server.port, route.sendTo, (err) => {
        if (err) finish(undefined);
      });
    });
  }

  private tcp(server: DnsServer, qname: string, qtype: QType): Promise<Reply | undefined> {
    const id = randomInt(0, 65536);
    const body = dnsPacket.encode(this.message(id, qname, qtype, true));
    const frame = Buffer.alloc(body.length + 2);
    frame.writeUInt16BE(body.length, 0);
    body.copy(frame, 2);
    return new Promise((resolve) => {
      const conn = net.connect({ host: server.host, port: server.port });
      this.tcpConnections.add(conn);
      let done = false;
      let received = Buffer.alloc(0);
      const finish = (reply: Reply | undefined): void => {
        if (done) return;
        done = true;
        stop();
        this.tcpConnections.delete(conn);
        conn.destroy();
        resolve(reply);
      };
      const stop = this.deadline(() => finish(undefined));
      conn.on('error', () => finish(undefined));
      conn.on('close', () => finish(undefined));
      conn.on('connect', () => conn.write(frame));
      conn.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        while (received.length >= 2) {
          const len = received.readUInt16BE(0);
          if (received.length < len + 2) return;
          const msg = received.subarray(2, len + 2);
          received = received.subarray(len + 2);
          let packet: DecodedPacket;
          try {
            packet = dnsPacket.decode(msg);
          } catch {
            finish(undefined);
            return;
          }
          if (packet.id === id && packet.flag_qr && matchesQuestion(packet, qname, qtype)) {
            finish(packet);
            return;
          }
        }
      });
    });
  }
}
