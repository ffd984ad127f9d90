// SQLite schema and its migrations. `schema_version` holds the number of the
// last migration applied; each migration runs in its own transaction, so a
// crash mid-upgrade leaves the previous version intact. Never edit a shipped
// migration: append a new one.

import type Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';
import { EVENT_COLUMNS } from './events-file.js';

export const MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE bans (
    cidr TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    offences INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX bans_by_expiry ON bans (expires_at);

  CREATE TABLE offences (
    cidr TEXT PRIMARY KEY,
    offences INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    quiet_since INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX offences_by_quiet ON offences (quiet_since);

  CREATE TABLE lists (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE list_entries (
    list TEXT NOT NULL,
    entry TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (list, entry)
  ) WITHOUT ROWID;
  CREATE INDEX list_entries_by_expiry ON list_entries (expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE greylist (
    key TEXT PRIMARY KEY,
    client_ip TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    passed_at INTEGER,
    attempts INTEGER NOT NULL,
    passes INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX greylist_by_client ON greylist (client_ip);
  CREATE INDEX greylist_by_expiry ON greylist (expires_at);

  CREATE TABLE grey_clients (
    client TEXT PRIMARY KEY,
    passes INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX rate_buckets_by_expiry ON rate_buckets (expires_at);

  CREATE TABLE events (
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
  CREATE INDEX events_by_ts ON events (ts);
  CREATE INDEX events_by_ip ON events (client_ip, ts);
  CREATE INDEX events_by_rule ON events (rule, ts);
  CREATE INDEX events_by_from_domain ON events (from_domain, ts);

  -- Every ban/list change, so other processes on the same file (the CLI, a
  -- second daemon) can follow them. AUTOINCREMENT: sequence numbers never go
  -- back, even after old rows are pruned.
  CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    origin TEXT NOT NULL,
    change TEXT NOT NULL
  );
  CREATE INDEX changes_by_ts ON changes (ts);
  `,
  // 2: no query uses events_by_from_domain (a domain query is an OR with a
  // LIKE on rcpt_domains, so it walks events_by_ts); it only cost each insert.
  `
  DROP INDEX IF EXISTS events_by_from_domain;
  `,
  // 3: decision events live in their own file (events-file.ts), written by a
  // thread that must not hold this file's write lock. migrate() has copied
  // the rows there before this runs.
  `
  DROP TABLE IF EXISTS events;
  `,
  // 4: greylist_by_client made every greylist write dirty a second random
  // b-tree page (SQLite rewrites an index entry whenever its column is in
  // the SET, changed or not): ~14 µs of each greylist decision. Its one
  // user, dropping a client's entries (a spamtrap hit, `frontline grey del
  // IP`), is rare and now scans the table in chunks, as Redis already did.
  `
  DROP INDEX IF EXISTS greylist_by_client;
  `,
  // 5: every greylist attempt and every rate-limit take moves its row's
  // expires_at, so the expiry indexes cost each write two more b-tree pages
  // (the old entry's, somewhere; the new one's, at the hot right edge):
  // in a two-process microbenchmark 45 → 17 µs of CPU per greylist upsert
  // without it. Their one user, the purge every 5 minutes, walks the
  // tables in key order in chunks instead.
  `
  DROP INDEX IF EXISTS greylist_by_expiry;
  DROP INDEX IF EXISTS rate_buckets_by_expiry;
  `,
  // 6: learned correspondents survive a restart (they were kept in memory).
  // A write per recipient of an authenticated client, a read per checked
  // message: the key is the primary key; the expiry index serves the purge
  // and the trim (expiry order = order last seen, the TTL being one).
  `
  CREATE TABLE correspondents (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX correspondents_by_expiry ON correspondents (expires_at);
  `,
  // 7: sasl_spread (the client addresses, networks, countries and recipients
  // of each SASL user, src/checks/sasl-spread.ts) and held users. A spread
  // write per authenticated recipient: keyed by user first, so a user's
  // counts read one range; the expiry index serves the purge.
  `
  CREATE TABLE spread (
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user, kind, value)
  ) WITHOUT ROWID;
  CREATE INDEX spread_by_expiry ON spread (expires_at);
  CREATE TABLE user_holds (
    user TEXT PRIMARY KEY,
    held_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];

/** The migration that moves decision events out of this file. */
const EVENTS_MOVED = 3;

export function schemaVersion(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)');
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
  return row.v ?? 0;
}

/** Refuse a database written by a newer frontline (before anything else is opened or created for it). */
export function refuseNewer(db: Database.Database): void {
  const current = schemaVersion(db);
  if (current > MIGRATIONS.length) {
    throw new StoreUnavailableError(`database schema version ${current} is newer than this frontline knows (${MIGRATIONS.length}); upgrade frontline`);
  }
}

export interface MigrateOptions {
  /** The events file (made by openEventsDb) that an older database's events are moved to; absent for in-memory databases. */
  eventsPath?: string;
  /** Told how many events were moved, when some were. */
  onEventsMoved?: (rows: number, ms: number) => void;
}

/** Bring the database to the latest schema; refuses a database written by a newer frontline. */
export function migrate(db: Database.Database, now: number, opts: MigrateOptions = {}): number {
  refuseNewer(db);
  const record = db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
  if (schemaVersion(db) === 0) {
    // A new database: every migration in one transaction, so it never holds
    // (committed) what a later migration drops — the events table above all.
    db.transaction(() => {
      if (schemaVersion(db) > 0) return; // another process made it meanwhile: migrate below
      MIGRATIONS.forEach((sql, i) => {
        db.exec(sql);
        record.run(i + 1, now);
      });
    }).immediate();
  }
  for (let v = schemaVersion(db) + 1; v <= MIGRATIONS.length; v++) {
    if (v === EVENTS_MOVED && opts.eventsPath !== undefined) moveEvents(db, opts);
    db.transaction(() => {
      // Re-check inside the write transaction: another process may have migrated meanwhile.
      if (schemaVersion(db) >= v) return;
      db.exec(MIGRATIONS[v - 1]);
      record.run(v, now);
    }).immediate();
  }
  return MIGRATIONS.length;
}

function hasEventsTable(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'events'").get() !== undefined;
}

/**
 * Copy the events of a database older than EVENTS_MOVED into the events
 * file, ids included, in a transaction of their own that commits before the
 * table is dropped: SQLite commits attached WAL databases one by one, so a
 * crash in between leaves the rows in both files, and the next open copies
 * again (INSERT OR IGNORE: same ids, no duplicates) — never in neither.
 */
function moveEvents(db: Database.Database, opts: MigrateOptions): void {
  if (!hasEventsTable(db)) return;
  const t0 = performance.now();
  db.prepare('ATTACH DATABASE ? AS moved_events').run(opts.eventsPath);
  try {
    const rows = db
      .transaction((): number => {
        if (schemaVersion(db) >= EVENTS_MOVED || !hasEventsTable(db)) return 0; // another process moved them
        return db.prepare(`INSERT OR IGNORE INTO moved_events.events (${EVENT_COLUMNS}) SELECT ${EVENT_COLUMNS} FROM main.events`).run().changes;
      })
      .immediate();
    if (rows > 0) opts.onEventsMoved?.(rows, performance.now() - t0);
  } finally {
    db.exec('DETACH DATABASE moved_events');
  }
}
