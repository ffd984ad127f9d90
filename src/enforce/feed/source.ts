// What this host serves: its unexpired bans and the store lists named in
// enforce.feed.lists, as feed entries, with their changes recorded in the
// journal as the store reports them. Bans that came from a peer's feed
// (source "feed:…") are not served again: a feed carries what this host
// itself knows, so two peers pulling from each other cannot keep a ban alive
// between them after its origin lifted it.

import type { Clock } from '../../core/types.js';
import type { Ban, ListEntry, Store, StoreChange } from '../../store/index.js';
import type { FeedJournal } from './journal.js';
import type { FeedEntry } from './wire.js';

export const BANS_FEED = 'bans';
export const FEED_BAN_SOURCE = 'feed:';

function fromBan(b: Ban): FeedEntry {
  return { cidr: b.cidr, expiresAt: b.expiresAt, category: b.category, reason: b.reason };
}

function fromListEntry(e: ListEntry): FeedEntry {
  const out: FeedEntry = { cidr: e.entry };
  if (e.expiresAt !== undefined) out.expiresAt = e.expiresAt;
  return out;
}

export class StoreFeeds {
  private unsubscribe?: () => void;

  constructor(
    private readonly store: Store,
    private readonly lists: readonly string[],
    private readonly journal: FeedJournal,
    private readonly clock: Clock,
  ) {}

  names(): string[] {
    return [BANS_FEED, ...this.lists];
  }

  /** Record the store's changes from now on (call before the first snapshot is served). */
  start(): void {
    this.unsubscribe ??= this.store.onChange((c) => this.record(c));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private record(c: StoreChange): void {
    switch (c.kind) {
      case 'ban':
        if (!c.ban.source.startsWith(FEED_BAN_SOURCE)) this.journal.add(BANS_FEED, fromBan(c.ban));
        return;
      case 'unban':
        this.journal.del(BANS_FEED, c.cidr);
        return;
      case 'list-add':
        if (c.entry.kind === 'ip' && this.lists.includes(c.entry.list)) this.journal.add(c.entry.list, fromListEntry(c.entry));
        return;
      case 'list-del':
        if (this.lists.includes(c.list)) this.journal.del(c.list, c.entry);
        return;
    }
  }

  /** The whole feed as it is now (unexpired entries only). */
  async snapshot(feed: string): Promise<FeedEntry[]> {
    const now = this.clock.now();
    if (feed === BANS_FEED) {
      // By CIDR: a scan may pass a ban twice (Store.scanBanRecords).
      const out = new Map<string, FeedEntry>();
      await this.store.scanBanRecords((page) => {
        for (const b of page) if (b.expiresAt > now && !b.source.startsWith(FEED_BAN_SOURCE)) out.set(b.cidr, fromBan(b));
      });
      return [...out.values()];
    }
    if (!this.lists.includes(feed)) return [];
    const entries = await this.store.listShow(feed);
    return entries.filter((e) => e.kind === 'ip' && (e.expiresAt === undefined || e.expiresAt > now)).map(fromListEntry);
  }
}
