// The decision log's own SQLite file, next to the store's: `frontline.db` →
// `frontline.events.db`. Its writes (the writer thread's batches, retention)
// take that file's write lock, never the store's, so a batch commit never
// makes a ban, list or greylist commit wait. Used by the writer thread
// (event-thread.ts) and by the main thread (reads; writes when there is no
// thread: in-memory stores, a thread that failed).
//
// Events cross to the thread "packed": EVENT_WIDTH values per event in one
// flat array per batch (cheap to post: no object per event, no keys), and are
// cleaned (cut, canonical IP, compact evidence) and serialised in the thread.

import Database from 'better-sqlite3';
import { domainOf } from '../../core/address.js';
import { StoreUnavailableError } from '../errors.js';
import { cleanEvent, compactEvidenceJson, rcptDomains } from '../events.js';
import type { DecisionEvent, PruneOptions } from '../types.js';

/** Version of the events file's layout, kept in its `user_version`. */
export const EVENTS_VERSION = 1;

/** The events table and the indexes its queries use (as the store file had them up to schema version 2). */
export const EVENTS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    session_id TEXT,
    client_ip TEXT NOT NULL,
    helo TEXT,
    mail_from TEXT,
    from_domain TEXT,
    rcpts TEXT NOT NULL,
    rcpt_domains TEXT NOT NULL,
    stage TEXT NOT NULL,
    action TEXT NOT NULL,
    code INTEGER,
    rule TEXT NOT NULL,
    text TEXT,
    evidence TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts);
  CREATE INDEX IF NOT EXISTS events_by_ip ON events (client_ip, ts);
  CREATE INDEX IF NOT EXISTS events_by_rule ON events (rule, ts);
`;

/** Every column, in table order (the migration copies them all, ids included). */
export const EVENT_COLUMNS =
  'id, ts, session_id, client_ip, helo, mail_from, from_domain, rcpts, rcpt_domains, stage, action, code, rule, text, evidence';

/** SQLite's own names for a database that lives in memory: no file, no thread. */
export function isMemoryPath(path: string): boolean {
  return path === ':memory:' || path === '';
}

/**
 * The events file of a store file: `.events` goes before the last extension
 * of the file name (`frontline.db` → `frontline.events.db`,
 * `state.sqlite` → `state.events.sqlite`), or after a name without one
 * (`state` → `state.events`).
 */
export function eventsPathFor(path: string): string {
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  const dot = path.lastIndexOf('.');
  return dot > slash + 1 ? `${path.slice(0, dot)}.events${path.slice(dot)}` : `${path}.events`;
}

/**
 * Page size of a new events file. Rows are 1–2 KB (the evidence text) and
 * are only ever appended: 16 KiB pages take four times fewer WAL frames (two
 * pwrite calls each) per commit than SQLite's 4 KiB. A file made with
 * another page size keeps it (WAL mode cannot change it).
 */
export const EVENTS_PAGE_SIZE = 16_384;

export interface EventsFileOptions {
  busyTimeoutMs: number;
  synchronous: 'NORMAL' | 'FULL';
}

/** Open (creating it if need be) an events file: WAL, the given busy_timeout and synchronous. */
export function openEventsDb(path: string, opts: EventsFileOptions): Database.Database {
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs))}`);
    // Before anything is written (it is a no-op on a file that has pages).
    db.pragma(`page_size = ${EVENTS_PAGE_SIZE}`);
    if (!isMemoryPath(path)) db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    initEventsSchema(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

function eventsVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Create the events table if the file is new; refuse a file laid out by a newer frontline. */
export function initEventsSchema(db: Database.Database): void {
  const v = eventsVersion(db);
  if (v > EVENTS_VERSION) {
    throw new StoreUnavailableError(`events file schema version ${v} is newer than this frontline knows (${EVENTS_VERSION}); upgrade frontline`);
  }
  if (v === EVENTS_VERSION) return;
  db.transaction(() => {
    if (eventsVersion(db) >= EVENTS_VERSION) return; // another process made it meanwhile
    db.exec(EVENTS_SCHEMA);
    db.pragma(`user_version = ${EVENTS_VERSION}`);
  }).immediate();
}

// ---- packed events

/** Values per packed event. */
export const EVENT_WIDTH = 12;

/**
 * Append an event's values to a batch. Its evidence goes as the JSON text the
 * events table stores (compactEvidenceJson); only its rcpts array is kept by
 * reference (until the batch is posted).
 */
export function packEvent(rows: unknown[], e: DecisionEvent): void {
  rows.push(e.ts, e.sessionId, e.clientIp, e.helo, e.from, e.rcpts, e.stage, e.action, e.code, e.rule, e.text, compactEvidenceJson(e.evidence ?? []));
}

function unpackEvent(rows: readonly unknown[], i: number): DecisionEvent {
  const e: DecisionEvent = {
    ts: rows[i] as number,
    clientIp: rows[i + 2] as string,
    rcpts: (rows[i + 5] ?? []) as string[],
    stage: rows[i + 6] as string,
    action: rows[i + 7] as string,
    rule: rows[i + 9] as string,
    // The evidence travels as JSON text (packEvent); the writer stores that text as it is.
    evidence: [],
  };
  if (rows[i + 1] !== undefined) e.sessionId = rows[i + 1] as string;
  if (rows[i + 3] !== undefined) e.helo = rows[i + 3] as string;
  if (rows[i + 4] !== undefined) e.from = rows[i + 4] as string;
  if (rows[i + 8] !== undefined) e.code = rows[i + 8] as number;
  if (rows[i + 10] !== undefined) e.text = rows[i + 10] as string;
  return e;
}

/**
 * A copy of a batch that can be posted when the batch itself cannot
 * (recipients that structured clone refuses): recipients as text.
 */
export function plainBatch(rows: readonly unknown[]): unknown[] {
  const out = rows.slice();
  for (let i = 0; i < out.length; i += EVENT_WIDTH) {
    const rcpts = out[i + 5];
    out[i + 5] = Array.isArray(rcpts) ? rcpts.map((r) => String(r)) : [];
  }
  return out;
}

export interface WriteResult {
  written: number;
  /** Events that could not be stored (not an event after all); the rest of the batch is. */
  skipped: number;
  problem?: string;
}

/** Writes packed batches and applies retention, on one connection to an events file. */
export class EventSink {
  private readonly insert: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO events (ts, session_id, client_ip, helo, mail_from, from_domain, rcpts, rcpt_domains, stage, action, code, rule, text, evidence)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** Every event of these batches, in one transaction. SQLite faults throw (nothing is written); a malformed event is skipped. */
  write(batches: ReadonlyArray<readonly unknown[]>): WriteResult {
    return this.db
      .transaction((): WriteResult => {
        const r: WriteResult = { written: 0, skipped: 0 };
        for (const rows of batches) {
          for (let i = 0; i + EVENT_WIDTH <= rows.length; i += EVENT_WIDTH) {
            try {
              const e = cleanEvent(unpackEvent(rows, i));
              const evidence = rows[i + 11];
              this.insert.run(
                e.ts,
                e.sessionId ?? null,
                e.clientIp,
                e.helo ?? null,
                e.from ?? null,
                domainOf(e.from) ?? null,
                JSON.stringify(e.rcpts),
                `|${rcptDomains(e.rcpts).join('|')}|`,
                e.stage,
                e.action,
                e.code ?? null,
                e.rule,
                e.text ?? null,
                typeof evidence === 'string' ? evidence : '[]',
              );
              r.written++;
            } catch (err) {
              if (err instanceof Database.SqliteError) throw err;
              r.skipped++;
              r.problem ??= err instanceof Error ? err.message : String(err);
            }
          }
        }
        return r;
      })
      .immediate();
  }

  /** Retention: events older than maxAgeSeconds before `now`, and all but the newest maxRows. Returns the number deleted. */
  prune(now: number, opts: PruneOptions): number {
    const db = this.db;
    return db
      .transaction((): number => {
        let n = 0;
        if (opts.maxAgeSeconds !== undefined) {
          n += db.prepare('DELETE FROM events WHERE ts < ?').run(now - opts.maxAgeSeconds * 1000).changes;
        }
        if (opts.maxRows !== undefined) {
          const keep = Math.max(0, Math.floor(opts.maxRows));
          // The newest row beyond the allowance; it and everything older go.
          const first = db.prepare<[number], { ts: number; id: number }>('SELECT ts, id FROM events ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?').get(keep);
          if (first) {
            n += db.prepare('DELETE FROM events WHERE ts < ? OR (ts = ? AND id <= ?)').run(first.ts, first.ts, first.id).changes;
          }
        }
        return n;
      })
      .immediate();
  }
}
