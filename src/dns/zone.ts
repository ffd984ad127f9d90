// Zone data in the shape of the RFC 7208 test suite's `zonedata`, plus two
// extensions of ours, so the SPF suite and our own fixture worlds share one
// format:
//
//   name:
//     - A: 192.0.2.1            AAAA, PTR, CNAME likewise
//     - MX: [10, mx.example.com]
//     - TXT: "v=spf1 -all"      a list of strings = one record of several strings
//     - SPF: "..."              copied to TXT when the name has no TXT entry
//     - TXT: NONE               the name has no TXT records
//     - TIMEOUT                 queries of a type not listed before it time out
//                               (`TXT: NONE` does not count as listing TXT)
//     - SERVFAIL                (ours) likewise, but the server answers SERVFAIL
//     - TTL: 60                 (ours) TTL of the records that follow (default 300)
//
// `lookup` answers one question like an authoritative server would; the
// in-memory ZoneResolver and the fixture DNS server (test/helpers) both use it.

import { DnsError, type MxRecord, type Resolver } from './types.js';
import { reverseName } from './reverse.js';

export type RRType = 'A' | 'AAAA' | 'TXT' | 'MX' | 'PTR' | 'CNAME';

export type RData = string | string[] | MxRecord;

export interface ZoneRecord {
  name: string;
  type: RRType;
  ttl: number;
  /** A/AAAA/PTR/CNAME: string; TXT: list of character-strings; MX: MxRecord. */
  data: RData;
}

interface NameEntry {
  records: ZoneRecord[];
  /** Types listed before a TIMEOUT/SERVFAIL marker; others fail. */
  failAfter?: { kind: 'TIMEOUT' | 'SERVFAIL'; knownTypes: Set<string> };
}

export type LookupResult =
  | { kind: 'answer'; records: ZoneRecord[] }
  | { kind: 'nxdomain'; records: ZoneRecord[] }
  | { kind: 'nodata'; records: ZoneRecord[] }
  | { kind: 'timeout' }
  | { kind: 'servfail' };

export interface ZoneOptions {
  /** Unknown names beginning with this label time out (the SPF suite's `error.`). */
  timeoutPrefix?: string;
}

const DEFAULT_TTL = 300;
const MAX_CNAME_CHAIN = 8;

function norm(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

export class Zone {
  private names = new Map<string, NameEntry>();

  constructor(
    data: Record<string, unknown> = {},
    private readonly opts: ZoneOptions = {},
  ) {
    this.load(data);
  }

  /** Add (or merge) zone data in the suite's shape. */
  load(data: Record<string, unknown>): void {
    for (const [rawName, entries] of Object.entries(data ?? {})) {
      const name = norm(rawName);
      const entry = this.names.get(name) ?? { records: [] };
      this.names.set(name, entry);
      let ttl = DEFAULT_TTL;
      const spf: ZoneRecord[] = [];
      let hasTxt = false;
      const listed = new Set<string>(entry.records.map((r) => r.type));
      for (const item of (entries as unknown[]) ?? []) {
        if (item === 'TIMEOUT' || item === 'SERVFAIL') {
          entry.failAfter = { kind: item, knownTypes: new Set(listed) };
          continue;
        }
        if (typeof item !== 'object' || item === null) throw new Error(`zone ${rawName}: bad entry ${JSON.stringify(item)}`);
        for (const [type, value] of Object.entries(item as Record<string, unknown>)) {
          if (type === 'TTL') {
            ttl = Number(value);
            continue;
          }
          // `TXT: NONE` lists nothing: a TIMEOUT after it still times TXT out (the suite's txttimeout).
          if (value !== 'NONE') listed.add(type);
          switch (type) {
            case 'A':
            case 'AAAA':
            case 'PTR':
            case 'CNAME':
              entry.records.push({ name, type, ttl, data: norm(String(value)) === '' ? '' : String(value).replace(/\.$/, '') });
              break;
            case 'MX': {
              const [pref, host] = value as [number, string];
              entry.records.push({ name, type: 'MX', ttl, data: { preference: Number(pref), exchange: String(host).replace(/\.$/, '') } });
              break;
            }
            case 'TXT':
              hasTxt = true;
              if (value === 'NONE') break;
              entry.records.push({ name, type: 'TXT', ttl, data: Array.isArray(value) ? value.map(String) : [String(value)] });
              break;
            case 'SPF':
              if (value === 'NONE') break;
              spf.push({ name, type: 'TXT', ttl, data: Array.isArray(value) ? value.map(String) : [String(value)] });
              break;
            default:
              throw new Error(`zone ${rawName}: unknown record type ${type}`);
          }
        }
      }
      // The suite's rule: a name's TXT set is its TXT entries if it has any, else its SPF entries.
      if (!hasTxt && !entry.records.some((r) => r.type === 'TXT')) entry.records.push(...spf);
      if (spf.length > 0 || hasTxt) listed.add('TXT');
      if (entry.failAfter && !hasTxt && spf.length > 0 && listed.has('SPF')) entry.failAfter.knownTypes.add('TXT');
    }
  }

  /** Remove a name entirely (tests change the world between steps). */
  delete(name: string): void {
    this.names.delete(norm(name));
  }

  has(name: string): boolean {
    return this.names.has(norm(name));
  }

  /** Answer a question as an authoritative server would, following CNAMEs. */
  lookup(qname: string, qtype: RRType): LookupResult {
    const chain: ZoneRecord[] = [];
    let name = norm(qname);
    for (let i = 0; i <= MAX_CNAME_CHAIN; i++) {
      const entry = this.names.get(name);
      if (!entry) {
        if (this.opts.timeoutPrefix && name.startsWith(this.opts.timeoutPrefix)) return { kind: 'timeout' };
        return { kind: 'nxdomain', records: chain };
      }
      if (entry.failAfter && !entry.failAfter.knownTypes.has(qtype)) {
        return entry.failAfter.kind === 'TIMEOUT' ? { kind: 'timeout' } : { kind: 'servfail' };
      }
      const direct = entry.records.filter((r) => r.type === qtype);
      if (direct.length > 0) return { kind: 'answer', records: [...chain, ...direct] };
      const cname = entry.records.find((r) => r.type === 'CNAME');
      if (cname && qtype !== 'CNAME') {
        chain.push(cname);
        name = norm(cname.data as string);
        if (chain.filter((r) => r.name === name).length > 0) return { kind: 'servfail' }; // CNAME loop
        continue;
      }
      return { kind: 'nodata', records: chain };
    }
    return { kind: 'servfail' };
  }
}

/** A Resolver answering from a Zone in memory: checks are tested with no network. */
export class ZoneResolver implements Resolver {
  /** Every question asked, in order, as `TYPE name` (tests count lookups). */
  readonly queries: string[] = [];

  constructor(public readonly zone: Zone) {}

  private ask(name: string, type: RRType): ZoneRecord[] {
    this.queries.push(`${type} ${norm(name)}`);
    const r = this.zone.lookup(name, type);
    switch (r.kind) {
      case 'timeout':
        throw new DnsError('TIMEOUT', name, type);
      case 'servfail':
        throw new DnsError('SERVFAIL', name, type);
      case 'nxdomain':
        throw new DnsError('NXDOMAIN', name, type);
      case 'nodata':
        throw new DnsError('NODATA', name, type);
      case 'answer':
        return r.records.filter((rec) => rec.type === type);
    }
  }

  async a(name: string): Promise<string[]> {
    return this.ask(name, 'A').map((r) => r.data as string);
  }
  async aaaa(name: string): Promise<string[]> {
    return this.ask(name, 'AAAA').map((r) => r.data as string);
  }
  async txt(name: string): Promise<string[]> {
    return this.ask(name, 'TXT').map((r) => (r.data as string[]).join(''));
  }
  async mx(name: string): Promise<MxRecord[]> {
    return this.ask(name, 'MX').map((r) => r.data as MxRecord);
  }
  async ptr(ip: string): Promise<string[]> {
    return this.ask(reverseName(ip), 'PTR').map((r) => r.data as string);
  }
}
