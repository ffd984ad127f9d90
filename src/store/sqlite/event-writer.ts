// The decision log's main-thread side. logEvent only packs the event into the
// batch being filled (no promise, no JSON, no SQL per event: every event of a
// batch shares one promise); the batch goes to the writer thread
// (event-thread.ts) every EVENT_FLUSH_MS or EVENT_BATCH_ROWS events, and its
// promise settles when the thread has committed it (rejects on error).
//
// The thread is started with the first batch, so a store that never logs (the
// CLI) never starts one. Without a thread — an in-memory store, a thread that
// could not start or died — batches are written here, on the event loop, as
// before the thread existed: logged once, never fatal. Batches the thread had
// not acknowledged when it died are written here too (a batch committed in
// the instant between its commit and its acknowledgement is then written
// twice: a record, not an acknowledgement).

import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { batchPromise, type BatchPromise } from '../batch-promise.js';
import { StoreUnavailableError } from '../errors.js';
import type { LoggedDecision, PruneOptions, StoreLogger } from '../types.js';
import type { EventThreadData } from './event-thread.js';
import { EventSink, decodeBatch, encodeBatch, newPackedBatch, packEvent, packedOf, type EventsFileOptions, type FillingBatch, type WriteResult } from './events-file.js';
import { fromThreadError, translate, type ThreadError } from './faults.js';

/**
 * Decision events are records, not acknowledgements: they are posted to the
 * writer thread in batches, at most this long after they were logged (a
 * SIGKILL loses at most this much of the log, plus what the thread had not
 * committed yet), or as soon as EVENT_BATCH_ROWS are waiting.
 */
export const EVENT_FLUSH_MS = 200;
/**
 * Posting costs the event loop ~2.5 µs per event (structured clone of its
 * evidence), all at once: 100 events block it ~0.25 ms, 500 over a
 * millisecond. The thread takes batches that queued up together anyway.
 */
export const EVENT_BATCH_ROWS = 100;
/**
 * The thread wakes by itself every COMMIT_EVERY_MS (event-thread.ts); with
 * this many events posted and not yet committed it is woken at once, so that
 * a burst commits in pieces of about this size.
 */
export const EVENT_RING_BACKLOG = 1_000;
/** Events posted and not yet committed, at most; beyond, logEvent rejects at once rather than fill the memory. */
export const EVENT_BACKLOG_MAX = 200_000;
/** close() waits this long for the thread to commit what it holds; then it is stopped and the rest written here. */
const CLOSE_WAIT_MS = 30_000;
const SKIPPED_LOG_INTERVAL_MS = 10_000;

/** A batch crosses as its PackedBatch encoded (events-file.ts encodeBatch): see Batch.bytes. */
export type ThreadRequest = { t: 'batch'; id: number; bytes: Uint8Array } | { t: 'prune'; id: number; now: number; opts: PruneOptions } | { t: 'close' };

export type ThreadReply =
  | { t: 'ready'; checkpointing?: boolean }
  | { t: 'fatal'; error: ThreadError }
  | { t: 'done'; ids: number[]; skipped?: number; problem?: string; error?: ThreadError }
  | { t: 'pruned'; id: number; n?: number; error?: ThreadError }
  | { t: 'closed' };

/** idle: no thread yet; thread: batches go to the thread; in-process: written on this thread. */
export type WriterMode = 'idle' | 'thread' | 'in-process';

interface Batch extends BatchPromise {
  id: number;
  /** While it is being filled; undefined once posted. */
  packed?: FillingBatch;
  /**
   * Once posted: the batch serialised, kept until the thread acknowledges
   * it (to be written here if the thread dies first). Bytes off the JS
   * heap, not the rows: the thread commits every 100 ms, and at nice 19 on
   * a busy machine it can be seconds behind; rows kept that long were
   * copied by every young-generation collection meanwhile, with the whole
   * request texts their sliced strings hold (a worker mid-run: 23 MB of
   * evidence strings, 14 MB of requests).
   */
  bytes?: Buffer;
  events: number;
}

interface PruneJob {
  id: number;
  now: number;
  opts: PruneOptions;
  promise: Promise<number>;
  resolve: (n: number) => void;
  reject: (e: unknown) => void;
}

/** Wake the writer thread that sleeps on this bell (EventThreadData.wake). */
function ringThread(bell: Int32Array): void {
  Atomics.store(bell, 0, 1);
  Atomics.notify(bell, 0);
}

function newBatch(id: number): Batch {
  return { id, packed: newPackedBatch(), events: 0, ...batchPromise() };
}

// The thread runs from dist/ when built, and from source under tsx.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const THREAD_URL = new URL(`./event-thread${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

export function startEventThread(data: EventThreadData): Worker {
  if (!FROM_SOURCE) return new Worker(THREAD_URL, { workerData: data });
  // Node 20 does not carry tsx's module hooks into worker threads: register them there first.
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(THREAD_URL.href)}); })`, {
    eval: true,
    workerData: data,
  });
}

export interface EventWriterOptions {
  /** The events file. */
  path: string;
  /** This thread's connection to it: writes when there is no thread. */
  db: Database.Database;
  file: EventsFileOptions;
  /** Nice value for the thread (EventThreadData.nice); absent = the process's. */
  nice?: number;
  logger: StoreLogger;
  /** Never start a thread (in-memory stores: a thread cannot share the database). */
  inProcess: boolean;
  /** How to start the thread (tests). */
  startThread?: (data: EventThreadData) => Worker;
  /** The store file whose WAL the thread checkpoints (see EventThreadData), and how often. */
  checkpoint?: { path: string; everyMs: number };
  /** Told when the thread takes over checkpointing (true) and when it no longer does (false: it died). */
  onCheckpointer?: (active: boolean) => void;
}

export class EventWriter {
  private mode: WriterMode;
  private worker?: Worker;
  /** Whether the thread currently keeps the process alive (it does while it holds work). */
  private held = false;
  /** The batch being filled; its promise is every one of its events'. */
  private batch?: Batch;
  private timer?: NodeJS.Timeout;
  /** Batches posted to the thread and not yet acknowledged, in order. */
  private readonly posted = new Map<number, Batch>();
  private postedEvents = 0;
  private readonly prunes = new Map<number, PruneJob>();
  private nextId = 1;
  private stopping = false;
  private lastSkippedLog = -Infinity;
  /** The thread checkpoints the store file (it said so when it came up). */
  private checkpointing = false;
  private readonly sink: EventSink;
  /** The thread's bell (EventThreadData.wake). */
  private readonly bell = new Int32Array(new SharedArrayBuffer(4));
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.post();
  };

  constructor(private readonly opts: EventWriterOptions) {
    this.sink = new EventSink(opts.db);
    this.mode = opts.inProcess ? 'in-process' : 'idle';
  }

  /** Where events are written now. */
  get state(): WriterMode {
    return this.mode;
  }

  /** The writer thread, when one runs (tests). */
  get thread(): Worker | undefined {
    return this.worker;
  }

  /** Queue an event (checked by the caller); the promise is its batch's. The event's rcpts and evidence arrays are read when the batch is posted. */
  push(e: LoggedDecision): Promise<void> {
    let b = this.batch;
    if (b === undefined) {
      if (this.postedEvents >= EVENT_BACKLOG_MAX) {
        return Promise.reject(new StoreUnavailableError(`sqlite: the decision log writer is behind (${this.postedEvents} events not yet written)`));
      }
      b = this.batch = newBatch(this.nextId++);
      this.timer = setTimeout(this.onTimer, EVENT_FLUSH_MS);
    }
    packEvent(b.packed!, e);
    if (++b.events >= EVENT_BATCH_ROWS) this.post();
    return b.promise;
  }

  /** Send the batch being filled to the thread now (or write it, without a thread). */
  post(): void {
    const b = this.batch;
    if (b === undefined) return;
    this.batch = undefined;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.mode === 'idle') this.start();
    const w = this.worker;
    if (this.mode !== 'thread' || w === undefined) {
      this.writeHere([b]);
      return;
    }
    try {
      b.bytes = encodeBatch(packedOf(b.packed!));
    } catch (e) {
      b.reject(e);
      return;
    }
    b.packed = undefined;
    this.posted.set(b.id, b);
    this.postedEvents += b.events;
    if (this.postedEvents >= EVENT_RING_BACKLOG) this.ring();
    try {
      w.postMessage({ t: 'batch', id: b.id, bytes: b.bytes } satisfies ThreadRequest);
    } catch (e) {
      this.posted.delete(b.id);
      this.postedEvents -= b.events;
      b.reject(e);
    }
    this.hold();
  }

  /** Resolves once every event pushed before the call is committed (or has failed). */
  async sync(): Promise<void> {
    this.post();
    this.ring();
    const waits: Array<Promise<unknown>> = [];
    for (const b of this.posted.values()) waits.push(b.promise);
    for (const p of this.prunes.values()) waits.push(p.promise);
    if (waits.length > 0) await Promise.allSettled(waits);
  }

  /** Retention, after every event pushed before the call: in the thread when there is one (a write: it waits for the events file's lock there). */
  prune(now: number, opts: PruneOptions): Promise<number> {
    this.post();
    const w = this.worker;
    if (this.mode === 'thread' && w !== undefined) {
      const job = { id: this.nextId++, now, opts: { maxAgeSeconds: opts.maxAgeSeconds, maxRows: opts.maxRows } } as PruneJob;
      job.promise = new Promise<number>((resolve, reject) => {
        job.resolve = resolve;
        job.reject = reject;
      });
      this.prunes.set(job.id, job);
      w.postMessage({ t: 'prune', id: job.id, now, opts: job.opts } satisfies ThreadRequest);
      this.ring();
      this.hold();
      return job.promise;
    }
    try {
      return Promise.resolve(this.sink.prune(now, opts));
    } catch (e) {
      return Promise.reject(translate(e));
    }
  }

  /** Commit everything queued and stop the thread. */
  async close(): Promise<void> {
    this.stopping = true;
    this.post();
    const w = this.worker;
    if (w === undefined) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    this.hold();
    w.postMessage({ t: 'close' } satisfies ThreadRequest);
    this.ring();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_WAIT_MS)));
    if ((await Promise.race([exited, late])) === 'late') {
      this.opts.logger.error({ file: this.opts.path, waitedMs: CLOSE_WAIT_MS }, 'decision log writer thread did not finish; stopping it');
      await w.terminate();
      await exited;
    }
    clearTimeout(timer);
  }

  // ---- the thread

  private start(): void {
    let w: Worker;
    try {
      const cp = this.opts.checkpoint;
      w = (this.opts.startThread ?? startEventThread)({
        path: this.opts.path,
        ...this.opts.file,
        ...(cp ? { checkpointPath: cp.path, checkpointMs: cp.everyMs } : {}),
        wake: this.bell.buffer as SharedArrayBuffer,
        ...(this.opts.nice !== undefined ? { nice: this.opts.nice } : {}),
      });
    } catch (e) {
      this.mode = 'in-process';
      this.opts.logger.error({ err: e instanceof Error ? e.message : String(e), file: this.opts.path }, 'decision log writer thread failed; writing events in-process');
      return;
    }
    this.worker = w;
    this.mode = 'thread';
    this.held = true; // a new Worker keeps the process alive until unref()
    w.on('message', (m: ThreadReply) => this.onReply(w, m));
    w.on('error', (e: Error) => this.lost(w, e.message));
    w.on('exit', (code: number) => this.lost(w, `exited with code ${code}`));
  }

  /** Wake the thread now (it would commit within COMMIT_EVERY_MS anyway). */
  private ring(): void {
    if (this.mode === 'thread') ringThread(this.bell);
  }

  /** Keep the process alive while the thread holds work; let it exit otherwise (an idle thread is no reason to stay). */
  private hold(): void {
    const w = this.worker;
    if (w === undefined) return;
    const busy = this.posted.size > 0 || this.prunes.size > 0 || this.stopping;
    if (busy === this.held) return;
    this.held = busy;
    if (busy) w.ref();
    else w.unref();
  }

  private onReply(w: Worker, m: ThreadReply): void {
    if (w !== this.worker) return;
    switch (m.t) {
      case 'done': {
        const err = m.error && fromThreadError(m.error);
        for (const id of m.ids) {
          const b = this.posted.get(id);
          if (b === undefined) continue;
          this.posted.delete(id);
          this.postedEvents -= b.events;
          if (err) b.reject(err);
          else b.resolve();
        }
        if (m.skipped) this.skipped(m.skipped, m.problem);
        break;
      }
      case 'pruned': {
        const job = this.prunes.get(m.id);
        if (job === undefined) break;
        this.prunes.delete(m.id);
        if (m.error) job.reject(fromThreadError(m.error));
        else job.resolve(m.n ?? 0);
        break;
      }
      case 'fatal':
        this.lost(w, `cannot open ${this.opts.path}: ${m.error.code ? `${m.error.code}: ` : ''}${m.error.message}`);
        return;
      case 'ready':
        if (m.checkpointing) {
          this.checkpointing = true;
          this.opts.onCheckpointer?.(true);
        }
        break;
      case 'closed':
        break;
    }
    this.hold();
  }

  /** The thread is gone (or never came up): from now on, write here — including what it had not acknowledged. Logged once. */
  private lost(w: Worker, why: string): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    this.mode = 'in-process';
    if (this.checkpointing) {
      this.checkpointing = false;
      this.opts.onCheckpointer?.(false);
    }
    const unfinished = [...this.posted.values()];
    const prunes = [...this.prunes.values()];
    this.posted.clear();
    this.prunes.clear();
    this.postedEvents = 0;
    if (!this.stopping || unfinished.length > 0 || prunes.length > 0) {
      this.opts.logger.error({ err: why, file: this.opts.path, unacknowledgedBatches: unfinished.length }, 'decision log writer thread failed; writing events in-process');
    }
    void w.terminate();
    if (unfinished.length > 0) this.writeHere(unfinished);
    for (const job of prunes) {
      try {
        job.resolve(this.sink.prune(job.now, job.opts));
      } catch (e) {
        job.reject(translate(e));
      }
    }
  }

  // ---- without a thread

  private writeHere(batches: Batch[]): void {
    let r: WriteResult;
    try {
      r = this.sink.write(batches.map((b) => (b.bytes ? decodeBatch(b.bytes) : packedOf(b.packed!))));
    } catch (e) {
      const err = translate(e);
      for (const b of batches) b.reject(err);
      return;
    }
    for (const b of batches) b.resolve();
    if (r.skipped) this.skipped(r.skipped, r.problem);
  }

  private skipped(n: number, problem: string | undefined): void {
    const now = Date.now();
    if (now - this.lastSkippedLog < SKIPPED_LOG_INTERVAL_MS) return;
    this.lastSkippedLog = now;
    this.opts.logger.warn({ skipped: n, problem }, 'decision log: malformed events not stored');
  }
}
