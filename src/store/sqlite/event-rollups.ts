// The decision log's rollups in the SQLite events file (counters defined in
// ../event-rollups.ts): one table, written by the EventSink in the same
// transaction as the events it counts, so a committed event is always
// counted exactly once; pruned with the events. A file made before the
// rollups existed is counted once, when it is first opened (backfill).

import type Database from 'better-sqlite3';
import { HOUR_MS, RollupCounter, rollupLimit, topRollupRows, bucketOf, type RollupIncrement, type RollupQuery, type RollupRow } from '../event-rollups.js';
import type { DecisionEvent } from '../types.js';

export const ROLLUPS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS event_rollups (
    dim TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dim, bucket, key, action)
  ) WITHOUT ROWID;
`;

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

/** Answer a RollupQuery from the table (see RollupQuery for the shape). */
export function queryRollups(db: Database.Database, q: RollupQuery): RollupRow[] {
  const from = bucketOf(q.dim, q.since);
  const to = q.until === undefined ? Number.MAX_SAFE_INTEGER : bucketOf(q.dim, q.until);
  const actions = q.actions === undefined ? undefined : JSON.stringify(q.actions);
  const actionWhere = actions === undefined ? '' : ' AND action IN (SELECT value FROM json_each(?))';
  const args: Array<string | number> = [q.dim, from, to];
  if (actions !== undefined) args.push(actions);
  if (q.dim === 'minute') {
    return db
      .prepare<unknown[], RollupRow>(`SELECT bucket, key, action, n FROM event_rollups WHERE dim = ? AND bucket >= ? AND bucket <= ?${actionWhere} ORDER BY bucket, key, action`)
      .all(...args);
  }
  return db.transaction(() => {
    const keys = db
      .prepare<unknown[], { key: string }>(
        `SELECT key FROM event_rollups WHERE dim = ? AND bucket >= ? AND bucket <= ?${actionWhere}
         GROUP BY key ORDER BY sum(n) DESC, key LIMIT ?`,
      )
      .all(...args, rollupLimit(q))
      .map((r) => r.key);
    if (keys.length === 0) return [];
    const rows = db
      .prepare<unknown[], { key: string; action: string; n: number }>(
        `SELECT key, action, sum(n) AS n FROM event_rollups
         WHERE dim = ? AND bucket >= ? AND bucket <= ?${actionWhere} AND key IN (SELECT value FROM json_each(?))
         GROUP BY key, action`,
      )
      .all(...args, JSON.stringify(keys));
    return topRollupRows(rows, q);
  })();
}
