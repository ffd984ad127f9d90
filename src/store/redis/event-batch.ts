// The Redis decision log's batcher: events wait here up to EVENT_FLUSH_MS (or
// until EVENT_BATCH_ROWS have gathered) and go to the stream in one script
// call, instead of one call per decision — on a busy policy server the
// command per event cost more than the greylisting beside it. Decision events
// are records, not acknowledgements (as in the SQLite store, whose writer
// thread batches the same way): a crash loses at most the batch being filled.
// Every event of a batch gets the batch's promise.

import { batchPromise, type BatchPromise } from '../batch-promise.js';

/** Longest an event waits before its batch is sent (ms). */
export const REDIS_EVENT_FLUSH_MS = 200;
/** A batch is sent as soon as it holds this many events. */
export const REDIS_EVENT_BATCH_ROWS = 100;

/** Sends one batch: [ts, json, ts, json, …]. */
export type SendEvents = (pairs: Array<number | string>) => Promise<unknown>;

interface Batch extends BatchPromise {
  pairs: Array<number | string>;
}

export class RedisEventBatch {
  private batch?: Batch;
  private timer?: NodeJS.Timeout;
  /** Batches sent and not yet answered (sync() waits for them). */
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly send: SendEvents,
    private readonly flushMs = REDIS_EVENT_FLUSH_MS,
    private readonly maxRows = REDIS_EVENT_BATCH_ROWS,
  ) {}

  /** Queue one event (its stored JSON text); the promise settles when its batch is in Redis. */
  push(ts: number, json: string): Promise<void> {
    let b = this.batch;
    if (b === undefined) {
      b = this.batch = newBatch();
      this.timer = setTimeout(() => this.flush(), this.flushMs);
    }
    b.pairs.push(ts, json);
    const p = b.promise;
    if (b.pairs.length >= this.maxRows * 2) this.flush();
    return p;
  }

  /** Send the batch being filled now. */
  flush(): void {
    const b = this.batch;
    if (b === undefined) return;
    this.batch = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    let sent: Promise<unknown>;
    try {
      sent = this.send(b.pairs);
    } catch (e) {
      sent = Promise.reject(e);
    }
    const done = sent.then(b.resolve, b.reject);
    this.sending.add(done);
    void done.finally(() => this.sending.delete(done));
  }

  /** Resolves once every event queued before the call has been sent and answered (or failed). */
  async sync(): Promise<void> {
    this.flush();
    if (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }
}

function newBatch(): Batch {
  return { pairs: [], ...batchPromise() };
}
