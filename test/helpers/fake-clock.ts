// A clock that moves only when a test says so.

import type { Clock } from '../../src/core/types.js';

export class ManualClock implements Clock {
  /** Starts at real time (rounded to the second) unless told otherwise: Redis TTLs count in real time. */
  constructor(public ms = Math.floor(Date.now() / 1000) * 1000) {}

  now(): number {
    return this.ms;
  }

  advance(seconds: number): number {
    this.ms += seconds * 1000;
    return this.ms;
  }
}

/**
 * A clock with timers (Clock.after) that fire only as the test moves time:
 * `advance` walks through the due timers in order, letting the promises each
 * one starts settle before the next fires.
 */
export class TimerClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  constructor(public ms = Date.UTC(2026, 11, 7, 12, 0, 0)) {}

  now(): number {
    return this.ms;
  }

  after(ms: number, fn: () => void): () => void {
    const t = { at: this.ms + ms, fn, live: true };
    this.timers.push(t);
    return () => {
      t.live = false;
    };
  }

  /** Live timers. */
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }

  async advance(ms: number): Promise<void> {
    const target = this.ms + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => t.live && t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.ms = Math.max(this.ms, due.at);
      due.live = false;
      due.fn();
    }
    this.timers = this.timers.filter((t) => t.live);
    this.ms = target;
  }

  /** Advance to an absolute time. */
  advanceTo(ms: number): Promise<void> {
    return this.advance(Math.max(0, ms - this.ms));
  }
}

/** Let promise chains started by a timer run (a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
