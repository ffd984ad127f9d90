// What the zone lists, in memory and in step with the store. The store's own
// index (store.lookup) answers "which ban / list entry contains this
// address"; this file keeps what a DNS answer needs beyond that — a ban's
// category and reason, a list entry's expiry — loaded at start and then
// followed through the store's change feed (every host sharing a Redis, or
// every process sharing a SQLite file, within a second). A query never
// touches the database.
//
// Whitelists win here as everywhere: an address on a list of the allow zone,
// or in my_networks, is never answered as listed by the block zone.

import type { Clock } from '../../core/types.js';
import { IpTrie, type Store, type StoreChange, type StoreLogger } from '../../store/index.js';
import { banCode, BL_LIST_CODE, TEST_POINT_CODE, txtText, untilText } from './codes.js';

/** One reason an address is listed: the A record's last octet, the TXT text, when it ends (ms; Infinity = never). */
export interface Listing {
  code: number;
  text: string;
  expiresAt: number;
}

export interface ListedList {
  name: string;
  code: number;
}

export interface ZoneDataOptions {
  store: Store;
  clock: Clock;
  logger?: StoreLogger;
  /** Lists of the block zone (all answer BL_LIST_CODE). */
  blLists: readonly string[];
  /** Lists of the allow zone with their codes. */
  wlLists: readonly ListedList[];
  /** The config's own `lists:` of type ip, by name (entries never expire). */
  staticLists?: ReadonlyMap<string, IpTrie>;
  /** Never listed by the block zone (my_networks). */
  neverBlock?: IpTrie;
  /** Re-read bans and lists from the store this often (catches what a Redis outage hid from the feed); 0 = never. */
  refreshMs?: number;
}

interface BanInfo {
  category: string;
  reason: string;
  expiresAt: number;
}

function isTestPoint(trie: IpTrie, ip: string): boolean {
  return trie.has(ip);
}

export class ZoneData {
  /** Bumped on every change: the SOA serial (seconds since the epoch, or more when changes come faster). */
  serial: number;
  private bans = new Map<string, BanInfo>();
  /** `list\ncidr` → expiry. */
  private listExpiry = new Map<string, number>();
  private readonly listed: Set<string>;
  private readonly testPoints = new IpTrie();
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: ZoneDataOptions) {
    this.serial = Math.floor(opts.clock.now() / 1000);
    this.listed = new Set([...opts.blLists, ...opts.wlLists.map((l) => l.name)]);
    this.testPoints.insert('127.0.0.2', Infinity);
  }

  /** Follow the change feed, then read what is there (a change during the read is applied twice: harmlessly). */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.store.onChange((c) => this.apply(c));
    await this.reload();
    const every = this.opts.refreshMs ?? 300_000;
    if (every > 0) {
      this.timer = setInterval(() => {
        this.reload().catch((err: unknown) => this.opts.logger?.warn({ err: (err as Error).message }, 'zone: reading the store failed; serving what was read before'));
      }, every);
      this.timer.unref();
    }
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
  }

  /** Read every unexpired ban and every entry of the listed lists. */
  async reload(): Promise<void> {
    const store = this.opts.store;
    const bans = new Map<string, BanInfo>();
    await store.scanBanRecords((page) => {
      for (const b of page) bans.set(b.cidr, { category: b.category, reason: b.reason, expiresAt: b.expiresAt });
    });
    const lists = new Map<string, number>();
    const names = new Set((await store.listNames()).map((l) => l.name));
    for (const name of this.listed) {
      if (!names.has(name)) continue;
      for (const e of await store.listShow(name)) lists.set(`${name}\n${e.entry}`, e.expiresAt ?? Infinity);
    }
    this.bans = bans;
    this.listExpiry = lists;
    this.bump();
  }

  private bump(): void {
    this.serial = Math.max(this.serial + 1, Math.floor(this.opts.clock.now() / 1000));
  }

  apply(change: StoreChange): void {
    switch (change.kind) {
      case 'ban':
        this.bans.set(change.ban.cidr, { category: change.ban.category, reason: change.ban.reason, expiresAt: change.ban.expiresAt });
        break;
      case 'unban':
        this.bans.delete(change.cidr);
        break;
      case 'list-add':
        if (!this.listed.has(change.entry.list)) return;
        this.listExpiry.set(`${change.entry.list}\n${change.entry.entry}`, change.entry.expiresAt ?? Infinity);
        break;
      case 'list-del':
        if (!this.listed.has(change.list)) return;
        this.listExpiry.delete(`${change.list}\n${change.entry}`);
        break;
    }
    this.bump();
  }

  /** Why the block zone lists `ip` now (empty: not listed). */
  blocked(ip: string, now = this.opts.clock.now()): Listing[] {
    if (isTestPoint(this.testPoints, ip)) return [{ code: TEST_POINT_CODE, text: 'RFC 5782 test point', expiresAt: Infinity }];
    if (this.opts.neverBlock?.has(ip) || this.allowed(ip, now).length > 0) return [];
    const out: Listing[] = [];
    const ban = this.opts.store.lookup.bannedBy(ip);
    if (ban && ban.expiresAt > now) {
      const info = this.bans.get(ban.cidr);
      const category = info?.category ?? 'ban';
      const why = info?.reason ? `: ${info.reason}` : '';
      out.push({ code: banCode(category), text: `${ban.cidr} banned (${category})${why}; ${untilText(ban.expiresAt)}`, expiresAt: ban.expiresAt });
    }
    for (const name of this.opts.blLists) {
      const hit = this.listHit(name, ip, now);
      if (hit) out.push({ code: BL_LIST_CODE, text: `${hit.cidr} on the ${name} list; ${untilText(hit.expiresAt)}`, expiresAt: hit.expiresAt });
    }
    return out;
  }

  /** Why the allow zone lists `ip` now. */
  allowed(ip: string, now = this.opts.clock.now()): Listing[] {
    if (isTestPoint(this.testPoints, ip)) return [{ code: TEST_POINT_CODE, text: 'RFC 5782 test point', expiresAt: Infinity }];
    const out: Listing[] = [];
    for (const l of this.opts.wlLists) {
      const hit = this.listHit(l.name, ip, now);
      if (hit) out.push({ code: l.code, text: `${hit.cidr} on the ${l.name} list; ${untilText(hit.expiresAt)}`, expiresAt: hit.expiresAt });
    }
    return out;
  }

  /** The entry of list `name` (the store's, else the config's) containing `ip`. A miss builds no text (the common case). */
  private listHit(name: string, ip: string, now: number): { cidr: string; expiresAt: number } | undefined {
    const lookup = this.opts.store.lookup;
    if (lookup.listHas(name, ip)) {
      const cidr = lookup.listMatch(name, ip);
      if (cidr !== undefined) {
        const expiresAt = this.listExpiry.get(`${name}\n${cidr}`) ?? Infinity;
        if (expiresAt > now) return { cidr, expiresAt };
      }
    }
    const trie = this.opts.staticLists?.get(name);
    if (!trie?.has(ip, now)) return undefined;
    const m = trie.match(ip, now);
    return m && { cidr: m.cidr, expiresAt: m.value };
  }

  /** The earliest end of the listings the last codes() call found (Infinity: none ends). */
  codesExpireAt = Infinity;

  /**
   * blocked()/allowed() without the texts, for the A-query fast path: a
   * bitmask of the codes (bit N = 127.0.0.N), the earliest end in
   * codesExpireAt. The same rules, in the same order.
   */
  codes(zone: 'bl' | 'wl', ip: string, now = this.opts.clock.now()): number {
    this.codesExpireAt = Infinity;
    if (isTestPoint(this.testPoints, ip)) return 1 << TEST_POINT_CODE;
    let mask = 0;
    const hit = (code: number, expiresAt: number) => {
      mask |= 1 << code;
      if (expiresAt < this.codesExpireAt) this.codesExpireAt = expiresAt;
    };
    if (zone === 'wl') {
      for (const l of this.opts.wlLists) {
        const h = this.listHit(l.name, ip, now);
        if (h) hit(l.code, h.expiresAt);
      }
      return mask;
    }
    if (this.opts.neverBlock?.has(ip) || this.codes('wl', ip, now) !== 0) {
      this.codesExpireAt = Infinity;
      return 0;
    }
    this.codesExpireAt = Infinity;
    const lookup = this.opts.store.lookup;
    if (lookup.isBanned(ip)) {
      const ban = lookup.bannedBy(ip);
      if (ban && ban.expiresAt > now) hit(banCode(this.bans.get(ban.cidr)?.category ?? 'ban'), ban.expiresAt);
    }
    for (const name of this.opts.blLists) {
      const h = this.listHit(name, ip, now);
      if (h) hit(BL_LIST_CODE, h.expiresAt);
    }
    return mask;
  }

  /** Everything a zone lists now, for `frontline zone export`: one row per ban or list entry (whitelisted hosts left out of the block zone). */
  entries(zone: 'bl' | 'wl', now = this.opts.clock.now()): Array<{ cidr: string } & Listing> {
    const out: Array<{ cidr: string } & Listing> = [];
    const addList = (name: string, code: number) => {
      const prefix = `${name}\n`;
      for (const [key, expiresAt] of this.listExpiry) {
        if (key.startsWith(prefix) && expiresAt > now) out.push({ cidr: key.slice(prefix.length), code, text: `on the ${name} list; ${untilText(expiresAt)}`, expiresAt });
      }
      for (const { cidr } of this.opts.staticLists?.get(name)?.entries() ?? []) out.push({ cidr, code, text: `on the ${name} list; no expiry`, expiresAt: Infinity });
    };
    if (zone === 'wl') {
      for (const l of this.opts.wlLists) addList(l.name, l.code);
      return out;
    }
    for (const [cidr, b] of this.bans) {
      if (b.expiresAt <= now) continue;
      const why = b.reason ? `: ${b.reason}` : '';
      out.push({ cidr, code: banCode(b.category), text: `banned (${b.category})${why}; ${untilText(b.expiresAt)}`, expiresAt: b.expiresAt });
    }
    for (const name of this.opts.blLists) addList(name, BL_LIST_CODE);
    // Whitelists win: a listed host that the allow zone or my_networks holds is left out (prefixes are exported as they are; docs/enforce.md).
    return out.filter((e) => !(e.cidr.endsWith('/32') || e.cidr.endsWith('/128')) || (!this.opts.neverBlock?.has(e.cidr.split('/')[0]) && this.allowed(e.cidr.split('/')[0], now).length === 0));
  }

  /** Text for TXT records: printable, one string. */
  static txt(l: Listing): string {
    return txtText(l.text);
  }
}
