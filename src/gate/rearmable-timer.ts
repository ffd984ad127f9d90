// One timer per connection, re-armed for each wait (`refresh()` when the
// duration is the same) instead of a new setTimeout per read or reply: a
// timer object per wait was a measurable part of a message's cost.
// The timer outlives waits that ended in time; its callback must check
// whether anything is still waiting.

export class RearmableTimer {
  private timer: NodeJS.Timeout | undefined;
  private ms = -1;

  constructor(private readonly onFire: () => void) {}

  /** Fire `ms` from now (the previous deadline, if any, is dropped). */
  arm(ms: number): void {
    if (this.timer !== undefined && this.ms === ms) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onFire, ms);
    this.ms = ms;
  }

  /** The duration last armed (for messages), -1 before the first. */
  get duration(): number {
    return this.ms;
  }

  /** Stop it for good (until armed again): nothing fires, nothing holds the process. */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
