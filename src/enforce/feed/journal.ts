// The recent changes of each served feed, so a peer that pulls often gets
// only what changed since its cursor. A cursor is "<epoch>.<seq>": the epoch
// changes at every start, and a cursor from another epoch, or older than the
// oldest change kept, gets a full copy instead — never a silent gap.

import { randomBytes } from 'node:crypto';
import type { FeedEntry } from './wire.js';

export type FeedChange = { seq: number; op: 'add'; entry: FeedEntry } | { seq: number; op: 'del'; cidr: string };

export class FeedJournal {
  readonly epoch: string;
  private seq = 0;
  private readonly changes = new Map<string, FeedChange[]>();
  /** Per feed: the newest seq dropped from its changes (a cursor before it cannot be served). */
  private readonly dropped = new Map<string, number>();

  /** `keep`: changes kept per feed; a peer further behind gets a full copy. */
  constructor(
    private readonly keep = 100_000,
    epoch = randomBytes(6).toString('hex'),
  ) {
    this.epoch = epoch;
  }

  cursor(): string {
    return `${this.epoch}.${this.seq}`;
  }

  add(feed: string, entry: FeedEntry): void {
    this.push(feed, { seq: ++this.seq, op: 'add', entry });
  }

  del(feed: string, cidr: string): void {
    this.push(feed, { seq: ++this.seq, op: 'del', cidr });
  }

  private push(feed: string, c: FeedChange): void {
    let list = this.changes.get(feed);
    if (!list) this.changes.set(feed, (list = []));
    list.push(c);
    // Trim in blocks, so a busy feed does not shift its array at every change.
    if (list.length > this.keep + 1000) {
      const gone = list.splice(0, list.length - this.keep);
      this.dropped.set(feed, gone[gone.length - 1].seq);
    }
  }

  /**
   * The changes of `feed` after `cursor`, oldest first, or undefined when the
   * cursor cannot be served incrementally (another epoch, malformed, too old).
   */
  since(feed: string, cursor: string): FeedChange[] | undefined {
    const m = /^([0-9a-f]{1,32})\.(\d{1,15})$/.exec(cursor);
    if (!m || m[1] !== this.epoch) return undefined;
    const after = Number(m[2]);
    if (after > this.seq) return undefined;
    if (after < (this.dropped.get(feed) ?? 0)) return undefined;
    const list = this.changes.get(feed) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return list.slice(lo);
  }
}
