// Decisions in flight, cut off at their deadline: one timer watches all of
// them (a timer and a Promise.race per decision was a measurable part of a
// warm-cache answer). The timer runs only while something is in flight; a
// decision is cut off between `ms` and `ms` + a tenth of it late.
//
// The decisions in flight are a doubly linked list whose nodes are unlinked
// (their links cleared) when they settle, not a Set: V8 leaves an obsolete
// hash table pointing at the table that replaced it, and a long-lived Set
// that gains and loses an entry per decision is rehashed every few dozen
// decisions. Once one obsolete table had been promoted to the old
// generation, each successor — and every decision in it — survived every
// young-generation collection after it, down the chain, until the next
// full collection (docs/performance.md, "What survives a scavenge").

interface Waiter {
  deadline: number;
  ms: number;
  reject: (e: Error) => void;
  prev: Waiter | undefined;
  next: Waiter | undefined;
}

let head: Waiter | undefined;
let watchTimer: NodeJS.Timeout | undefined;
let watchPeriod = Infinity;

function unlink(w: Waiter): void {
  if (w.prev) w.prev.next = w.next;
  else if (head === w) head = w.next;
  if (w.next) w.next.prev = w.prev;
  w.prev = w.next = undefined;
}

function watch(): void {
  const now = performance.now();
  for (let w = head; w !== undefined; ) {
    const next = w.next;
    if (now >= w.deadline) {
      unlink(w);
      w.reject(new Error(`decision took longer than ${w.ms} ms`));
    }
    w = next;
  }
  if (head === undefined) {
    clearInterval(watchTimer);
    watchTimer = undefined;
    watchPeriod = Infinity;
  }
}

/** `p`, or a rejection once `ms` have passed without it settling. */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const w: Waiter = { deadline: performance.now() + ms, ms, reject, prev: undefined, next: head };
    if (head) head.prev = w;
    head = w;
    const period = Math.min(1000, Math.max(5, ms / 10));
    if (period < watchPeriod) {
      clearInterval(watchTimer);
      watchPeriod = period;
      watchTimer = setInterval(watch, period);
      watchTimer.unref();
    }
    p.then(
      (v) => {
        unlink(w);
        resolve(v);
      },
      (e: unknown) => {
        unlink(w);
        reject(e);
      },
    );
  });
}

/** Decisions being watched (for tests). */
export function inFlightCount(): number {
  let n = 0;
  for (let w = head; w !== undefined; w = w.next) n++;
  return n;
}
