// A stub DNS client on dns-packet over UDP and TCP. Not node:dns: c-ares
// refuses names that SPF must be able to query (`foo:bar/baz.example.com`
// gives EBADNAME), and it hides TTLs and the difference between NXDOMAIN and
// NODATA. Here any label bytes go on the wire as long as the name fits the
// wire format, and every outcome has a typed error.

import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import ipaddr from 'ipaddr.js';
import { DnsError, type MxRecord, type Resolver } from './types.js';
import { reverseName } from './reverse.js';
import { checkName, dataOf, interpret, type DnsAnswer, type QType, type Querier } from './answer.js';
import type { DnsServer } from './servers.js';

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
}

interface Pending {
  server: DnsServer;
  qname: string;
  qtype: string;
  deliver(packet: DecodedPacket): void;
}

/** An answer the server gave; `undefined` from an attempt means none came in time. */
type Reply = DecodedPacket & { rcode?: string };

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return ipaddr.process(a).toString() === ipaddr.process(b).toString();
  } catch {
    return false;
  }
}

function matchesQuestion(packet: DecodedPacket, qname: string, qtype: string): boolean {
  const q = packet.questions?.[0];
  return packet.questions?.length === 1 && q !== undefined && q.type === qtype && q.name.toLowerCase() === qname.toLowerCase();
}

export class DnsClient implements Resolver, Querier {
  private readonly servers: DnsServer[];
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly udpPayloadSize: number;
  private readonly maxCnameChain: number;
  private readonly sockets = new Map<4 | 6, dgram.Socket>();
  /** Outstanding UDP queries per socket family, by query id. */
  private readonly pending = new Map<4 | 6, Map<number, Pending>>([
    [4, new Map()],
    [6, new Map()],
  ]);
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
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
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

  private socket(family: 4 | 6): dgram.Socket {
    let s = this.sockets.get(family);
    if (s) return s;
    s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    // Errors on an unconnected UDP socket concern one datagram; the attempt's timer deals with the silence.
    s.on('error', () => undefined);
    s.on('message', (msg, rinfo) => this.onMessage(family, msg, rinfo));
    // Pending attempts keep the process alive through their timers, not through the socket.
    s.unref();
    this.sockets.set(family, s);
    return s;
  }

  private onMessage(family: 4 | 6, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let packet: DecodedPacket;
    try {
      packet = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const waiting = this.pending.get(family)!;
    const p = packet.id === undefined ? undefined : waiting.get(packet.id);
    // Stray, late or spoofed datagrams: wrong id, wrong source, or a different question.
    if (!p || !packet.flag_qr) return;
    if (rinfo.port !== p.server.port || !sameAddress(rinfo.address, p.server.host)) return;
    if (!matchesQuestion(packet, p.qname, p.qtype)) return;
    waiting.delete(packet.id!);
    p.deliver(packet);
  }

  private freeId(waiting: Map<number, Pending>): number {
    for (;;) {
      const id = randomInt(0, 65536);
      if (!waiting.has(id)) return id;
    }
  }

  private udp(server: DnsServer, qname: string, qtype: QType, edns: boolean): Promise<Reply | undefined> {
    const family = net.isIP(server.host) === 6 ? 6 : 4;
    const waiting = this.pending.get(family)!;
    const socket = this.socket(family);
    const id = this.freeId(waiting);
    const buf = dnsPacket.encode(this.message(id, qname, qtype, edns));
    return new Promise((resolve) => {
      let done = false;
      const finish = (reply: Reply | undefined): void => {
        if (done) return;
        done = true;
        stop();
        waiting.delete(id);
        resolve(reply);
      };
      const stop = this.deadline(() => finish(undefined));
      waiting.set(id, { server, qname, qtype, deliver: (packet) => finish(packet) });
      socket.send(buf, server.port, server.host, (err) => {
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
