// What frontline wants in the firewall, from what the store says: the bans
// to drop and the allow set accepted before them. Bad input never reaches a
// transaction: a store entry that is not a strict IP or CIDR, one wider than
// store.bans.min_prefix, or one overlapping the allow set (allow lists,
// my_networks, store.never_ban, loopback, this host's addresses) is left out
// and counted — never-ban holds in the kernel too, whatever the store says
// (another host's Redis, a row written into the SQLite file by hand).
//
// A full reconcile reads a million bans: DesiredBuilder takes them page by
// page from the store (FirewallSource), keeps IPv4 hosts as numbers
// (hosts4.ts) and builds an element object only for the few others (IPv6,
// networks).

import { formatNetwork, formatNetworkAddress, readNetwork, type Network } from '../../core/cidr.js';
import { formatV4, parseV4 } from '../../core/ip.js';
import { IpTrie } from '../../store/ip-trie.js';
import type { BanMinPrefix } from '../../store/types.js';
import { AllowRanges } from './allow-ranges.js';
import { Hosts4Collector } from './hosts4.js';
import { emptySkipCounts, type BanElement, type DesiredState, type SkipCounts } from './types.js';

export interface DesiredInput {
  bans: Iterable<{ cidr: string; expiresAt: number }>;
  /** Allow and never-ban entries (IPs or CIDRs; duplicates and nested ones are fine). */
  allow: Iterable<string>;
  minPrefix: BanMinPrefix;
  now: number;
  /** Leave out network bans inside a wider one (nft interval sets refuse overlaps). */
  disjointNets: boolean;
}

const MAX_EXAMPLES = 5;

/** Checks bans one by one against the allow set: the full reconcile and each change from the feed. */
export class BanFilter {
  readonly allow: string[];
  readonly skipped: SkipCounts = emptySkipCounts();
  readonly examples: string[] = [];
  /** Why the last check() left its entry out (undefined: it had merely expired). */
  lastSkip: string | undefined;
  /** The allow set as ranges, for the checks themselves. */
  readonly ranges: AllowRanges;

  constructor(
    allow: Iterable<string>,
    private readonly minPrefix: BanMinPrefix,
  ) {
    const nets: Network[] = [];
    for (const text of allow) {
      const r = readNetwork(String(text).trim());
      if (!r.ok) {
        this.skip('allowMalformed', `allow entry ${JSON.stringify(text)}: ${r.why}`);
        continue;
      }
      nets.push(r.net);
    }
    // Widest first, so a network inside one already kept is dropped (an nft interval set refuses overlaps).
    nets.sort((a, b) => a.len - b.len);
    this.allow = [];
    const kept: Network[] = [];
    const trie = new IpTrie();
    for (const n of nets) {
      const cidr = formatNetwork(n);
      if (trie.overlaps(cidr)) continue;
      trie.insert(cidr, Infinity);
      this.allow.push(cidr);
      kept.push(n);
    }
    this.ranges = new AllowRanges(kept);
  }

  private skip(kind: keyof SkipCounts, example: string): void {
    this.skipped[kind]++;
    this.lastSkip = example;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(example);
  }

  /** An IPv4 host of the bulk path (DesiredBuilder) found inside the allow set. */
  skipAllowedHost4(addr: number): void {
    this.skipped.neverBan++;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(`ban ${formatV4(addr)}/32: overlaps the allow set`);
  }

  /** The element to drop, or undefined (counted) when the entry must stay out of the kernel. */
  check(cidr: string, expiresAt: number, now: number): BanElement | undefined {
    this.lastSkip = undefined;
    // The bulk of a store: IPv4 hosts, written "a.b.c.d/32" (parseV4 is strict, so that text is
    // canonical). Read without building any object but the element: a reconcile reads a million.
    if (typeof cidr === 'string' && cidr.endsWith('/32')) {
      const a = parseV4(cidr, 0, cidr.length - 3);
      if (a >= 0) {
        if (!(expiresAt > now)) return undefined;
        if (this.ranges.overlapsV4(a, a)) {
          this.skip('neverBan', `ban ${cidr}: overlaps the allow set`);
          return undefined;
        }
        return { cidr, text: cidr.slice(0, -3), net: { v6: false, addr: a, len: 32 }, expiresAt };
      }
    }
    const r = readNetwork(String(cidr).trim());
    if (!r.ok || r.hostBitsSet) {
      this.skip('malformed', `ban ${JSON.stringify(cidr)}: ${r.ok ? `host bits set (the network is ${formatNetwork(r.net)})` : r.why}`);
      return undefined;
    }
    const net = r.net;
    const min = net.v6 ? this.minPrefix.v6 : this.minPrefix.v4;
    const canon = formatNetwork(net);
    if (net.len < min) {
      this.skip('tooWide', `ban ${canon}: wider than /${min} (store.bans.min_prefix)`);
      return undefined;
    }
    if (!(expiresAt > now)) return undefined;
    if (this.ranges.overlaps(net)) {
      this.skip('neverBan', `ban ${canon}: overlaps the allow set`);
      return undefined;
    }
    return { cidr: canon, text: isHost(net) ? formatNetworkAddress(net) : canon, net, expiresAt };
  }
}

export function isHost(net: Network): boolean {
  return net.len === (net.v6 ? 128 : 32);
}

/**
 * What a full reconcile wants, from bans given one by one or page by page:
 * the allow set first (constructor), then every ban, then finish().
 */
export class DesiredBuilder {
  private readonly filter: BanFilter;
  private readonly hosts4 = new Hosts4Collector();
  /** Everything but IPv4 hosts, by canonical CIDR: a ban listed twice is kept once, with the later expiry. */
  private readonly others = new Map<string, BanElement>();

  constructor(
    allow: Iterable<string>,
    minPrefix: BanMinPrefix,
    private readonly now: number,
    /** Leave out network bans inside a wider one (nft interval sets refuse overlaps). */
    private readonly disjointNets: boolean,
  ) {
    this.filter = new BanFilter(allow, minPrefix);
  }

  add(cidr: string, expiresAt: number): void {
    // The bulk: "a.b.c.d/32" as the store writes an IPv4 host (parseV4 is strict, so that text is
    // canonical). The allow set is checked in finish(), over the sorted addresses.
    if (typeof cidr === 'string' && cidr.endsWith('/32')) {
      const a = parseV4(cidr, 0, cidr.length - 3);
      if (a >= 0) {
        if (expiresAt > this.now) this.hosts4.push(a, expiresAt);
        return;
      }
    }
    const e = this.filter.check(cidr, expiresAt, this.now);
    if (!e) return;
    if (!e.net.v6 && e.net.len === 32) {
      this.hosts4.push(e.net.addr, e.expiresAt);
      return;
    }
    const had = this.others.get(e.cidr);
    if (!had || had.expiresAt < e.expiresAt) this.others.set(e.cidr, e);
  }

  /** One page of Store.scanBans. */
  readonly addPage = (cidrs: readonly string[], expiresAt: readonly number[]): void => {
    for (let i = 0; i < cidrs.length; i++) this.add(cidrs[i], expiresAt[i]);
  };

  finish(): DesiredState {
    const f = this.filter;
    const hosts4 = this.hosts4.finish({ lo: f.ranges.lo4, hi: f.ranges.hi4 }, (a) => f.skipAllowedHost4(a));
    let others = [...this.others.values()];
    let shadowedUntil: number | undefined;
    if (this.disjointNets) {
      const r = disjointNetworks(others);
      others = r.bans;
      shadowedUntil = r.shadowedUntil;
    }
    return { hosts4, others, allow: f.allow, skipped: f.skipped, examples: f.examples, shadowedUntil };
  }
}

export function desiredState(input: DesiredInput): DesiredState {
  const b = new DesiredBuilder(input.allow, input.minPrefix, input.now, input.disjointNets);
  for (const ban of input.bans) b.add(ban.cidr, ban.expiresAt);
  return b.finish();
}

/** How many elements a state drops. */
export function banCount(state: DesiredState): number {
  return state.hosts4.addr.length + state.others.length;
}

/** Every ban of a state as an element (IPv4 hosts first, by address): for the few readers that need objects (pf, `firewall show`). */
export function banElements(state: DesiredState): BanElement[] {
  const out: BanElement[] = [];
  const { addr, expiresAt } = state.hosts4;
  for (let i = 0; i < addr.length; i++) {
    const text = formatV4(addr[i]);
    out.push({ cidr: `${text}/32`, text, net: { v6: false, addr: addr[i], len: 32 }, expiresAt: expiresAt[i] });
  }
  for (const b of state.others) out.push(b);
  return out;
}

/**
 * Network bans made disjoint (hosts live in their own, non-interval set): a
 * network inside a wider ban that lasts at least as long is covered and left
 * out; one that outlasts it is left out until the wider ban ends
 * (`shadowedUntil`, when the reconciler runs again).
 */
export function disjointNetworks(bans: BanElement[]): { bans: BanElement[]; shadowedUntil?: number } {
  const nets = bans.filter((b) => !isHost(b.net)).sort((a, b) => a.net.len - b.net.len);
  if (nets.length === 0) return { bans };
  const kept = new IpTrie();
  const out = bans.filter((b) => isHost(b.net));
  let shadowedUntil: number | undefined;
  for (const b of nets) {
    if (kept.overlaps(b.cidr)) {
      // Widest first: what overlaps is a network that contains this one.
      const outer = kept.lookup(formatNetworkAddress(b.net));
      if (outer >= 0 && outer < b.expiresAt) shadowedUntil = Math.min(shadowedUntil ?? Infinity, outer);
      continue;
    }
    kept.insert(b.cidr, b.expiresAt);
    out.push(b);
  }
  return { bans: out, shadowedUntil };
}
