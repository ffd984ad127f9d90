// The never-ban set: this host's own addresses (every local interface, and
// loopback), my networks, admin networks and the entries of chosen ip lists
// (the whitelist). It always wins: ban() refuses any CIDR that overlaps it —
// contains one of its addresses or lies inside one of its networks — so
// neither "ban 10.0.0.0/8" nor "ban 127.0.0.1" can lock us out.

import { InvalidEntryError } from './errors.js';
import { IpTrie } from './ip-trie.js';
import { canonicalCidr } from './ip.js';
import type { MemoryIndex } from './memory-index.js';
import { LOOPBACK, type OwnAddress } from './own-addresses.js';

/** Always protected, whatever the configuration says. */
export const ALWAYS_NEVER_BAN = LOOPBACK;

export class NeverBan {
  /** One small trie per network, so a refusal can name the network it hit. */
  private readonly nets: Array<[why: string, IpTrie]> = [];
  /** This host's own addresses (and loopback), for lookups: see ownAddress(). */
  private readonly own = new IpTrie();

  constructor(
    cidrs: string[] = [],
    private readonly lists: string[] = [],
    private readonly index?: MemoryIndex,
    ownAddresses: readonly OwnAddress[] = [],
  ) {
    for (const c of ALWAYS_NEVER_BAN) this.add(c, `overlaps never-ban network ${c} (loopback)`, true);
    for (const a of ownAddresses) this.add(a.address, `overlaps this host's own address ${a.address} (${a.iface})`, true);
    for (const c of cidrs) {
      let canon: string;
      try {
        canon = canonicalCidr(c);
      } catch {
        throw new InvalidEntryError(`never-ban: not an IP or CIDR: ${JSON.stringify(c)}`);
      }
      this.add(canon, `overlaps never-ban network ${canon}`, false);
    }
  }

  private add(cidr: string, why: string, own: boolean): void {
    const t = new IpTrie();
    t.insert(cidr, Infinity);
    this.nets.push([why, t]);
    if (own) this.own.insert(cidr, Infinity);
  }

  /** Why `cidr` (canonical) must not be banned, or undefined when it may be. */
  why(cidr: string): string | undefined {
    return this.whyNetwork(cidr) ?? this.whyListed(cidr);
  }

  /** Why `cidr` overlaps a fixed never-ban network (loopback, own addresses, my_networks, store.never_ban). */
  whyNetwork(cidr: string): string | undefined {
    for (const [why, t] of this.nets) if (t.overlaps(cidr)) return why;
    return undefined;
  }

  /** Why `cidr` overlaps an entry of a never-ban list (the allow list). */
  whyListed(cidr: string): string | undefined {
    for (const list of this.lists) {
      if (this.index?.listOverlaps(list, cidr)) return `overlaps an entry of never-ban list "${list}"`;
    }
    return undefined;
  }

  /** Is the address `ip` this host's own (or loopback)? A ban never applies to it, however it arrived. */
  ownAddress(ip: string): boolean {
    return this.own.has(ip);
  }
}
