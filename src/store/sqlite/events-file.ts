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
//
// Evidence is stored by reference: each entry's JSON text ("piece") goes once
// into `evidence_pieces`, and an event's `evidence` column holds `#id,id,…`
// (rows written before version 2 hold the JSON array itself; both are read).
// Decisions repeat their evidence — the evidence cache hands the same entries
// to every message of a client, and "not banned", "not authenticated" are the
// same for everyone — and the ~1–2 KB of JSON per row was most of what the
// writer thread wrote (twice: the WAL, then the checkpoint), and most of its
// CPU, in the kernel. Each writer remembers the pieces it stored this hour
// (EvidencePieces); a new hour starts afresh, so retention can drop the
// pieces of the hours no remaining event can refer to.

import Database from 'better-sqlite3';
import { domainOf } from '../../core/address.js';
import { StoreUnavailableError } from '../errors.js';
import { cleanEvent, compactEvidencePieces, rcptDomains } from '../events.js';
import type { DecisionEvent, LoggedDecision, PruneOptions } from '../types.js';
import { RollupCounter } from '../event-rollups.js';
import { addCoarseRollups, initRollups, pruneRollups, RollupWriter } from './event-rollups.js';

/**
 * Version of the events file's layout, kept in its `user_version`: 2 added
 * evidence_pieces, 3 the score and test-mode findings, 4 the envelope fields
 * a replay needs (client_ptr, sasl_user, rcpt_count; evidence pieces carry
 * their data from then on, which needs no change of layout), 5 the indexes
 * of a Why? search by sender or domain and the coarser rollups.
 */
export const EVENTS_VERSION = 5;

/** The partial index's condition (events with recipients in two domains or more); queries name it word for word. */
export const MANY_RCPT_DOMAINS = "rcpt_domains GLOB '|*|*|'";
export const MANY_RCPT_DOMAINS_INDEX = 'events_by_ts_many_rcpt_domains';

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

/**
 * Version 2: the evidence entries events refer to (`#id,…` in
 * events.evidence). `hour` is the hour (ms since the epoch / 3,600,000) of
 * the writer's clock when the piece was stored.
 */
export const PIECES_SCHEMA = `
  CREATE TABLE IF NOT EXISTS evidence_pieces (
    id INTEGER PRIMARY KEY,
    hour INTEGER NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS evidence_pieces_by_hour ON evidence_pieces (hour);
`;

/**
 * Version 3: each decision's score and what rules in test mode would have
 * done (`would_have`: JSON array text, NULL when none did), so an admin can
 * audit a test-mode rule before switching it on.
 */
export const VERDICT_DETAIL_SCHEMA = `
  ALTER TABLE events ADD COLUMN score REAL;
  ALTER TABLE events ADD COLUMN would_have TEXT;
`;

/**
 * Version 4: the rest of the envelope a re-evaluation needs (`frontline
 * replay`): the client's reverse name, the SASL login, the number of
 * recipients so far. NULL rcpt_count marks a row written before.
 */
export const REPLAY_SCHEMA = `
  ALTER TABLE events ADD COLUMN client_ptr TEXT;
  ALTER TABLE events ADD COLUMN sasl_user TEXT;
  ALTER TABLE events ADD COLUMN rcpt_count INTEGER;
`;

/**
 * Version 5: the decision log searched by sender (MAIL FROM's domain: a
 * search by address reads its domain's rows) and by recipient domain
 * (`rcpt_domains` is `|d|` for a decision whose recipients share one domain,
 * nearly all; the few with several are indexed apart, by time), so that
 * Why? by a rare domain or address reads its rows, not the whole log.
 */
export const SEARCH_SCHEMA = `
  CREATE INDEX IF NOT EXISTS events_by_from_domain ON events (from_domain, ts);
  CREATE INDEX IF NOT EXISTS events_by_rcpt_domains ON events (rcpt_domains, ts);
  CREATE INDEX IF NOT EXISTS ${MANY_RCPT_DOMAINS_INDEX} ON events (ts) WHERE ${MANY_RCPT_DOMAINS};
`;

/** Every column of version 2, in table order (the migration copies them all, ids included). */
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
    initRollups(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

function eventsVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Create the events tables if the file is new (add the pieces table to a version 1 file); refuse a file laid out by a newer frontline. */
export function initEventsSchema(db: Database.Database): void {
  const v = eventsVersion(db);
  if (v > EVENTS_VERSION) {
    throw new StoreUnavailableError(`events file schema version ${v} is newer than this frontline knows (${EVENTS_VERSION}); upgrade frontline`);
  }
  if (v === EVENTS_VERSION) return;
  db.transaction(() => {
    const now = eventsVersion(db); // another process may have moved it on meanwhile
    if (now >= EVENTS_VERSION) return;
    if (now < 2) {
      db.exec(EVENTS_SCHEMA);
      db.exec(PIECES_SCHEMA);
    }
    if (now < 3) db.exec(VERDICT_DETAIL_SCHEMA);
    if (now < 4) db.exec(REPLAY_SCHEMA);
    db.exec(SEARCH_SCHEMA);
    addCoarseRollups(db);
    db.pragma(`user_version = ${EVENTS_VERSION}`);
  }).immediate();
}

// ---- packed events

/** Values per packed event. */
export const EVENT_WIDTH = 17;

/**
 * A batch as it crosses to the writer thread: EVENT_WIDTH values per event
 * in `rows`; an event's evidence is a list of indices into `pieces`, the
 * batch's distinct evidence entry texts, so that an entry a hundred events
 * share is posted (copied, deserialised, looked up) once per batch, not a
 * hundred times.
 */
export interface PackedBatch {
  rows: unknown[];
  pieces: string[];
}

/** A PackedBatch being filled, with the index of its pieces. */
export interface FillingBatch extends PackedBatch {
  pieceIndex: Map<string, number>;
}

export function newPackedBatch(): FillingBatch {
  return { rows: [], pieces: [], pieceIndex: new Map() };
}

/** What crosses: the batch without its index. */
export function packedOf(b: FillingBatch): PackedBatch {
  return { rows: b.rows, pieces: b.pieces };
}

/**
 * Append an event's values to a batch. Its evidence goes as the JSON text of
 * each entry (compactEvidencePieces: made once per frozen entry), by index
 * into the batch's pieces; only its rcpts array is kept by reference (until
 * the batch is posted).
 */
export function packEvent(b: FillingBatch, e: LoggedDecision): void {
  const texts = compactEvidencePieces(e.evidence ?? []);
  const refs = new Array<number>(texts.length);
  for (let i = 0; i < texts.length; i++) {
    let k = b.pieceIndex.get(texts[i]);
    if (k === undefined) {
      k = b.pieces.push(texts[i]) - 1;
      b.pieceIndex.set(texts[i], k);
    }
    refs[i] = k;
  }
  const rcpts = e.rcpts;
  // Recipients are strings but for a caller's bug; JSON would turn anything else into null or an object.
  const plainRcpts = Array.isArray(rcpts) && !rcpts.every((r) => typeof r === 'string') ? rcpts.map((r) => String(r)) : rcpts;
  b.rows.push(e.ts, e.sessionId, e.clientIp, e.helo, e.from, plainRcpts, e.stage, e.action, e.code, e.rule, e.text, refs, e.score, e.wouldHave, e.clientPtr, e.saslUser, e.rcptCount);
}

function unpackEvent(rows: readonly unknown[], i: number): DecisionEvent {
  const e: DecisionEvent = {
    ts: rows[i] as number,
    clientIp: rows[i + 2] as string,
    rcpts: (rows[i + 5] ?? []) as string[],
    stage: rows[i + 6] as string,
    action: rows[i + 7] as string,
    rule: rows[i + 9] as string,
    // The evidence travels as references to the batch's pieces (packEvent); the writer stores references to stored pieces.
    evidence: [],
  };
  if (rows[i + 1] != null) e.sessionId = rows[i + 1] as string;
  if (rows[i + 3] != null) e.helo = rows[i + 3] as string;
  if (rows[i + 4] != null) e.from = rows[i + 4] as string;
  if (rows[i + 8] != null) e.code = rows[i + 8] as number;
  if (rows[i + 10] != null) e.text = rows[i + 10] as string;
  if (rows[i + 12] != null) e.score = rows[i + 12] as number;
  if (rows[i + 13] != null) e.wouldHave = rows[i + 13] as DecisionEvent['wouldHave'];
  if (rows[i + 14] != null) e.clientPtr = rows[i + 14] as string;
  if (rows[i + 15] != null) e.saslUser = rows[i + 15] as string;
  if (rows[i + 16] != null) e.rcptCount = rows[i + 16] as number;
  return e;
}

/**
 * A batch as the bytes that cross to the writer thread (and are kept until
 * it acknowledges them): its JSON, UTF-8. An absent value crosses as null
 * (unpackEvent reads both as absent); recipients are text already
 * (packEvent).
 *
 * Not v8.serialize, as before: its C++ serializer
 * holds every object it wrote as a GC root until its JS wrapper is
 * collected, so each young-generation collection found all the batches
 * serialised since the last one still alive — the events, their recipient
 * arrays and the request texts their strings were sliced from — and
 * copied them (greylisting bench's load, one-rule policy: 11 of the 14 MB
 * that survived each scavenge; docs/performance.md, "What survives a scavenge").
 */
export function encodeBatch(b: PackedBatch): Buffer {
  return Buffer.from(JSON.stringify(b), 'utf8');
}

export function decodeBatch(bytes: Uint8Array): PackedBatch {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as PackedBatch;
}

export interface WriteResult {
  written: number;
  /** Events that could not be stored (not an event after all); the rest of the batch is. */
  skipped: number;
  problem?: string;
}

const HOUR_MS = 3_600_000;
/** Pieces a writer remembers (their text and id); beyond, it starts afresh (and stores a piece again when it recurs). */
export const PIECES_REMEMBERED = 20_000;

/**
 * The pieces one writer has stored for the events of one hour (of their
 * `ts`), by text: an event refers only to pieces stored under its own hour,
 * so retention may drop every piece of an hour before its oldest remaining
 * event's (EventSink.prune), whatever the clocks did. Only used inside
 * EventSink.write's transaction; forgotten if that transaction fails (its
 * pieces were rolled back), when an event of another hour comes, and when
 * it is full.
 */
class EvidencePieces {
  private hour = NaN;
  private readonly ids = new Map<string, number>();
  private readonly insert: Database.Statement<[number, string]>;

  constructor(db: Database.Database) {
    this.insert = db.prepare('INSERT INTO evidence_pieces (hour, json) VALUES (?, ?)');
  }

  /** The id of a piece stored under `hour` (storing it if this writer has not yet). */
  idOf(hour: number, text: string): number {
    if (hour !== this.hour || this.ids.size >= PIECES_REMEMBERED) {
      this.ids.clear();
      this.hour = hour;
    }
    let id = this.ids.get(text);
    if (id === undefined) {
      id = Number(this.insert.run(hour, text).lastInsertRowid);
      this.ids.set(text, id);
    }
    return id;
  }

  forget(): void {
    this.ids.clear();
  }
}

/**
 * The `evidence` column's text for a packed event's evidence (indices into
 * its batch's pieces): `#id,…`, storing the pieces this writer has not
 * stored under the event's hour. `ids` holds the stored id of each of the
 * batch's pieces once known (for the hour `ids.hour`).
 */
function evidenceColumn(ts: number, value: unknown, batch: PackedBatch, ids: BatchIds, pieces: EvidencePieces): string {
  if (!Array.isArray(value) || value.length === 0) return '[]';
  const texts = batch.pieces;
  for (const k of value) if (typeof k !== 'number' || typeof texts[k] !== 'string') return '[]';
  const hour = Math.floor(ts / HOUR_MS);
  if (hour !== ids.hour) {
    ids.hour = hour;
    ids.of.length = 0;
  }
  let out = '#';
  for (let i = 0; i < value.length; i++) {
    const k = value[i] as number;
    const id = (ids.of[k] ??= pieces.idOf(hour, texts[k]));
    out += i === 0 ? id : `,${id}`;
  }
  return out;
}

/** The JSON texts of a packed event's evidence (indices into its batch's pieces), for the rollups. */
function pieceTextsOf(value: unknown, batch: PackedBatch): string[] {
  if (!Array.isArray(value)) return [];
  const out: string[] = [];
  for (const k of value) if (typeof k === 'number' && typeof batch.pieces[k] === 'string') out.push(batch.pieces[k]);
  return out;
}

/** The stored ids of one batch's pieces, for one hour. */
interface BatchIds {
  hour: number;
  of: number[];
}

/**
 * The JSON array text of events' `evidence` columns: references resolved
 * through evidence_pieces (one query for all of them), JSON text as it is.
 * A piece that is missing (a file edited by hand) is left out.
 */
export function evidenceTexts(db: Database.Database, columns: readonly string[]): string[] {
  const refs = columns.map((c) => (c.startsWith('#') ? c.slice(1).split(',').map(Number) : undefined));
  const wanted = new Set(refs.flatMap((r) => r ?? []));
  if (wanted.size === 0) return columns.slice();
  const json = new Map<number, string>();
  const rows = db.prepare<[string], { id: number; json: string }>('SELECT id, json FROM evidence_pieces WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify([...wanted]));
  for (const r of rows) json.set(r.id, r.json);
  return columns.map((c, i) => {
    const ids = refs[i];
    if (ids === undefined) return c;
    const parts: string[] = [];
    for (const id of ids) {
      const p = json.get(id);
      if (p !== undefined) parts.push(p);
    }
    return `[${parts.join(',')}]`;
  });
}

/** Writes packed batches and applies retention, on one connection to an events file. */
export class EventSink {
  private readonly insert: Database.Statement;
  private readonly pieces: EvidencePieces;
  private readonly rollups: RollupWriter;

  constructor(private readonly db: Database.Database) {
    this.pieces = new EvidencePieces(db);
    this.rollups = new RollupWriter(db);
    this.insert = db.prepare(
      `INSERT INTO events (ts, session_id, client_ip, helo, mail_from, from_domain, rcpts, rcpt_domains, stage, action, code, rule, text, evidence, score, would_have, client_ptr, sasl_user, rcpt_count)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** Every event of these batches, in one transaction. SQLite faults throw (nothing is written); a malformed event is skipped. */
  write(batches: readonly PackedBatch[]): WriteResult {
    try {
      return this.writeAll(batches);
    } catch (e) {
      this.pieces.forget(); // the pieces it stored were rolled back
      throw e;
    }
  }

  private writeAll(batches: readonly PackedBatch[]): WriteResult {
    return this.db
      .transaction((): WriteResult => {
        const r: WriteResult = { written: 0, skipped: 0 };
        const counter = new RollupCounter();
        for (const batch of batches) {
          const rows = batch.rows;
          const ids: BatchIds = { hour: NaN, of: [] };
          for (let i = 0; i + EVENT_WIDTH <= rows.length; i += EVENT_WIDTH) {
            try {
              const e = cleanEvent(unpackEvent(rows, i));
              const evidence = evidenceColumn(e.ts, rows[i + 11], batch, ids, this.pieces);
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
                evidence,
                e.score ?? null,
                e.wouldHave === undefined ? null : JSON.stringify(e.wouldHave),
                e.clientPtr ?? null,
                e.saslUser ?? null,
                e.rcptCount ?? null,
              );
              counter.add(e, pieceTextsOf(rows[i + 11], batch));
              r.written++;
            } catch (err) {
              if (err instanceof Database.SqliteError) throw err;
              r.skipped++;
              r.problem ??= err instanceof Error ? err.message : String(err);
            }
          }
        }
        this.rollups.write(counter.take());
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
        // Pieces of the hours before the oldest remaining event's (EvidencePieces): no event refers
        // to them. Never this hour's or the last: other processes' writers still use theirs.
        const oldest = db.prepare<[], { ts: number | null }>('SELECT min(ts) AS ts FROM events').get()?.ts ?? null;
        const before = Math.min(oldest === null ? Infinity : Math.floor(oldest / HOUR_MS), Math.floor(now / HOUR_MS) - 1);
        if (db.prepare('DELETE FROM evidence_pieces WHERE hour < ?').run(before).changes > 0) this.pieces.forget();
        pruneRollups(db, oldest ?? undefined, now);
        return n;
      })
      .immediate();
  }
}
