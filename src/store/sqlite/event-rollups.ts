// The decision log's rollups in the SQLite events file (counters defined in
// ../event-rollups.ts): one table, written by the EventSink in the same
// transaction as the events it counts, so a committed event is always
// counted exactly once; pruned with the events. A file made before the
// rollups existed is counted once, when it is first opened (backfill).

import type Database from 'better-sqlite3';
import { COARSE_LEVELS, DAY_MS, HOUR_MS, MAX_ROLLUP_LIMIT, RollupCounter, rollupLimit, rollupSpans, storedDim, topRollupRows, type RollupIncrement, type RollupQuery, type RollupRow, type RollupSpan } from '../event-rollups.js';
import type { DecisionEvent } from '../types.js';

/**
 * The dimensions whose keys are many (a client or sender domain per
 * decision): the top keys of a long window are found from the largest day
 * counters of the days it touches (topByRank), through this index of the
 * day counters by size. Partial: no other counter is indexed twice.
 */
const RANKED_DIMS = ['client', 'domain'] as const;
const RANKED_LEVEL = { name: 'day', ms: DAY_MS } as const;
/** The partial index's condition; a query names it word for word so that SQLite uses the index. */
const RANKED_WHERE = `dim IN (${RANKED_DIMS.map((d) => `'${storedDim(d, RANKED_LEVEL)}'`).join(', ')})`;
const RANKED_INDEX = `CREATE INDEX IF NOT EXISTS event_rollups_by_n ON event_rollups (dim, bucket, action, n) WHERE ${RANKED_WHERE};`;

export const ROLLUPS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS event_rollups (
    dim TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dim, bucket, key, action)
  ) WITHOUT ROWID;
  ${RANKED_INDEX}
`;

/**
 * Events file version 5: the coarser counters (COARSE_LEVELS) of the
 * counters a file already has, summed from them, and the index of the
 * ranked dimensions. Inside the caller's transaction.
 */
export function addCoarseRollups(db: Database.Database): void {
  if (!hasRollups(db)) return; // initRollups makes the table and counts every level
  db.exec(RANKED_INDEX);
  for (const [dim, levels] of Object.entries(COARSE_LEVELS)) {
    for (const l of levels ?? []) {
      db.prepare(
        `INSERT INTO event_rollups (dim, bucket, key, action, n)
         SELECT ?, bucket - bucket % ?, key, action, sum(n) FROM event_rollups WHERE dim = ? GROUP BY bucket - bucket % ?, key, action`,
      ).run(`${dim}@${l.name}`, l.ms, dim, l.ms);
    }
  }
}

const BACKFILL_CHUNK = 5_000;

function hasRollups(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_rollups'").get() !== undefined;
}

/**
 * Create the rollups table if the file has none, and count the events
 * already in it (one transaction: another process opening the file at the
 * same moment waits, then finds the table). Returns the number of events
 * counted (0 for a file that had the table).
 */
export function initRollups(db: Database.Database): number {
  if (hasRollups(db)) return 0;
  return db.transaction((): number => {
    if (hasRollups(db)) return 0;
    db.exec(ROLLUPS_SCHEMA);
    const hasEvents = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").get() !== undefined;
    if (!hasEvents) return 0;
    const writer = new RollupWriter(db);
    const piece = db.prepare<[number], { json: string }>('SELECT json FROM evidence_pieces WHERE id = ?');
    const pieceText = new Map<number, string>();
    const page = db.prepare<[number, number], BackfillRow>(
      `SELECT id, ts, client_ip, mail_from, action, rule, evidence, would_have FROM events WHERE id > ? ORDER BY id LIMIT ?`,
    );
    let last = 0;
    let n = 0;
    for (;;) {
      const rows = page.all(last, BACKFILL_CHUNK);
      if (rows.length === 0) break;
      const counter = new RollupCounter();
      for (const r of rows) {
        last = r.id;
        const e: Pick<DecisionEvent, 'ts' | 'clientIp' | 'from' | 'action' | 'rule' | 'wouldHave'> = {
          ts: r.ts,
          clientIp: r.client_ip,
          action: r.action,
          rule: r.rule,
        };
        if (r.mail_from !== null) e.from = r.mail_from;
        if (r.would_have) {
          try {
            e.wouldHave = JSON.parse(r.would_have) as DecisionEvent['wouldHave'];
          } catch {
            // a hand-edited row: counted without its test-mode findings
          }
        }
        counter.add(e, piecesOf(r.evidence, (id) => {
          let t = pieceText.get(id);
          if (t === undefined) {
            t = piece.get(id)?.json ?? '';
            if (pieceText.size > 50_000) pieceText.clear();
            pieceText.set(id, t);
          }
          return t;
        }));
        n++;
      }
      writer.write(counter.take());
    }
    return n;
  }).immediate();
}

interface BackfillRow {
  id: number;
  ts: number;
  client_ip: string;
  mail_from: string | null;
  action: string;
  rule: string;
  evidence: string;
  would_have: string | null;
}

/** The evidence entries' texts of an `evidence` column (`#id,…` references, or a JSON array as older rows hold). */
function piecesOf(column: string, pieceById: (id: number) => string): string[] {
  if (column.startsWith('#')) return column.slice(1).split(',').map((id) => pieceById(Number(id)));
  try {
    const a = JSON.parse(column) as unknown;
    return Array.isArray(a) ? a.map((x) => JSON.stringify(x)) : [];
  } catch {
    return [];
  }
}

/** Adds a batch's counts to the table (inside the caller's transaction). */
export class RollupWriter {
  private readonly upsert: Database.Statement<[string, number, string, string, number]>;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO event_rollups (dim, bucket, key, action, n) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (dim, bucket, key, action) DO UPDATE SET n = n + excluded.n`,
    );
  }

  write(incs: readonly RollupIncrement[]): void {
    for (const i of incs) this.upsert.run(i.dim, i.bucket, i.key, i.action, i.n);
  }
}

/**
 * Retention (inside the caller's transaction): counters of the hours before
 * the one holding the oldest remaining event (`oldest`; undefined when no
 * event is left: every hour before `now`'s). Whole hours, minute counters
 * too, as Redis keeps them (one hash per hour).
 */
export function pruneRollups(db: Database.Database, oldest: number | undefined, now: number): number {
  const t = oldest ?? now;
  return db.prepare('DELETE FROM event_rollups WHERE bucket < ?').run(Math.floor(t / HOUR_MS) * HOUR_MS).changes;
}

/**
 * The oldest bucket any counter of `dim` (at any level) still has: coarse
 * buckets from there on are whole (rollupSpans). Infinity when there is none.
 */
function floorOf(db: Database.Database, dim: string): number {
  let floor = Infinity;
  const oldest = db.prepare<[string], { b: number | null }>('SELECT min(bucket) AS b FROM event_rollups WHERE dim = ?');
  for (const d of [dim, ...(COARSE_LEVELS[dim as keyof typeof COARSE_LEVELS] ?? []).map((l) => `${dim}@${l.name}`)]) {
    const b = oldest.get(d)?.b;
    if (b != null && b < floor) floor = b;
  }
  return floor;
}

/** SQL for "in one of these spans" (dim, bucket), and its arguments. */
function spanWhere(spans: readonly RollupSpan[]): { sql: string; args: Array<string | number> } {
  const args: Array<string | number> = [];
  const parts = spans.map((s) => {
    args.push(s.stored, s.from);
    if (s.to === Infinity) return '(dim = ? AND bucket >= ?)';
    args.push(s.to);
    return '(dim = ? AND bucket >= ? AND bucket < ?)';
  });
  return { sql: parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`, args };
}

/** Answer a RollupQuery from the table (see RollupQuery for the shape). */
export function queryRollups(db: Database.Database, q: RollupQuery): RollupRow[] {
  return db.transaction((): RollupRow[] => {
    const floor = floorOf(db, q.dim);
    const spans = rollupSpans(q.dim, q.since, q.until, floor, q.dim === 'minute' ? (q.maxBucketMs ?? 60_000) : Infinity);
    if (spans.length === 0) return [];
    const actions = q.actions === undefined ? undefined : JSON.stringify(q.actions);
    const actionWhere = actions === undefined ? '' : ' AND action IN (SELECT value FROM json_each(?))';
    const where = spanWhere(spans);
    const args = [...where.args];
    if (actions !== undefined) args.push(actions);
    if (q.dim === 'minute') {
      return db
        .prepare<unknown[], RollupRow>(`SELECT bucket, key, action, n FROM event_rollups WHERE ${where.sql}${actionWhere} ORDER BY bucket, key, action`)
        .all(...args);
    }
    if ((RANKED_DIMS as readonly string[]).includes(q.dim)) {
      const ranked = topByRank(db, spans, q, floor);
      if (ranked !== undefined) return ranked;
    }
    const keys = db
      .prepare<unknown[], { key: string }>(`SELECT key FROM event_rollups WHERE ${where.sql}${actionWhere} GROUP BY key ORDER BY sum(n) DESC, key LIMIT ?`)
      .all(...args, rollupLimit(q))
      .map((r) => r.key);
    if (keys.length === 0) return [];
    return exactRows(db, spans, keys, q);
  })();
}

/**
 * Each of `keys`' counts by action over the spans (only q.actions), as
 * topRollupRows answers them: looked up bucket by bucket and key by key
 * (the primary key) where the buckets can be listed, else by range.
 */
function exactRows(db: Database.Database, spans: readonly RollupSpan[], keys: readonly string[], q: RollupQuery): RollupRow[] {
  const rows: Array<{ key: string; action: string; n: number }> = [];
  const keyList = JSON.stringify(keys);
  const lookup = db.prepare<[string, string, string], { key: string; action: string; n: number }>(
    'SELECT key, action, n FROM event_rollups WHERE dim = ? AND bucket IN (SELECT value FROM json_each(?)) AND key IN (SELECT value FROM json_each(?))',
  );
  const range = db.prepare<[string, number, number, string], { key: string; action: string; n: number }>(
    'SELECT key, action, sum(n) AS n FROM event_rollups WHERE dim = ? AND bucket >= ? AND bucket < ? AND key IN (SELECT value FROM json_each(?)) GROUP BY key, action',
  );
  for (const s of spans) {
    const count = (s.to - s.from) / s.ms;
    if (count <= RANK_MAX_BUCKETS) {
      const buckets: number[] = [];
      for (let b = s.from; b < s.to; b += s.ms) buckets.push(b);
      rows.push(...lookup.all(s.stored, JSON.stringify(buckets), keyList));
    } else rows.push(...range.all(s.stored, s.from, s.to === Infinity ? Number.MAX_SAFE_INTEGER : s.to, keyList));
  }
  return topRollupRows(rows, q);
}

/** Most buckets exactRows looks up one by one; a longer span is read by range. */
const RANK_MAX_BUCKETS = 400;
/** Windows of fewer base buckets than this are summed whole (a few thousand rows). */
const RANK_MIN_BUCKETS = 6;

/**
 * The top keys of a ranked dimension without summing every counter of the
 * window (a day holds a row per new client address and hour; a week, most
 * of a million): a threshold algorithm (Fagin's) over the days the window
 * touches. For each such day and each action the `m` largest day counters
 * are read (the index by n); their keys are the candidates, counted
 * exactly over the window. A key in none of those lists has, in the
 * window, at most its counts of those days: at most T, the sum of each
 * list's smallest value (0 for a list read to its end). When the
 * `limit`-th candidate's count is above T, the candidates hold the answer
 * summing the whole window gives. Undefined when that is not shown (the
 * caller then sums the window), or when a day's counters are not whole
 * (before `floor`: see rollupSpans).
 */
function topByRank(db: Database.Database, spans: readonly RollupSpan[], q: RollupQuery, floor: number): RollupRow[] | undefined {
  const limit = rollupLimit(q);
  if (limit > 1_000 || spans.some((s) => s.to === Infinity)) return undefined;
  const from = spans[0].from;
  const to = spans[spans.length - 1].to;
  if ((to - from) / HOUR_MS < RANK_MIN_BUCKETS) return undefined;
  const firstDay = Math.floor(from / DAY_MS) * DAY_MS;
  if (firstDay < floor) return undefined;
  const days: number[] = [];
  for (let d = firstDay; d < to; d += DAY_MS) days.push(d);
  const stored = storedDim(q.dim, RANKED_LEVEL);
  // The actions to rank over: those asked for, or every action decided on those days (each decision counts once under its rule, as here).
  const actions =
    q.actions ??
    db
      .prepare<[number, number], { action: string }>("SELECT DISTINCT action FROM event_rollups WHERE dim = 'rule' AND bucket >= ? AND bucket < ?")
      .all(firstDay, days[days.length - 1] + DAY_MS)
      .map((r) => r.action);
  const list = db.prepare<[string, number, string, number], { key: string }>(
    `SELECT key FROM event_rollups WHERE ${RANKED_WHERE} AND dim = ? AND bucket = ? AND action = ? ORDER BY n DESC LIMIT ?`,
  );
  const last = db.prepare<[string, number, string, number], { n: number }>(
    `SELECT n FROM event_rollups WHERE ${RANKED_WHERE} AND dim = ? AND bucket = ? AND action = ? ORDER BY n DESC LIMIT 1 OFFSET ?`,
  );
  // Two tries: a longer list lowers T only where the day's counters are not all 1s and 2s.
  for (let m = Math.max(100, 4 * limit), tries = 0; tries < 2; m *= 8, tries++) {
    const candidates = new Set<string>();
    let threshold = 0;
    for (const day of days) {
      for (const action of actions) {
        for (const r of list.all(stored, day, action, m)) candidates.add(r.key);
        // The largest count not read: what a key outside the list can have on that day.
        threshold += last.get(stored, day, action, m)?.n ?? 0;
      }
    }
    if (candidates.size > 20_000) return undefined;
    const rows = exactRows(db, spans, [...candidates], { ...q, limit: MAX_ROLLUP_LIMIT });
    const totals = new Map<string, number>();
    for (const r of rows) totals.set(r.key, (totals.get(r.key) ?? 0) + r.n);
    const sorted = [...totals.values()].sort((a, b) => b - a);
    const kth = sorted.length < limit ? 0 : sorted[limit - 1];
    if (threshold === 0 || threshold < kth) return topRollupRows(rows, q);
  }
  return undefined;
}
