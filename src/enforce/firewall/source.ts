// What the firewall is built from, read from the store: every unexpired ban
// (Store.scanBans: CIDR and expiry only, page by page, so a million bans are
// never one query nor a million Ban objects) and the entries of the allow
// lists, plus the allow entries the configuration gives (loopback,
// my_networks, store.never_ban, the config's allow list, this host's own
// addresses) — `frontline serve` passes those in.

import type { BanMinPrefix, BanPageReader, Store } from '../../store/types.js';
import { DesiredBuilder } from './desired.js';
import type { DesiredState } from './types.js';

export interface FirewallSource {
  readonly minPrefix: BanMinPrefix;
  /** Store ip lists whose entries go into the allow set (and never into a drop set). */
  readonly allowLists: readonly string[];
  /** Allow and never-ban entries (IPs or CIDRs). */
  allow(): Promise<string[]>;
  /** Every unexpired ban, page by page. */
  bans(onPage: BanPageReader): Promise<unknown>;
}

export function storeSource(store: Store, opts: { staticAllow: readonly string[]; allowLists: readonly string[]; minPrefix: BanMinPrefix }): FirewallSource {
  return {
    minPrefix: opts.minPrefix,
    allowLists: opts.allowLists,
    async allow() {
      const allow = [...opts.staticAllow];
      for (const list of opts.allowLists) {
        for (const e of await store.listShow(list)) if (e.kind === 'ip') allow.push(e.entry);
      }
      return allow;
    },
    bans: (onPage) => store.scanBans(onPage),
  };
}

/** A source of fixed bans and allow entries (tests, the bench). */
export function fixedSource(bans: ReadonlyArray<{ cidr: string; expiresAt: number }>, allow: readonly string[], minPrefix: BanMinPrefix, allowLists: readonly string[] = []): FirewallSource {
  return {
    minPrefix,
    allowLists,
    allow: async () => [...allow],
    async bans(onPage) {
      onPage(
        bans.map((b) => b.cidr),
        bans.map((b) => b.expiresAt),
      );
    },
  };
}

/** What a full reconcile wants, read from `source`: the allow set first, then the bans streamed through a DesiredBuilder. */
export async function readDesired(source: FirewallSource, now: number, disjointNets: boolean): Promise<DesiredState> {
  const builder = new DesiredBuilder(await source.allow(), source.minPrefix, now, disjointNets);
  await source.bans(builder.addPage);
  return builder.finish();
}
