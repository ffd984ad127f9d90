// The never-ban set: loopback, my networks, admin networks and the entries of
// chosen ip lists (the whitelist). It always wins: ban() refuses any CIDR
// that overlaps it — contains one of its addresses or lies inside one of its
// networks — so neither "ban 10.0.0.0/8" nor "ban 127.0.0.1" can lock us out.

import { InvalidEntryError } from './errors.js';
import { IpTrie } from './ip-trie.js';
import { canonicalCidr } from './ip.js';
import type { MemoryIndex } from './memory-index.js';

/** Always protected, whatever the configuration says. */
export const ALWAYS_NEVER_BAN = ['127.0.0.0/8', '::1/128'];

export class NeverBan {
  /** One small trie per network, so a refusal can name the network it hit. */
  private readonly nets: Array<[string, IpTrie]> = [];

  constructor(
    cidrs: string[] = [],
    private readonly lists: string[] = [],
    private readonly index?: MemoryIndex,
  ) {
    for (const c of [...ALWAYS_NEVER_BAN, ...cidrs]) {
      let canon: string;
      try {
        canon = canonicalCidr(c);
      } catch {
        throw new InvalidEntryError(`never-ban: not an IP or CIDR: ${JSON.stringify(c)}`);
      }
      const t = new IpTrie();
      t.insert(canon, Infinity);
      this.nets.push([canon, t]);
    }
  }

  /** Why `cidr` (canonical) must not be banned, or undefined when it may be. */
  why(cidr: string): string | undefined {
    for (const [text, t] of this.nets) if (t.overlaps(cidr)) return `overlaps never-ban network ${text}`;
    for (const list of this.lists) {
      if (this.index?.listOverlaps(list, cidr)) return `overlaps an entry of never-ban list "${list}"`;
    }
    return undefined;
  }
}
