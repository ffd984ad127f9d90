// The decision log's writer thread (started by event-writer.ts): its own
// connection to the events file, so batch commits — cleaning, JSON, index
// updates, the fsync-free WAL append — cost the event loop nothing. Batches
// that queued up while it was busy are taken together (receiveMessageOnPort)
// and committed in one transaction; each batch is acknowledged after the
// commit, in the order it was posted. Several processes on one store each
// have their own thread; they share the events file's write lock through
// busy_timeout (the wait sleeps this thread, not an event loop).
//
// The thread sleeps in Atomics.wait, not in an event loop: a batch posted to
// it does not wake it. It wakes every COMMIT_EVERY_MS, or when the main
// thread rings (EventWriter: a backlog, sync, prune, close), takes every
// message waiting, commits them together, and sleeps again. Woken by each
// post (every 100 events), on two busy vCPUs it took the CPU from the event
// loops fifty times a second per worker, for small commits (docs/performance.md).

import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { EVENT_WIDTH, EventSink, decodeBatch, openEventsDb, type EventsFileOptions, type PackedBatch } from './events-file.js';
import { toThreadError } from './faults.js';
import type { ThreadReply, ThreadRequest } from './event-writer.js';

/** Coalesced batches are committed together up to about this many events. */
const MAX_EVENTS_PER_COMMIT = 20_000;
/** The thread wakes this often by itself to commit what was posted (the main thread rings sooner when it must). */
const COMMIT_EVERY_MS = 100;

export interface EventThreadData extends EventsFileOptions {
  path: string;
  /**
   * The store's own file, whose WAL this thread checkpoints every
   * `checkpointMs` (PASSIVE: it never waits for, nor blocks, a writer), so
   * the event loop that commits greylist entries and bans never pays for a
   * checkpoint (store.ts turns SQLite's automatic ones off once this thread
   * is up). Absent: no checkpointing here.
   */
  checkpointPath?: string;
  checkpointMs?: number;
  /**
   * The bell: one Int32 that the main thread sets to 1 and notifies
   * (EventWriter's ring) to wake this thread before its next COMMIT_EVERY_MS.
   * Absent (a thread started by hand): the thread waits on a bell of its own
   * that nobody rings, and so commits every COMMIT_EVERY_MS.
   */
  wake?: SharedArrayBuffer;
  /** Nice value this thread sets for itself (Linux; store.events.writer_nice); absent or 0: unchanged. */
  nice?: number;
  /** How often the thread wakes by itself (default COMMIT_EVERY_MS; tests make it long). */
  commitEveryMs?: number;
}

/**
 * Checkpoint the store file's WAL from here: `tick(now)` checkpoints when
 * `everyMs` has passed since the last one (called from the thread's loop).
 * A failing checkpoint is retried at the next one, never fatal.
 */
function checkpointer(path: string, everyMs: number): { tick: (now: number) => void; stop: () => void } {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    db.pragma('busy_timeout = 0');
  } catch {
    db?.close();
    return { tick: () => {}, stop: () => {} };
  }
  const open = db;
  let last = Date.now();
  return {
    tick: (now) => {
      if (now - last < everyMs) return;
      last = now;
      try {
        open.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // busy (another process's checkpoint), or the file went away: next time.
      }
    },
    stop: () => open.close(),
  };
}

/**
 * Lower this thread's scheduling priority (Linux: setpriority on its own
 * thread id, found through /proc/thread-self). Its commits can wait; the
 * event loops answering Postfix cannot. Elsewhere, or refused: unchanged.
 */
function lowerPriority(nice: number): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // not Linux, or not allowed: the thread runs at the process's priority
  }
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('event-thread: not started as a worker thread');
  const data = workerData as EventThreadData;
  if (data.nice !== undefined && data.nice > 0) lowerPriority(data.nice);
  const reply = (m: ThreadReply): void => port.postMessage(m);

  let db: Database.Database;
  let sink: EventSink;
  try {
    db = openEventsDb(data.path, data);
    sink = new EventSink(db);
  } catch (e) {
    reply({ t: 'fatal', error: toThreadError(e) });
    port.close();
    return;
  }

  let ids: number[] = [];
  let batches: PackedBatch[] = [];
  let size = 0;
  const commit = (): void => {
    if (ids.length === 0) return;
    const done = ids;
    const rows = batches;
    ids = [];
    batches = [];
    size = 0;
    try {
      const r = sink.write(rows);
      reply({ t: 'done', ids: done, skipped: r.skipped, problem: r.problem });
    } catch (e) {
      reply({ t: 'done', ids: done, error: toThreadError(e) });
    }
  };

  const handle = (m: Exclude<ThreadRequest, { t: 'close' }>): void => {
    switch (m.t) {
      case 'batch': {
        const batch = decodeBatch(m.bytes);
        ids.push(m.id);
        batches.push(batch);
        size += batch.rows.length / EVENT_WIDTH;
        if (size >= MAX_EVENTS_PER_COMMIT) commit();
        return;
      }
      case 'prune':
        commit();
        try {
          reply({ t: 'pruned', id: m.id, n: sink.prune(m.now, m.opts) });
        } catch (e) {
          reply({ t: 'pruned', id: m.id, error: toThreadError(e) });
        }
        return;
    }
  };

  const cp = data.checkpointPath ? checkpointer(data.checkpointPath, data.checkpointMs ?? 1000) : undefined;
  const bell = new Int32Array(data.wake ?? new SharedArrayBuffer(4));
  const every = data.commitEveryMs ?? COMMIT_EVERY_MS;
  const tick = cp ? Math.min(every, data.checkpointMs ?? 1000) : every;
  reply({ t: 'ready', checkpointing: cp !== undefined });
  for (;;) {
    Atomics.wait(bell, 0, 0, tick);
    // Cleared before the messages are taken: a ring after this point is for messages not yet taken.
    Atomics.store(bell, 0, 0);
    let open = true;
    for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) {
      const m = next.message as ThreadRequest;
      if (m.t === 'close') {
        open = false;
        break;
      }
      handle(m);
    }
    commit();
    cp?.tick(Date.now());
    if (!open) break;
  }
  cp?.stop();
  db.close();
  reply({ t: 'closed' });
  port.close();
}

main();
