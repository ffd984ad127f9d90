// A small pool of worker threads running content rules with a deadline per
// message. A job that overruns its deadline gets its worker terminated (the
// only way to stop a regular expression mid-match) and a fresh worker takes
// the slot; the job's caller gets `timeout`, which the check reports as
// temperror and the policy turns into a 4xx.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ContentLimits, ContentMatchResult, ContentRuleSpec } from './content-match.js';

export interface WorkerJob {
  id: number;
  message: Uint8Array;
  rules: ContentRuleSpec[];
  limits: ContentLimits;
}

export type WorkerReply = { id: number; ok: true; result: ContentMatchResult } | { id: number; ok: false; error: string } | { ready: true };

export type PoolOutcome = { kind: 'done'; result: ContentMatchResult } | { kind: 'timeout'; ms: number } | { kind: 'error'; error: string };

export interface ContentPoolOptions {
  /** Worker threads (default: cores − 1, between 1 and 4). */
  size?: number;
  /** Jobs waiting for a worker at most; beyond, jobs fail at once (default 1000). */
  maxQueue?: number;
}

interface Pending {
  job: WorkerJob;
  timeoutMs: number;
  settle: (o: PoolOutcome) => void;
}

interface Slot {
  worker?: Worker;
  /** The worker has loaded its modules: deadlines start only once it can work. */
  ready?: boolean;
  current?: Pending;
  timer?: NodeJS.Timeout;
}

// The worker runs from dist/ when built, and from source under tsx.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(`./content-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

function startWorker(): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL);
  // Node 20 does not carry tsx's module hooks into worker threads: register them there first.
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`, { eval: true });
}

export class ContentWorkerPool {
  private readonly slots: Slot[];
  private readonly queue: Pending[] = [];
  private readonly maxQueue: number;
  private nextId = 1;
  private closed = false;
  /** Workers terminated for overrunning a deadline (for tests and metrics). */
  terminated = 0;

  constructor(opts: ContentPoolOptions = {}) {
    const size = opts.size ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    this.slots = Array.from({ length: Math.max(1, size) }, () => ({}));
    this.maxQueue = opts.maxQueue ?? 1000;
  }

  /** Run one message through the rules, within `timeoutMs` of a worker starting on it. */
  run(message: Uint8Array, rules: ContentRuleSpec[], limits: ContentLimits, timeoutMs: number): Promise<PoolOutcome> {
    if (this.closed) return Promise.resolve({ kind: 'error', error: 'content worker pool is closed' });
    if (this.queue.length >= this.maxQueue) return Promise.resolve({ kind: 'error', error: `content rule queue full (${this.maxQueue} messages waiting)` });
    // An exact copy, transferred: the worker gets these bytes and no more of a larger backing buffer.
    const copy = new Uint8Array(message);
    return new Promise((settle) => {
      this.queue.push({ job: { id: this.nextId++, message: copy, rules, limits }, timeoutMs, settle });
      this.dispatch();
    });
  }

  /** Start every worker now rather than on the first message. */
  warm(): void {
    for (const slot of this.slots) if (!slot.worker && !this.closed) this.spawn(slot);
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.current || this.queue.length === 0) continue;
      if (!slot.worker) this.spawn(slot);
      if (!slot.ready) continue; // dispatched again when it says it is ready
      const worker = slot.worker as Worker;
      const pending = this.queue.shift() as Pending;
      slot.current = pending;
      const started = performance.now();
      slot.timer = setTimeout(() => {
        this.finish(slot, { kind: 'timeout', ms: Math.round(performance.now() - started) });
        this.recycle(slot);
      }, pending.timeoutMs);
      worker.postMessage(pending.job, [pending.job.message.buffer as ArrayBuffer]);
    }
  }

  private spawn(slot: Slot): void {
    const worker = startWorker();
    worker.unref(); // an idle pool never keeps the process alive
    slot.worker = worker;
    slot.ready = false;
    worker.on('message', (reply: WorkerReply) => {
      if (slot.worker !== worker) return;
      if ('ready' in reply) {
        slot.ready = true;
      } else if (slot.current?.job.id === reply.id) {
        this.finish(slot, reply.ok ? { kind: 'done', result: reply.result } : { kind: 'error', error: reply.error });
      }
      this.dispatch();
    });
    const lost = (why: string): void => {
      if (slot.worker !== worker) return;
      const wasReady = slot.ready;
      slot.worker = undefined;
      slot.ready = false;
      this.finish(slot, { kind: 'error', error: why });
      // A worker that cannot even start would fail every job: fail the queue rather than respawn in a loop.
      if (!wasReady) for (const p of this.queue.splice(0)) p.settle({ kind: 'error', error: why });
      else this.dispatch();
    };
    worker.on('error', (e) => lost(`content worker failed: ${e.message}`));
    worker.on('exit', (code) => lost(`content worker exited (code ${code})`));
  }

  private finish(slot: Slot, outcome: PoolOutcome): void {
    clearTimeout(slot.timer);
    const current = slot.current;
    slot.current = undefined;
    slot.timer = undefined;
    current?.settle(outcome);
  }

  /** Replace a worker stuck in a match. */
  private recycle(slot: Slot): void {
    const worker = slot.worker;
    slot.worker = undefined;
    slot.ready = false;
    if (worker) {
      this.terminated++;
      void worker.terminate();
    }
    this.dispatch();
  }

  /** Stop every worker; queued and running jobs end with an error. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.settle({ kind: 'error', error: 'content worker pool closed' });
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        slot.worker = undefined;
        this.finish(slot, { kind: 'error', error: 'content worker pool closed' });
        if (worker) await worker.terminate();
      }),
    );
  }
}
