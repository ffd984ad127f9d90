// What one DNS question yields once the wire format is gone: the records of
// the asked type (after the CNAME chain in the answer section) with their
// TTLs, or a void answer with its negative-caching TTL. The network client
// produces these; the cache stores them.

import type { DecodedPacket, Answer } from 'dns-packet';
import { isUtf8 } from 'node:buffer';
import { DnsError, type MxRecord } from './types.js';

/** The data each supported question type yields. */
export interface RDataByType {
  A: string;
  AAAA: string;
  /** The record's character-strings joined with no separator. */
  TXT: string;
  MX: MxRecord;
  PTR: string;
  CNAME: string;
}
export type QType = keyof RDataByType;
export const QTYPES: readonly QType[] = ['A', 'AAAA', 'TXT', 'MX', 'PTR', 'CNAME'];

export interface DnsRecord<D> {
  /** Owner name, lower-cased, no trailing dot. */
  name: string;
  ttl: number;
  data: D;
}

export interface DnsAnswer<T extends QType = QType> {
  qname: string;
  qtype: T;
  /** NOERROR with records, or one of the two void answers. */
  status: 'NOERROR' | 'NXDOMAIN' | 'NODATA';
  /** Records of `qtype` owned by the end of the CNAME chain; empty unless NOERROR. */
  records: DnsRecord<RDataByType[T]>[];
  /** CNAMEs followed from `qname`, in order (owner → target). */
  chain: DnsRecord<string>[];
  /**
   * Seconds this answer may be reused: the smallest TTL among records and
   * chain; for a void answer min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), or
   * undefined when the server sent no SOA.
   */
  ttl?: number;
}

/** Anything that answers one question: the network client, or a test double. */
export interface Querier {
  query<T extends QType>(name: string, type: T): Promise<DnsAnswer<T>>;
}

const MAX_NAME_OCTETS = 253;
const MAX_LABEL_OCTETS = 63;
/** ASCII letters, digits, `-` and `_` in labels of 1..63, at most 253 in all: within the wire limits. */
const PLAIN_NAME = /^(?=.{1,253}$)[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*$/;

/**
 * Normalise a query name (drop one trailing dot) and check it fits the wire
 * format: labels of 1..63 octets, at most 253 octets in all. Any other bytes
 * are allowed — SPF builds names like `foo:bar/baz.example.com`.
 */
export function checkName(name: string, qtype: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  // Host-name-like ASCII (nearly every name) passes on one regex test.
  if (PLAIN_NAME.test(n)) return n;
  const bad = (): DnsError => new DnsError('BADNAME', name, qtype);
  if (n.length === 0 || Buffer.byteLength(n) > MAX_NAME_OCTETS) throw bad();
  // dns-packet strips dots next to line breaks (its trim regex is multi-line), so such a name cannot be sent faithfully.
  if (/[\n\r\u2028\u2029]\.|\.[\n\r\u2028\u2029]/.test(n)) throw bad();
  for (const label of n.split('.')) {
    const len = Buffer.byteLength(label);
    if (len === 0 || len > MAX_LABEL_OCTETS) throw bad();
  }
  return n;
}

/** TXT bytes as text: UTF-8 when the bytes are valid UTF-8, otherwise Latin-1 (every byte kept). */
export function decodeText(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/** dns-packet writes the root as `.`; we write names without a trailing dot, so the root is ``. */
export function bareName(name: string): string {
  return name === '.' ? '' : name.replace(/\.$/, '');
}

function rdata(a: Answer, qtype: QType): RDataByType[QType] | undefined {
  if (a.type !== qtype) return undefined;
  switch (a.type) {
    case 'A':
    case 'AAAA':
      return a.data;
    case 'PTR':
    case 'CNAME':
      return bareName(a.data);
    case 'MX':
      return { preference: a.data.preference ?? 0, exchange: bareName(a.data.exchange) };
    case 'TXT': {
      const parts = Array.isArray(a.data) ? a.data : [a.data];
      return decodeText(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
    }
    default:
      return undefined;
  }
}

function isIn(a: Answer): a is Exclude<Answer, { type: 'OPT' }> {
  return a.type !== 'OPT' && (a.class === undefined || a.class === 'IN');
}

/** RFC 2308 §5: a void answer may be cached for min(SOA TTL, SOA MINIMUM). */
function negativeTtl(packet: DecodedPacket): number | undefined {
  for (const a of packet.authorities ?? []) {
    if (a.type === 'SOA') return Math.min(a.ttl ?? 0, a.data.minimum ?? 0);
  }
  return undefined;
}

/**
 * Turn a response into a DnsAnswer (NOERROR / NXDOMAIN / NODATA) or throw a
 * DnsError for a fault. The CNAME chain is followed inside the answer section
 * only, at most `maxChain` links; a loop is a SERVFAIL.
 */
export function interpret<T extends QType>(packet: DecodedPacket, qname: string, qtype: T, maxChain: number): DnsAnswer<T> {
  const rcode = (packet as DecodedPacket & { rcode?: string }).rcode ?? 'NOERROR';
  switch (rcode) {
    case 'NOERROR':
    case 'NXDOMAIN':
      break;
    case 'FORMERR':
    case 'REFUSED':
    case 'SERVFAIL':
      throw new DnsError(rcode, qname, qtype);
    default:
      // NOTIMP and the rest: the server could not answer; a fault, never a void answer.
      throw new DnsError('SERVFAIL', qname, qtype);
  }
  const answers = (packet.answers ?? []).filter(isIn);
  const chain: DnsRecord<string>[] = [];
  const seen = new Set<string>();
  let owner = qname.toLowerCase();
  seen.add(owner);
  if (qtype !== 'CNAME') {
    for (;;) {
      const cname = answers.find((a) => a.type === 'CNAME' && bareName(a.name).toLowerCase() === owner);
      if (!cname || cname.type !== 'CNAME') break;
      const target = bareName(cname.data).toLowerCase();
      if (seen.has(target) || chain.length >= maxChain) throw new DnsError('SERVFAIL', qname, qtype);
      chain.push({ name: owner, ttl: cname.ttl ?? 0, data: bareName(cname.data) });
      seen.add(target);
      owner = target;
    }
  }
  const records: DnsRecord<RDataByType[T]>[] = [];
  for (const a of answers) {
    if (bareName(a.name).toLowerCase() !== owner) continue;
    const data = rdata(a, qtype);
    if (data !== undefined) records.push({ name: owner, ttl: a.ttl ?? 0, data: data as RDataByType[T] });
  }
  if (rcode === 'NXDOMAIN') return { qname, qtype, status: 'NXDOMAIN', records: [], chain, ttl: negativeTtl(packet) };
  if (records.length === 0) return { qname, qtype, status: 'NODATA', records: [], chain, ttl: negativeTtl(packet) };
  const ttl = Math.min(...records.map((r) => r.ttl), ...chain.map((r) => r.ttl));
  return { qname, qtype, status: 'NOERROR', records, chain, ttl };
}

/** The records' data, or the void answer as a DnsError (what the Resolver methods return). */
export function dataOf<T extends QType>(answer: DnsAnswer<T>): RDataByType[T][] {
  if (answer.status !== 'NOERROR') throw new DnsError(answer.status, answer.qname, answer.qtype);
  return answer.records.map((r) => r.data);
}
