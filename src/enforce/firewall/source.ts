// What the firewall is built from, read from the store: every unexpired ban
// (paged, so a million bans are never one query) and the entries of the
// allow lists, plus the allow entries the configuration gives (loopback,
// my_networks, store.never_ban, the config's allow list, this host's own
// addresses) — `frontline serve` passes those in.

import type { BanMinPrefix, Store } from '../../store/types.js';

export interface FirewallSourceInput {
  bans: Array<{ cidr: string; expiresAt: number }>;
  allow: string[];
}

export interface FirewallSource {
  readonly minPrefix: BanMinPrefix;
  /** Store ip lists whose entries go into the allow set (and never into a drop set). */
  readonly allowLists: readonly string[];
  load(): Promise<FirewallSourceInput>;
}

const PAGE = 100_000;

export function storeSource(store: Store, opts: { staticAllow: readonly string[]; allowLists: readonly string[]; minPrefix: BanMinPrefix }): FirewallSource {
  return {
    minPrefix: opts.minPrefix,
    allowLists: opts.allowLists,
    async load() {
      const bans: Array<{ cidr: string; expiresAt: number }> = [];
      for (let offset = 0; ; offset += PAGE) {
        const page = await store.listBans({ limit: PAGE, offset });
        for (const b of page) bans.push({ cidr: b.cidr, expiresAt: b.expiresAt });
        if (page.length < PAGE) break;
      }
      const allow = [...opts.staticAllow];
      for (const list of opts.allowLists) {
        for (const e of await store.listShow(list)) if (e.kind === 'ip') allow.push(e.entry);
      }
      return { bans, allow };
    },
  };
}
