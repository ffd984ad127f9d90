// What frontline wants in the firewall, from what the store says: the bans
// to drop and the allow set accepted before them. Bad input never reaches a
// transaction: a store entry that is not a strict IP or CIDR, one wider than
// store.bans.min_prefix, or one overlapping the allow set (allow lists,
// my_networks, store.never_ban, loopback, this host's addresses) is left out
// and counted — never-ban holds in the kernel too, whatever the store says
// (another host's Redis, a row written into the SQLite file by hand).

import { formatNetwork, formatNetworkAddress, readNetwork, type Network } from '../../core/cidr.js';
import { parseV4 } from '../../core/ip.js';
import { IpTrie } from '../../store/ip-trie.js';
import type { BanMinPrefix } from '../../store/types.js';
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
  private readonly allowTrie = new IpTrie();
  readonly skipped: SkipCounts = emptySkipCounts();
  readonly examples: string[] = [];
  /** Why the last check() left its entry out (undefined: it had merely expired). */
  lastSkip: string | undefined;

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
    for (const n of nets) {
      const cidr = formatNetwork(n);
      if (this.allowTrie.overlaps(cidr)) continue;
      this.allowTrie.insert(cidr, Infinity);
      this.allow.push(cidr);
    }
  }

  private skip(kind: keyof SkipCounts, example: string): void {
    this.skipped[kind]++;
    this.lastSkip = example;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(example);
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
        if (this.allowTrie.lookupV4(a) !== -1) {
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
    if (this.allowTrie.overlaps(canon)) {
      this.skip('neverBan', `ban ${canon}: overlaps the allow set`);
      return undefined;
    }
    return { cidr: canon, text: isHost(net) ? formatNetworkAddress(net) : canon, net, expiresAt };
  }
}

export function isHost(net: Network): boolean {
  return net.len === (net.v6 ? 128 : 32);
}

export function desiredState(input: DesiredInput): DesiredState {
  const filter = new BanFilter(input.allow, input.minPrefix);
  // A ban listed twice (paging while bans change) is kept once, with the later expiry. IPv4 hosts,
  // the bulk, are looked up by number in an IpTrie (value: their index here), not by text in a Map.
  let bans: BanElement[] = [];
  const hosts4 = new IpTrie();
  const others = new Map<string, number>();
  for (const b of input.bans) {
    const e = filter.check(b.cidr, b.expiresAt, input.now);
    if (!e) continue;
    const i = !e.net.v6 && e.net.len === 32 ? hosts4.lookupV4(e.net.addr) : (others.get(e.cidr) ?? -1);
    if (i >= 0) {
      if (bans[i].expiresAt < e.expiresAt) bans[i] = e;
      continue;
    }
    if (!e.net.v6 && e.net.len === 32) hosts4.insertNetwork(e.net, bans.length);
    else others.set(e.cidr, bans.length);
    bans.push(e);
  }
  let shadowedUntil: number | undefined;
  if (input.disjointNets) {
    const r = disjointNetworks(bans);
    bans = r.bans;
    shadowedUntil = r.shadowedUntil;
  }
  return { bans, allow: filter.allow, skipped: filter.skipped, examples: filter.examples, shadowedUntil };
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
