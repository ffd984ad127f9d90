// A counting semaphore: at most `max` tasks run at once, the rest wait in
// order. Used to bound parallel DNS queries of a walk, so 150 domains do not
// put 3,000 queries on the wire at the same moment.

export class Limiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {
    if (!(Number.isInteger(max) && max > 0)) throw new Error(`concurrency must be a whole number > 0, got ${max}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter; `running` stays the same.
      if (next) next();
      else this.running--;
    }
  }
}
