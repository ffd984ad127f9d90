// The in-memory copy of what lookups need — which CIDRs are banned until
// when, and what each named list holds — kept in step with the store (loaded
// at open, updated by every change the store makes or hears about), so a
// lookup never touches the database.
//
// Bans and ip lists live in IpTries whose values are expiry times (ms;
// Infinity = never), so an expired entry stops matching at once, before any
// purge has removed it. Only the CIDR and expiry are kept for bans: the
// reason and history are read from the store on a hit (hits are rare; the
// miss is the hot path).

import type { Clock } from '../core/types.js';
import { canonicalAddress, canonicalAsn, canonicalDomain } from './entries.js';
import { InvalidEntryError } from './errors.js';
import { IpTrie } from './ip-trie.js';
import type { ListKind, StoreChange, StoreLookup } from './types.js';

interface ListIndex {
  kind: ListKind;
  ips?: IpTrie;
  /** domain / asn / address entries → expiry (ms, Infinity = never). */
  names?: Map<string, number>;
}

function expiryValue(expiresAt: number | undefined): number {
  return expiresAt === undefined || expiresAt === null ? Infinity : expiresAt;
}

export class MemoryIndex implements StoreLookup {
  bans = new IpTrie();
  private lists = new Map<string, ListIndex>();

  /**
   * @param ownAddress this host's own addresses: a ban never matches them,
   *   whichever way it reached the index (see own-addresses.ts). Asked only
   *   on a hit, so the common miss costs nothing more.
   */
  constructor(
    private readonly clock: Clock,
    private readonly ownAddress: (ip: string) => boolean = () => false,
  ) {}

  // Bans

  setBan(cidr: string, expiresAt: number): void {
    this.bans.insert(cidr, expiresAt);
  }

  deleteBan(cidr: string): void {
    this.bans.remove(cidr);
  }

  bannedBy(ip: string): { cidr: string; expiresAt: number } | undefined {
    const now = this.clock.now();
    // The common case is a miss: answer it without building any text.
    if (!this.bans.has(ip, now) || this.ownAddress(ip)) return undefined;
    const m = this.bans.match(ip, now);
    return m && { cidr: m.cidr, expiresAt: m.value };
  }

  isBanned(ip: string): boolean {
    return this.bans.has(ip, this.clock.now()) && !this.ownAddress(ip);
  }

  // Lists

  defineList(name: string, kind: ListKind): ListIndex {
    let l = this.lists.get(name);
    if (!l) {
      l = kind === 'ip' ? { kind, ips: new IpTrie() } : { kind, names: new Map() };
      this.lists.set(name, l);
    }
    return l;
  }

  listKind(name: string): ListKind | undefined {
    return this.lists.get(name)?.kind;
  }

  /** `entry` must already be canonical for `kind`. */
  listAdd(name: string, kind: ListKind, entry: string, expiresAt?: number): void {
    const l = this.defineList(name, kind);
    if (l.ips) l.ips.insert(entry, expiryValue(expiresAt));
    else l.names?.set(entry, expiryValue(expiresAt));
  }

  listDel(name: string, entry: string): void {
    const l = this.lists.get(name);
    if (l?.ips) l.ips.remove(entry);
    else l?.names?.delete(entry);
  }

  listHas(name: string, value: string | number): boolean {
    const l = this.lists.get(name);
    if (!l) return false;
    // IP lists: no match text needed, so no string is built (the hot path).
    if (l.ips) return typeof value === 'string' && l.ips.has(value, this.clock.now());
    return this.listMatch(name, value) !== undefined;
  }

  /**
   * The entry of list `name` that matches `value`: for ip lists the longest
   * unexpired CIDR containing the IP, for domain lists the name itself or its
   * closest listed parent, for asn and address lists the value itself.
   * Values that are not valid for the list's kind match nothing.
   */
  listMatch(name: string, value: string | number): string | undefined {
    const l = this.lists.get(name);
    if (!l) return undefined;
    const now = this.clock.now();
    if (l.ips) return l.ips.match(String(value), now)?.cidr;
    const names = l.names as Map<string, number>;
    try {
      if (l.kind === 'asn') {
        const k = canonicalAsn(value);
        return (names.get(k) ?? -1) > now ? k : undefined;
      }
      if (l.kind === 'address') {
        const k = canonicalAddress(String(value));
        return (names.get(k) ?? -1) > now ? k : undefined;
      }
      let d = canonicalDomain(String(value));
      for (;;) {
        if ((names.get(d) ?? -1) > now) return d;
        const dot = d.indexOf('.');
        if (dot < 0) return undefined;
        d = d.slice(dot + 1);
      }
    } catch (e) {
      if (e instanceof InvalidEntryError) return undefined;
      throw e;
    }
  }

  /** True when an unexpired entry of ip list `name` contains `cidr` or lies inside it. */
  listOverlaps(name: string, cidr: string): boolean {
    return this.lists.get(name)?.ips?.overlaps(cidr, this.clock.now()) ?? false;
  }

  listSize(name: string): number {
    const l = this.lists.get(name);
    return l ? (l.ips?.size ?? l.names?.size ?? 0) : 0;
  }

  // Changes

  apply(change: StoreChange): void {
    switch (change.kind) {
      case 'ban':
        this.setBan(change.ban.cidr, change.ban.expiresAt);
        break;
      case 'unban':
        this.deleteBan(change.cidr);
        break;
      case 'list-add':
        this.listAdd(change.entry.list, change.entry.kind, change.entry.entry, change.entry.expiresAt);
        break;
      case 'list-del':
        this.listDel(change.list, change.entry);
        break;
    }
  }

  /** Drop expired entries (lookups already ignore them; this frees the memory). */
  purge(): number {
    const now = this.clock.now();
    let n = this.bans.removeWhere(now);
    for (const l of this.lists.values()) {
      if (l.ips) n += l.ips.removeWhere(now);
      else if (l.names) {
        for (const [k, exp] of l.names) {
          if (exp <= now) {
            l.names.delete(k);
            n++;
          }
        }
      }
    }
    return n;
  }

  /** Take over another index's contents (after a full reload). */
  replaceWith(other: MemoryIndex): void {
    this.bans = other.bans;
    this.lists = other.lists;
  }

  stats(): { bans: number; lists: Record<string, number>; trieBytes: number } {
    let trieBytes = this.bans.memoryBytes();
    const lists: Record<string, number> = {};
    for (const [name, l] of this.lists) {
      lists[name] = l.ips?.size ?? l.names?.size ?? 0;
      trieBytes += l.ips?.memoryBytes() ?? 0;
    }
    return { bans: this.bans.size, lists, trieBytes };
  }
}
