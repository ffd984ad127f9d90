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
