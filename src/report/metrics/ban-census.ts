// Bans in force by category, for the frontline_bans_active gauge. Counted
// from the store every interval in the background (a scrape never waits
// for a walk of every ban), page by page so a large ban table is not read
// at once. Categories come from the code and the log-watch scenarios in the
// config; past MAX_CATEGORIES the rest count as `other`.

import type { Store } from '../../store/index.js';

const PAGE = 5000;
const MAX_CATEGORIES = 50;

export class BanCensus {
  private counts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: Pick<Store, 'listBans'>,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Count now, then every `intervalMs`. */
  start(intervalMs: number): Promise<void> {
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
    return this.refresh();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** One count (a second call while one runs joins it). */
  refresh(): Promise<void> {
    this.running ??= this.count().finally(() => (this.running = undefined));
    return this.running;
  }

  private async count(): Promise<void> {
    const counts = new Map<string, number>();
    try {
      for (let offset = 0; ; offset += PAGE) {
        const page = await this.store.listBans({ limit: PAGE, offset });
        for (const b of page) {
          const key = counts.has(b.category) || counts.size < MAX_CATEGORIES ? b.category : 'other';
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        if (page.length < PAGE) break;
      }
      this.counts = counts;
    } catch (err) {
      this.onError(err);
    }
  }

  /** The last count, by category. */
  byCategory(): ReadonlyMap<string, number> {
    return this.counts;
  }
}
