// Static allow/deny lists from config and files: IPs and CIDRs (IPv4 and
// IPv6), and domains. The store room will bring a faster trie and lists with
// sources and expiry; these are the simple in-memory kind.

import { readFile } from 'node:fs/promises';
import { networkBigInt, parseNetwork, readNetwork } from '../core/cidr.js';
import { unwrapIpText } from '../core/ip.js';
import { listLines } from '../core/list-lines.js';
import type { Envelope, Evidence } from '../core/types.js';
import { domainOf, stringList, timed } from './evidence.js';
import { isBareIp, isValidHostname, normaliseName, parseAddressLiteral } from './hostname.js';
import type { CheckContext } from './types.js';

type Range = [bigint, bigint];

/** An IP or CIDR (read by src/core/cidr.ts) as [family, first, last]; host bits cleared. Throws on garbage. */
function parseEntry(text: string): [4 | 6, bigint, bigint] {
  const r = readNetwork(text);
  if (!r.ok) throw new Error(r.why);
  const width = r.net.v6 ? 128 : 32;
  const first = networkBigInt(r.net);
  const last = first | ((1n << BigInt(width - r.net.len)) - 1n);
  return [r.net.v6 ? 6 : 4, first, last];
}

/** Sort and merge overlapping or adjacent ranges. */
function merge(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1n) {
      if (r[1] > last[1]) last[1] = r[1];
    } else out.push([r[0], r[1]]);
  }
  return out;
}

function inRanges(ranges: Range[], v: bigint): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid];
    if (v < a) hi = mid - 1;
    else if (v > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** IPs and CIDRs, IPv4 and IPv6, as sorted merged ranges searched by bisection. */
export class IpList {
  private v4: Range[] = [];
  private v6: Range[] = [];
  private dirty = false;
  private count = 0;

  static from(entries: Iterable<string>): IpList {
    const l = new IpList();
    for (const e of entries) l.add(e);
    return l;
  }

  /** Add `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`…; host bits of a CIDR are ignored. Throws on a bad entry. */
  add(entry: string): void {
    const [family, first, last] = parseEntry(entry.trim());
    (family === 4 ? this.v4 : this.v6).push([first, last]);
    this.dirty = true;
    this.count++;
  }

  /** Entries added (before merging). */
  get size(): number {
    return this.count;
  }

  has(ip: string): boolean {
    const text = unwrapIpText(ip);
    const addr = text.includes('/') ? undefined : parseNetwork(text);
    if (!addr) return false;
    if (this.dirty) {
      this.v4 = merge(this.v4);
      this.v6 = merge(this.v6);
      this.dirty = false;
    }
    return inRanges(addr.v6 ? this.v6 : this.v4, networkBigInt(addr));
  }
}

/**
 * Domains, case-insensitive. `example.com` matches that name only;
 * `.example.com` matches every name below it, not example.com itself
 * (list both to match both, as in Postfix access maps).
 */
export class DomainList {
  private exact = new Set<string>();
  private parents = new Set<string>();

  static from(entries: Iterable<string>): DomainList {
    const l = new DomainList();
    for (const e of entries) l.add(e);
    return l;
  }

  /** Throws on an entry that is not a host name (with an optional leading dot). */
  add(entry: string): void {
    const e = entry.trim();
    const suffix = e.startsWith('.');
    const name = normaliseName(suffix ? e.slice(1) : e);
    if (!isValidHostname(name)) throw new Error(`not a domain: ${entry}`);
    (suffix ? this.parents : this.exact).add(name);
  }

  get size(): number {
    return this.exact.size + this.parents.size;
  }

  has(name: string): boolean {
    return this.match(name) !== undefined;
  }

  /** The entry that matches `name` (`example.com` or `.example.com`), or undefined. */
  match(name: string): string | undefined {
    const n = normaliseName(name);
    if (n === '' || n.length > 253) return undefined;
    if (this.exact.has(n)) return n;
    // Walk up the parents; a valid name has at most 127 labels.
    for (let i = n.indexOf('.'); i >= 0; i = n.indexOf('.', i + 1)) {
      const parent = n.slice(i + 1);
      if (this.parents.has(parent)) return `.${parent}`;
    }
    return undefined;
  }
}

// ---------------------------------------------------------------- files

export interface ListFileError {
  file: string;
  line: number;
  text: string;
  reason: string;
}

export type ListKind = 'ip' | 'domain' | 'any';

function validate(entry: string, kind: ListKind): string | undefined {
  const tryIp = (): string | undefined => {
    try {
      parseEntry(entry);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  };
  const tryDomain = (): string | undefined => {
    try {
      new DomainList().add(entry);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  };
  if (kind === 'ip') return tryIp();
  if (kind === 'domain') return tryDomain();
  const looksIp = /^[0-9a-fA-F:.]+(\/\d+)?$/.test(entry) && (entry.includes(':') || /^[\d.]+(\/\d+)?$/.test(entry));
  return looksIp ? tryIp() : tryDomain();
}

/**
 * Parse list text: one entry per line, `#` starts a comment, blank lines are
 * ignored. A bad line is reported with its file and line and skipped; the good
 * lines are kept.
 */
export function parseListText(text: string, file: string, kind: ListKind = 'any'): { entries: string[]; errors: ListFileError[] } {
  const entries: string[] = [];
  const errors: ListFileError[] = [];
  for (const { line, raw, entry } of listLines(text, /#.*$/)) {
    const why = /\s/.test(entry) ? 'one entry per line expected' : validate(entry, kind);
    if (why) errors.push({ file, line, text: raw, reason: why });
    else entries.push(entry);
  }
  return { entries, errors };
}

/**
 * Read a list file. An unreadable file rejects (the caller keeps its previous
 * list); bad lines are reported and skipped.
 */
export async function loadListFile(path: string, kind: ListKind = 'any'): Promise<{ entries: string[]; errors: ListFileError[] }> {
  return parseListText(await readFile(path, 'utf8'), path, kind);
}

/** Split validated entries into an IP list and a domain list. */
export function buildLists(entries: Iterable<string>): { ips: IpList; domains: DomainList } {
  const ips = new IpList();
  const domains = new DomainList();
  for (const e of entries) {
    if (validate(e, 'ip') === undefined) ips.add(e);
    else domains.add(e);
  }
  return { ips, domains };
}

// ---------------------------------------------------------------- check

export interface ListCheckOptions {
  /** Check name, e.g. `client_allow`, `sender_deny`. */
  name: string;
  ips?: IpList;
  domains?: DomainList;
  /**
   * What to look up. `client`: the client IP in `ips`, and its forward-confirmed
   * names (evidence `fcrdns`, never the unverified PTR) in `domains`.
   * `sender` / `rcpt`: the domain of MAIL FROM / the current RCPT in `domains`
   * (an address literal in `ips`). `helo`: the HELO name in `domains`, an IP or
   * address literal in `ips`.
   */
  field: 'client' | 'sender' | 'helo' | 'rcpt';
}

function literalIp(text: string): string | undefined {
  return parseAddressLiteral(text) ?? (isBareIp(text) ? text : undefined);
}

export function checkList(env: Envelope, ctx: CheckContext, opts: ListCheckOptions): Promise<Evidence> {
  return timed(opts.name, async () => {
    const { field, ips, domains } = opts;
    const listed = (value: string, what: string, entry?: string): Omit<Evidence, 'check' | 'ms'> => ({
      result: 'listed',
      detail: `${field} ${value} is in list ${opts.name}${entry ? ` (entry ${entry})` : ''}`,
      data: { field, value, matched: what, ...(entry ? { entry } : {}) },
    });
    const unlisted = (value: string | undefined, why?: string): Omit<Evidence, 'check' | 'ms'> => ({
      result: 'unlisted',
      detail: why ?? `${field} ${value} is not in list ${opts.name}`,
      data: { field, value },
    });

    if (field === 'client') {
      if (ips?.has(env.clientIp)) return listed(env.clientIp, 'ip');
      if (!domains || domains.size === 0) return unlisted(env.clientIp);
      const fc = await ctx.evidence('fcrdns');
      const names = stringList(fc.data?.names);
      for (const n of names) {
        const entry = domains.match(n);
        if (entry) return listed(n, 'domain', entry);
      }
      if (fc.result === 'temperror') return { result: 'temperror', detail: `client names unknown: ${fc.detail}`, data: { field, value: env.clientIp } };
      return unlisted(env.clientIp, `client ${env.clientIp}${names.length ? ` (${names.join(', ')})` : ''} is not in list ${opts.name}`);
    }

    let value: string | undefined;
    if (field === 'helo') value = env.helo;
    else {
      const address = field === 'sender' ? env.from : env.rcpts[env.rcpts.length - 1];
      if (!address) return unlisted(undefined, `no ${field} address${address === '' ? ' (null sender)' : ''}`);
      value = address.includes('@') ? address.slice(address.lastIndexOf('@') + 1) : undefined;
      if (value === undefined) return unlisted(address, `${field} ${address} has no domain`);
      value = parseAddressLiteral(value) !== undefined ? value : (domainOf(address) ?? value);
    }
    if (value === undefined) return unlisted(undefined, `no ${field} yet`);
    const ip = literalIp(value);
    if (ip !== undefined) return ips?.has(ip) ? listed(value, 'ip') : unlisted(value);
    const entry = domains?.match(value);
    return entry ? listed(value, 'domain', entry) : unlisted(value);
  });
}
