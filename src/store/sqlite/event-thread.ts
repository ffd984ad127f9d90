// The decision log's writer thread (started by event-writer.ts): its own
// connection to the events file, so batch commits — cleaning, JSON, index
// updates, the fsync-free WAL append — cost the event loop nothing. Batches
// that queued up while it was busy are taken together (receiveMessageOnPort)
// and committed in one transaction; each batch is acknowledged after the
// commit, in the order it was posted. Several processes on one store each
// have their own thread; they share the events file's write lock through
// busy_timeout (the wait sleeps this thread, not an event loop).

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { EVENT_WIDTH, EventSink, openEventsDb, type EventsFileOptions } from './events-file.js';
import { toThreadError } from './faults.js';
import type { ThreadReply, ThreadRequest } from './event-writer.js';

/** Coalesced batches are committed together up to about this many events. */
const MAX_EVENTS_PER_COMMIT = 20_000;

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
}

/** Checkpoint the store file's WAL from here; returns the stop function. A failing checkpoint is retried at the next tick, never fatal. */
function startCheckpointer(path: string, everyMs: number): () => void {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true });
    db.pragma('busy_timeout = 0');
  } catch {
    db?.close();
    return () => {};
  }
  const timer = setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // busy (another process's checkpoint), or the file went away: next tick.
    }
  }, everyMs);
  return () => {
    clearInterval(timer);
    db.close();
  };
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('event-thread: not started as a worker thread');
  const data = workerData as EventThreadData;
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
  let batches: unknown[][] = [];
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

  const handle = (m: ThreadRequest): boolean => {
    switch (m.t) {
      case 'batch':
        ids.push(m.id);
        batches.push(m.rows);
        size += m.rows.length / EVENT_WIDTH;
        if (size >= MAX_EVENTS_PER_COMMIT) commit();
        return true;
      case 'prune':
        commit();
        try {
          reply({ t: 'pruned', id: m.id, n: sink.prune(m.now, m.opts) });
        } catch (e) {
          reply({ t: 'pruned', id: m.id, error: toThreadError(e) });
        }
        return true;
      case 'close':
        commit();
        stopCheckpointer();
        db.close();
        reply({ t: 'closed' });
        port.close();
        return false;
    }
  };

  port.on('message', (first: ThreadRequest) => {
    let more = handle(first);
    while (more) {
      const next = receiveMessageOnPort(port);
      if (!next) break;
      more = handle(next.message as ThreadRequest);
    }
    if (more) commit();
  });
  const stopCheckpointer = data.checkpointPath ? startCheckpointer(data.checkpointPath, data.checkpointMs ?? 1000) : () => {};
  reply({ t: 'ready', checkpointing: data.checkpointPath !== undefined });
}

main();
