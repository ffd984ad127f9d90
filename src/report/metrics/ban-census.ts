// Bans in force by category, for the frontline_bans_active gauge. Counted
// from the store every interval in the background (a scrape never waits
// for a walk of every ban), with Store.countBans: a page at a time, never
// with OFFSET (SQLite counts each page in SQL). Categories come from the code
// and the log-watch scenarios in the config; past MAX_CATEGORIES the
// smallest count as `other`. On Redis a scan may pass a ban twice (the hash
// shrank meanwhile): that count is off by those bans until the next one.
// A count that takes long (Redis parses every ban: ~4.4 s of CPU at a
// million) spaces out the next: the census takes at most 1/COST_SHARE of
// the time of the worker that runs it, whatever the number of bans.

import type { Store } from '../../store/index.js';

const MAX_CATEGORIES = 50;
/** The next count waits at least this many times as long as the last one took. */
const COST_SHARE = 20;

/** How long to wait after a count that took `tookMs`: the interval, or longer after a slow count. */
export function nextCountDelay(intervalMs: number, tookMs: number): number {
  return Math.max(intervalMs, Math.ceil(tookMs * COST_SHARE));
}

export class BanCensus {
  private counts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Pick<Store, 'countBans'>,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Count now, then `intervalMs` after each count ends (longer after a slow one: nextCountDelay). */
  start(intervalMs: number): Promise<void> {
    this.stopped = false;
    const round = (): Promise<void> => {
      const began = performance.now();
      return this.refresh().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(() => void round(), nextCountDelay(intervalMs, performance.now() - began));
        this.timer.unref();
      });
    };
    return round();
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
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
