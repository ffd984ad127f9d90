// Bans in force by category, for the frontline_bans_active gauge. Counted
// from the store every interval in the background (a scrape never waits
// for a walk of every ban), with Store.countBans: a page at a time, never
// with OFFSET (SQLite counts each page in SQL). Categories come from the code
// and the log-watch scenarios in the config; past MAX_CATEGORIES the
// smallest count as `other`. On Redis a scan may pass a ban twice (the hash
// shrank meanwhile): that count is off by those bans until the next one.

import type { Store } from '../../store/index.js';

const MAX_CATEGORIES = 50;

export class BanCensus {
  private counts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: Pick<Store, 'countBans'>,
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
    try {
      this.counts = largest(await this.store.countBans(), MAX_CATEGORIES);
    } catch (err) {
      this.onError(err);
    }
  }

  /** The last count, by category. */
  byCategory(): ReadonlyMap<string, number> {
    return this.counts;
  }
}

/** The `max` largest counts (ties by name), the rest summed as `other`. */
function largest(counts: Map<string, number>, max: number): Map<string, number> {
  if (counts.size <= max) return counts;
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out = new Map(sorted.slice(0, max));
  let rest = 0;
  for (const [, n] of sorted.slice(max)) rest += n;
  out.set('other', (out.get('other') ?? 0) + rest);
  return out;
}
