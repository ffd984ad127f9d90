// A real DNS server for tests: UDP and TCP on the same loopback port,
// answering from a Zone (src/dns/zone.ts) like an authoritative server
// would — records with TTLs, the CNAME chain in the answer, an SOA in the
// authority section of void answers, SERVFAIL, and silence for `TIMEOUT`.
// UDP answers larger than the asker's EDNS size (512 without EDNS) are sent
// truncated with TC set, so clients must fall back to TCP.

import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import dnsPacket, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';
import { parseAllDocuments } from 'yaml';
import { Zone, type RRType, type ZoneOptions, type ZoneRecord } from '../../src/dns/zone.js';
import type { MxRecord } from '../../src/dns/types.js';

export interface FixtureDnsOptions {
  /** Loopback address to listen on. Default 127.0.0.1. */
  host?: '127.0.0.1' | '::1';
  /** SOA MINIMUM (and SOA TTL) sent with NXDOMAIN/NODATA. Default 60. */
  soaMinimum?: number;
}

export interface FixtureDns {
  host: string;
  /** The one port both transports listen on. */
  port: number;
  udpPort: number;
  tcpPort: number;
  /** `"127.0.0.1:PORT"` (or `"[::1]:PORT"`), ready for createResolver({ servers: [server] }). */
  server: string;
  /** Same as `server`. */
  address: string;
  /** Every question received, in order, as `TYPE name` (name lower-cased, no trailing dot). */
  queries: string[];
  /** The questions that came over TCP, same format. */
  tcpQueries: string[];
  setZone(zone: Zone): void;
  close(): Promise<void>;
}

const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;
const PLAIN_UDP_LIMIT = 512;
const MAX_TXT_STRING = 255;

/** The SOA's owner: the last two labels of the name (a stand-in for the zone apex). */
function apexOf(name: string): string {
  const labels = name.split('.').filter((l) => l !== '');
  return labels.slice(-2).join('.') || '.';
}

/** Zone TXT strings longer than 255 octets are split the way zone files do. */
function txtStrings(parts: string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    const b = Buffer.from(p, 'utf8');
    if (b.length === 0) out.push(b);
    for (let i = 0; i < b.length; i += MAX_TXT_STRING) out.push(b.subarray(i, i + MAX_TXT_STRING));
  }
  return out;
}

function toAnswer(r: ZoneRecord): Answer {
  switch (r.type) {
    case 'TXT':
      return { type: 'TXT', name: r.name, ttl: r.ttl, class: 'IN', data: txtStrings(r.data as string[]) };
    case 'MX': {
      const mx = r.data as MxRecord;
      return { type: 'MX', name: r.name, ttl: r.ttl, class: 'IN', data: { preference: mx.preference, exchange: mx.exchange || '.' } };
    }
    default:
      return { type: r.type, name: r.name, ttl: r.ttl, class: 'IN', data: (r.data as string) || '.' };
  }
}

/** The reply to one query packet, or undefined to stay silent (simulated timeout, garbage in). */
function respond(zone: Zone, query: DecodedPacket, soaMinimum: number): Packet | undefined {
  const q = query.questions?.[0];
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT');
  const base: Packet = {
    type: 'response',
    id: query.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED),
    questions: query.questions ?? [],
    additionals: opt ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  };
  if (!q || query.questions?.length !== 1) return { ...base, flags: (base.flags ?? 0) | RCODE_FORMERR };
  const result = zone.lookup(q.name, q.type as RRType);
  const soa: Answer = {
    type: 'SOA',
    name: apexOf(q.name.toLowerCase()),
    ttl: soaMinimum,
    class: 'IN',
    data: { mname: 'ns.fixture.test', rname: 'hostmaster.fixture.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: soaMinimum },
  };
  switch (result.kind) {
    case 'timeout':
      return undefined;
    case 'servfail':
      return { ...base, flags: (base.flags ?? 0) | RCODE_SERVFAIL };
    case 'nxdomain':
      return { ...base, flags: (base.flags ?? 0) | RCODE_NXDOMAIN, answers: result.records.map(toAnswer), authorities: [soa] };
    case 'nodata':
      return { ...base, answers: result.records.map(toAnswer), authorities: [soa] };
    case 'answer':
      return { ...base, answers: result.records.map(toAnswer) };
  }
}

/** Encode a reply; a zone record the wire cannot carry (bad address, long label) becomes SERVFAIL. */
function encode(reply: Packet): Buffer {
  try {
    return dnsPacket.encode(reply);
  } catch {
    return dnsPacket.encode({ ...reply, answers: [], authorities: [], flags: ((reply.flags ?? 0) & ~0xf) | RCODE_SERVFAIL });
  }
}

function logName(query: DecodedPacket): string {
  const q = query.questions?.[0];
  return q ? `${q.type} ${q.name.replace(/\.$/, '').toLowerCase()}` : '(no question)';
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
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** Start a fixture DNS server on a free loopback port (UDP and TCP alike). */
export async function startFixtureDns(zone: Zone, opts: FixtureDnsOptions = {}): Promise<FixtureDns> {
  const host = opts.host ?? '127.0.0.1';
  const soaMinimum = opts.soaMinimum ?? 60;
  let current = zone;
  const queries: string[] = [];
  const tcpQueries: string[] = [];
  const connections = new Set<net.Socket>();

  const answer = (msg: Buffer, transport: 'udp' | 'tcp'): { reply: Packet; query: DecodedPacket } | undefined => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    if (query.flag_qr) return undefined;
    queries.push(logName(query));
    if (transport === 'tcp') tcpQueries.push(logName(query));
    const reply = respond(current, query, soaMinimum);
    return reply ? { reply, query } : undefined;
  };

  const onUdp = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const r = answer(msg, 'udp');
    if (!r) return;
    const opt = (r.query.additionals ?? []).find((a) => a.type === 'OPT');
    const limit = Math.max(PLAIN_UDP_LIMIT, opt && opt.type === 'OPT' ? opt.udpPayloadSize : 0);
    let out = encode(r.reply);
    if (out.length > limit) {
      out = encode({ ...r.reply, flags: (r.reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [] });
    }
    udp.send(out, rinfo.port, rinfo.address);
  };

  const tcpServer = net.createServer((conn) => {
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
    conn.on('error', () => conn.destroy());
    let buf = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, len + 2);
        buf = buf.subarray(len + 2);
        const r = answer(msg, 'tcp');
        if (!r) continue;
        const out = encode(r.reply);
        const frame = Buffer.alloc(out.length + 2);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        conn.write(frame);
      }
    });
  });

  // TCP picks a free port; UDP must then get the same number, which another process may hold: try again.
  let udp: dgram.Socket | undefined;
  let port = 0;
  for (let attempt = 0; attempt < 20 && !udp; attempt++) {
    port = await listenTcp(tcpServer, host, 0);
    const candidate = dgram.createSocket(host === '::1' ? 'udp6' : 'udp4');
    try {
      await bindUdp(candidate, host, port);
      udp = candidate;
    } catch {
      candidate.close();
      await new Promise<void>((resolve) => tcpServer.close(() => resolve()));
    }
  }
  if (!udp) throw new Error('fixture DNS: could not bind UDP and TCP on one loopback port');
  const udpSocket = udp;
  udpSocket.on('message', onUdp(udpSocket));
  udpSocket.on('error', () => undefined);

  const server = host === '::1' ? `[::1]:${port}` : `${host}:${port}`;
  return {
    host,
    port,
    udpPort: port,
    tcpPort: port,
    server,
    address: server,
    queries,
    tcpQueries,
    setZone(z: Zone) {
      current = z;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        udpSocket.close(() => tcpServer.close(() => resolve()));
      }),
  };
}

function zoneData(doc: unknown): Record<string, unknown> {
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('zone YAML: expected a mapping of names to record lists');
  const d = doc as Record<string, unknown>;
  // A document of the SPF suite (description/tests/zonedata) or bare zone data.
  if ('zonedata' in d) return (d.zonedata ?? {}) as Record<string, unknown>;
  return d;
}

function documents(text: string): unknown[] {
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`zone YAML: ${doc.errors[0].message}`);
    return doc.toJS();
  });
}

/**
 * A Zone from YAML in the suite's `zonedata` shape: either bare zone data
 * (`name: [ {A: ...}, ... ]`) or documents with a `zonedata:` key. Several
 * documents are merged into one zone; use `zonesFromYaml` to keep them apart.
 */
export function zoneFromYaml(text: string, opts?: ZoneOptions): Zone {
  const zone = new Zone({}, opts);
  for (const doc of documents(text)) zone.load(zoneData(doc));
  return zone;
}

/** One Zone per YAML document (the SPF suite gives each scenario its own world). */
export function zonesFromYaml(text: string, opts?: ZoneOptions): Zone[] {
  return documents(text).map((doc) => new Zone(zoneData(doc), opts));
}

export function loadZoneYaml(path: string, opts?: ZoneOptions): Zone {
  return zoneFromYaml(readFileSync(path, 'utf8'), opts);
}
