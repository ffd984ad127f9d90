// The embedded backend: two SQLite files (better-sqlite3, WAL) — the store's,
// and the decision log's next to it (`x.db` → `x.events.db`, events-file.ts).
//
// Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (in
// the OS page cache) before better-sqlite3 returns, so every acknowledged
// change survives the death of the process, SIGKILL included; only an OS
// crash or power loss can drop the last commits. synchronous=FULL (config)
// adds an fsync per commit for that case. Decision events are the exception:
// records, not acknowledgements, they are committed in batches (see
// EVENT_FLUSH_MS), so a SIGKILL can lose the last 200 ms of them.
//
// Decision events are written by a worker thread with its own connection to
// the events file (event-writer.ts, event-thread.ts): the event loop only
// queues them, and the thread's commits take the events file's lock, never
// this file's. Reads of the log go through a second connection of this
// thread to the events file, not an ATTACH on the main one: a connection
// with the events file attached takes the write lock of *both* files at
// BEGIN IMMEDIATE, so every ban, list or rate-limit commit would wait for
// the thread's batches. (Reading here rather than in the thread also spares
// shipping up to 10,000 rows back through postMessage; WAL readers never wait
// for a writer.)
//
// Several processes may open the same file (the daemon and the CLI): writes
// take the lock with BEGIN IMMEDIATE and wait up to busy_timeout, and each
// process follows the others' ban and list changes through the `changes`
// table, polled every `pollMs`.

import Database from 'better-sqlite3';
import type { Worker } from 'node:worker_threads';
import { banSeconds, offenceAfterUnban, planBan, type BanPlan, type OffenceRecord } from '../bans.js';
import { GREY_GATHER_ROWS, GREY_GATHER_TURNS } from '../grey-gather.js';
import { BaseStore, checkGreyEntry, checkRateRequest, checkSpreadRecord, checkUserHold } from '../base-store.js';
import { checkListKind } from '../entries.js';
import { InvalidEntryError, StoreUnavailableError } from '../errors.js';
import { checkEvent, eventLimit, eventMatcher } from '../events.js';
import { domainOf } from '../../core/address.js';
import { cidrTextPrefix, likeEscape } from './event-query.js';
import { attemptOf } from '../greylist.js';
import { canonicalIp, networkContains, parseNetwork } from '../ip.js';
import type {
  BanPageReader,
  BanRecordReader,
  Ban,
  BanInput,
  DecisionEvent,
  LoggedDecision,
  EventQuery,
  GreyAttempt,
  GreyEntry,
  GreyTiming,
  ListBansOptions,
  ListEntry,
  ListInfo,
  ListKind,
  PruneOptions,
  PurgeResult,
  Correspondent,
  CorrespondentKind,
  RateRequest,
  RateResult,
  SqliteStoreConfig,
  StoreChange,
  StoreDeps,
  StoreHealth,
  SpreadCounts,
  SpreadRecord,
  UserHold,
} from '../types.js';
import type { EventThreadData } from './event-thread.js';
import { EventWriter } from './event-writer.js';
import { eventsPathFor, evidenceTexts, isMemoryPath, MANY_RCPT_DOMAINS, MANY_RCPT_DOMAINS_INDEX, openEventsDb } from './events-file.js';
import { queryRollups } from './event-rollups.js';
import type { RollupQuery, RollupRow } from '../event-rollups.js';
import { isBusy, translate } from './faults.js';
import { migrate, refuseNewer } from './schema.js';

/** For tests: how the decision log's writer thread is started. */
export interface SqliteStoreInternals {
  /** Start the writer thread some other way (or fail to). */
  startEventThread?: (data: EventThreadData) => Worker;
}

/** Bans per page of scanBans (one synchronous read each). */
const SCAN_PAGE = 50_000;
/** Bans per page of scanBanRecords: whole rows and a Ban object each, so fewer than SCAN_PAGE per synchronous read. */
const RECORD_PAGE = 5_000;
/** Keys per page of countBans (counted in SQL, nothing built per row). */
const COUNT_PAGE = 10_000;
/** Change rows older than this are pruned; a process that lagged longer reloads everything. */
const CHANGES_KEEP_MS = 10 * 60 * 1000;
const GREY_GET_SQL = 'SELECT * FROM greylist WHERE key = ?';
const GREY_PUT_SQL = `INSERT INTO greylist (key, client_ip, first_seen, last_seen, passed_at, attempts, passes, expires_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (key) DO UPDATE SET client_ip = excluded.client_ip, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
    passed_at = excluded.passed_at, attempts = excluded.attempts, passes = excluded.passes, expires_at = excluded.expires_at`;
/** Rows read per transaction when a table without the index for the job is walked (deleteScanning; the event loop runs between chunks). */
const SCAN_ROWS = 2000;
/** A greylist commit that finds the write lock taken tries again this much later (ms), until busy_timeout has passed. */
const GREY_RETRY_MS = 1;
/**
 * …except while it has waited less than this (ms): then at the event loop's
 * next turn. Another process's commit holds the lock for a fraction of a
 * millisecond, and a 1 ms timer left the whole worker idle meanwhile (8% of
 * commits found the lock taken with two workers: ~10% of each one's time).
 */
const GREY_SPIN_MS = 0.5;
/**
 * The decision log's writer thread runs at this nice value (Linux): its
 * commits can wait, the event loops answering Postfix cannot. Policy-server
 * bench, six runs each: p99 5.27–5.54 ms at 0, 4.62–5.15 ms at 19, and 6%
 * more decisions/s (docs/performance.md). On a CPU saturated for long it
 * falls behind; past EVENT_BACKLOG_MAX events decisions go unrecorded (logged).
 */
export const WRITER_NICE = 19;
/** How often the decision log's writer thread checkpoints the store file's WAL (docs/store.md). */
const CHECKPOINT_MS = 1000;
/** SQLite's default automatic checkpoint threshold, in WAL pages: what a store without that thread keeps. */
const AUTOCHECKPOINT_PAGES = 1000;

interface BanRow {
  cidr: string;
  reason: string;
  category: string;
  source: string;
  first_seen: number;
  created_at: number;
  expires_at: number;
  offences: number;
}

interface GreyRow {
  key: string;
  client_ip: string;
  first_seen: number;
  last_seen: number;
  passed_at: number | null;
  attempts: number;
  passes: number;
  expires_at: number;
}

interface EventRow {
  id: number;
  ts: number;
  session_id: string | null;
  client_ip: string;
  helo: string | null;
  mail_from: string | null;
  rcpts: string;
  stage: string;
  action: string;
  code: number | null;
  rule: string;
  text: string | null;
  evidence: string;
  score: number | null;
  would_have: string | null;
  client_ptr: string | null;
  sasl_user: string | null;
  rcpt_count: number | null;
}

/** How long, and up to how many, correspondent records wait to be committed together. */
const CORRESPONDENT_GATHER_MS = 1000;
const CORRESPONDENT_GATHER_ROWS = 500;

interface CorrespondentRow {
  key: string;
  kind: CorrespondentKind;
  count: number;
  first_seen: number;
  last_seen: number;
  expires_at: number;
}

/**
 * Records of one key gathered for one commit: from `first` to `now`, each
 * while the row was unexpired (its expiry, at least `exp` so far, after the
 * record's time), so one upsert adding `waiters.length` leaves the row as
 * that many upserts would. A learned domain recurs (every recipient of
 * an authenticated user at one company): one upsert instead of hundreds.
 */
interface CorrespondentRun {
  key: string;
  kind: string;
  first: number;
  now: number;
  exp: number;
  waiters: CorrespondentWaiter[];
  /** Records without a waiter (correspondentNote), and whom to tell if their commit fails. */
  notes: number;
  onError?: (err: unknown) => void;
}

interface CorrespondentWaiter {
  now: number;
  /** Records of the run before this one. */
  at: number;
  resolve: (c: Correspondent) => void;
  reject: (e: unknown) => void;
}

interface HoldRow {
  user: string;
  held_by: string;
  reason: string;
  created_at: number;
}

function holdFromRow(r: HoldRow): UserHold {
  return { user: r.user, by: r.held_by, reason: r.reason, createdAt: r.created_at };
}

function correspondentFromRow(r: CorrespondentRow): Correspondent {
  return { key: r.key, kind: r.kind, count: r.count, firstSeen: r.first_seen, lastSeen: r.last_seen, expiresAt: r.expires_at };
}

interface ListEntryRow {
  list: string;
  entry: string;
  source: string;
  added_at: number;
  expires_at: number | null;
  kind: ListKind;
}

const BAN_COLUMNS = 'cidr, reason, category, source, first_seen, created_at, expires_at, offences';
type BanTuple = [string, string, string, string, number, number, number, number];

function banFromTuple(t: BanTuple): Ban {
  return { cidr: t[0], reason: t[1], category: t[2], source: t[3], firstSeen: t[4], createdAt: t[5], expiresAt: t[6], offences: t[7] };
}

function banFromRow(r: BanRow): Ban {
  return {
    cidr: r.cidr,
    reason: r.reason,
    category: r.category,
    source: r.source,
    firstSeen: r.first_seen,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    offences: r.offences,
  };
}

function greyFromRow(r: GreyRow): GreyEntry {
  const e: GreyEntry = {
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    attempts: r.attempts,
    passes: r.passes,
    clientIp: r.client_ip,
    expiresAt: r.expires_at,
  };
  if (r.passed_at !== null) e.passedAt = r.passed_at;
  return e;
}

function entryFromRow(r: ListEntryRow): ListEntry {
  const e: ListEntry = { list: r.list, kind: r.kind, entry: r.entry, source: r.source, addedAt: r.added_at };
  if (r.expires_at !== null) e.expiresAt = r.expires_at;
  return e;
}

/** An event from its row; `evidence` is the row's evidence as JSON array text (evidenceTexts). */
function eventFromRow(r: EventRow, evidence: string): DecisionEvent {
  const e: DecisionEvent = {
    id: String(r.id),
    ts: r.ts,
    clientIp: r.client_ip,
    rcpts: JSON.parse(r.rcpts) as string[],
    stage: r.stage,
    action: r.action,
    rule: r.rule,
    evidence: JSON.parse(evidence) as DecisionEvent['evidence'],
  };
  if (r.session_id !== null) e.sessionId = r.session_id;
  if (r.helo !== null) e.helo = r.helo;
  if (r.mail_from !== null) e.from = r.mail_from;
  if (r.code !== null) e.code = r.code;
  if (r.text !== null) e.text = r.text;
  if (r.score !== null) e.score = r.score;
  if (r.would_have !== null) e.wouldHave = JSON.parse(r.would_have) as DecisionEvent['wouldHave'];
  if (r.client_ptr !== null) e.clientPtr = r.client_ptr;
  if (r.sasl_user !== null) e.saslUser = r.sasl_user;
  if (r.rcpt_count !== null) e.rcptCount = r.rcpt_count;
  return e;
}

/**
 * A greylist write waiting for its commit, and its caller: an entry
 * (greyPut), or an attempt (greyAttempt) decided inside the commit's
 * transaction, from the row as it is once the write lock is held — so two
 * processes on one file that see the same triplet at once both count.
 */
type GreyQueued = { key: string; reject: (e: unknown) => void } & (
  | { entry: GreyEntry; resolve: () => void }
  | { attempt: { clientIp: string; now: number; timing: GreyTiming }; outcome?: GreyAttempt; resolve: (a: GreyAttempt) => void }
);

function greyCommitter(db: Database.Database, put: Database.Statement, get: Database.Statement<[string], GreyRow>): Database.Transaction<(batch: GreyQueued[]) => void> {
  return db.transaction((batch: GreyQueued[]) => {
    for (const q of batch) {
      let g: GreyEntry;
      if ('entry' in q) g = q.entry;
      else {
        const row = get.get(q.key);
        const a = attemptOf(row && greyFromRow(row), q.attempt.clientIp, q.attempt.now, q.attempt.timing);
        g = a.entry;
        q.outcome = { outcome: a.outcome, seconds: a.seconds };
      }
      put.run(q.key, g.clientIp, g.firstSeen, g.lastSeen, g.passedAt ?? null, g.attempts, g.passes, g.expiresAt);
    }
  });
}

export class SqliteStore extends BaseStore {
  readonly backend = 'sqlite' as const;
  private readonly db: Database.Database;
  /** This thread's connection to the events file: queries (and writes when there is no writer thread). */
  private readonly evdb: Database.Database;
  /** The events file: `<name>.events.<ext>` next to the store's file, or ':memory:'. */
  readonly eventsPath: string;
  private readonly events: EventWriter;
  private readonly st: ReturnType<SqliteStore['prepare']>;
  private lastSeq = 0;
  private pollTimer?: NodeJS.Timeout;
  /** Greylist entries waiting for the commit at the end of this tick. */
  private greyQueue: GreyQueued[] = [];
  private corrTimer?: NodeJS.Timeout;
  /** Records waiting for the next commit, as runs of one key (CorrespondentRun); `corrRuns` finds a key's open run. */
  private corrQueue: CorrespondentRun[] = [];
  private corrRuns = new Map<string, CorrespondentRun>();
  private corrWaiting = 0;
  /** Greylist entries written but not yet committed, by key: greyGet answers from here first. */
  private readonly greyPending = new Map<string, GreyEntry>();
  private flushScheduled = false;
  /** Loop turns the pending end-of-turn commit has been held to gather more entries (GREY_GATHER_TURNS). */
  private greyHeld = 0;
  /**
   * The connection greylist commits go through from the event loop: its
   * busy_timeout is 0, so when another process (a second worker, another
   * frontline on the same file) holds the write lock the commit fails at
   * once and is tried again a millisecond later by a timer, instead of
   * SQLite's busy handler sleeping the event loop 1, 2, 5… ms at a time
   * (with two workers that was 7–14% of each loop's time, and the p99).
   * The main connection for an in-memory store (nobody else can hold its lock).
   */
  private readonly greyDb: Database.Database;
  /** One transaction writing a batch of queued entries: through the main connection (waits for the lock) and through greyDb (never waits). */
  private readonly greyCommit: Database.Transaction<(batch: GreyQueued[]) => void>;
  private readonly greyCommitNow: Database.Transaction<(batch: GreyQueued[]) => void>;
  /**
   * greyGet through greyDb: the connection that commits this process's
   * greylist writes keeps its page cache across its own commits, where the
   * main connection's cache is thrown away at every commit it did not make.
   */
  private readonly greyGetNow: Database.Statement<[string], GreyRow>;
  private readonly busyTimeoutMs: number;
  /** A greylist commit found the write lock taken: its retry, and since when it has been waiting. */
  private greyRetry?: { timer: NodeJS.Timeout } | { immediate: NodeJS.Immediate };
  private greyBusySince?: number;
  private closed = false;
  private closing?: Promise<void>;

  private constructor(
    private readonly cfg: SqliteStoreConfig,
    deps: StoreDeps,
    internals: SqliteStoreInternals,
  ) {
    super(deps);
    const busyTimeoutMs = Math.max(0, Math.floor(cfg.busyTimeoutMs ?? 5000));
    this.busyTimeoutMs = busyTimeoutMs;
    const synchronous = cfg.synchronous === 'FULL' ? 'FULL' : 'NORMAL';
    const memory = isMemoryPath(cfg.path);
    this.eventsPath = memory ? ':memory:' : eventsPathFor(cfg.path);
    let db: Database.Database | undefined;
    let evdb: Database.Database | undefined;
    let greyDb: Database.Database | undefined;
    try {
      db = new Database(cfg.path);
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma('foreign_keys = ON');
      refuseNewer(db);
      evdb = openEventsDb(this.eventsPath, { busyTimeoutMs, synchronous });
      migrate(db, this.clock.now(), {
        eventsPath: memory ? undefined : this.eventsPath,
        onEventsMoved: (rows, ms) => this.logger.info({ rows, ms: Math.round(ms), file: this.eventsPath }, 'decision events moved to their own file'),
      });
      if (memory) greyDb = db;
      else {
        greyDb = new Database(cfg.path);
        greyDb.pragma('busy_timeout = 0');
        greyDb.pragma(`synchronous = ${synchronous}`);
      }
    } catch (e) {
      if (greyDb !== db) greyDb?.close();
      db?.close();
      evdb?.close();
      throw translate(e);
    }
    this.db = db;
    this.evdb = evdb;
    this.greyDb = greyDb;
    this.events = new EventWriter({
      path: this.eventsPath,
      db: evdb,
      file: { busyTimeoutMs, synchronous },
      nice: cfg.writerNice ?? WRITER_NICE,
      logger: this.logger,
      inProcess: memory,
      startThread: internals.startEventThread,
      ...(memory ? {} : { checkpoint: { path: cfg.path, everyMs: CHECKPOINT_MS } }),
      // SQLite's own checkpoints run inside the commit that crosses the threshold, on this event
      // loop; while the writer thread checkpoints, they are off (and back on if it dies).
      onCheckpointer: (active) => {
        if (this.closed) return;
        try {
          for (const c of new Set([this.db, this.greyDb])) c.pragma(`wal_autocheckpoint = ${active ? 0 : AUTOCHECKPOINT_PAGES}`);
        } catch {
          // a closing store: nothing to checkpoint any more
        }
      },
    });
    this.st = this.prepare();
    this.greyGetNow = this.greyDb === this.db ? this.st.greyGet : this.greyDb.prepare<[string], GreyRow>(GREY_GET_SQL);
    this.greyCommit = greyCommitter(this.db, this.st.greyPut, this.st.greyGet);
    this.greyCommitNow = this.greyDb === this.db ? this.greyCommit : greyCommitter(this.greyDb, this.greyDb.prepare(GREY_PUT_SQL), this.greyGetNow);
  }

  static async open(cfg: SqliteStoreConfig, deps: StoreDeps = {}, internals: SqliteStoreInternals = {}): Promise<SqliteStore> {
    const store = new SqliteStore(cfg, deps, internals);
    store.reload();
    const poll = cfg.pollMs ?? 500;
    if (poll > 0) {
      store.pollTimer = setInterval(() => store.poll(), poll);
      store.pollTimer.unref();
    }
    store.startPurgeTimer(deps.purgeIntervalSeconds);
    return store;
  }

  private prepare() {
    const db = this.db;
    return {
      getBan: db.prepare<[string], BanRow>('SELECT * FROM bans WHERE cidr = ?'),
      putBan: db.prepare(
        `INSERT INTO bans (cidr, reason, category, source, first_seen, created_at, expires_at, offences)
         VALUES (@cidr, @reason, @category, @source, @firstSeen, @createdAt, @expiresAt, @offences)
         ON CONFLICT (cidr) DO UPDATE SET reason = excluded.reason, category = excluded.category, source = excluded.source,
           first_seen = excluded.first_seen, created_at = excluded.created_at, expires_at = excluded.expires_at, offences = excluded.offences`,
      ),
      delBan: db.prepare<[string]>('DELETE FROM bans WHERE cidr = ?'),
      activeBans: db.prepare<[number], { cidr: string; expires_at: number }>('SELECT cidr, expires_at FROM bans WHERE expires_at > ?'),
      // Keyset paging on the expiry index, which holds the key too (WITHOUT ROWID): a covering
      // range scan of narrow entries, never the rows with their reasons, and no OFFSET walk.
      scanBansFirst: db.prepare<[number, number], [string, number]>('SELECT cidr, expires_at FROM bans WHERE expires_at > ? ORDER BY expires_at, cidr LIMIT ?').raw(true),
      scanBansAfter: db.prepare<[number, string, number], [string, number]>('SELECT cidr, expires_at FROM bans WHERE (expires_at, cidr) > (?, ?) ORDER BY expires_at, cidr LIMIT ?').raw(true),
      // countBans: a page is the keys after the last one up to COUNT_PAGE further on (a bounded
      // OFFSET inside the page), counted by category; the last page has no upper end.
      countBansEnd: db.prepare<[string, number], { cidr: string }>('SELECT cidr FROM bans WHERE cidr > ? ORDER BY cidr LIMIT 1 OFFSET ?'),
      countBansUpTo: db.prepare<[string, string, number], [string, number]>(
        'SELECT category, COUNT(*) FROM bans WHERE cidr > ? AND cidr <= ? AND +expires_at > ? GROUP BY category',
      ).raw(true),
      countBansRest: db.prepare<[string, number], [string, number]>('SELECT category, COUNT(*) FROM bans WHERE cidr > ? AND +expires_at > ? GROUP BY category').raw(true),
      // scanBanRecords: keyset paging on the primary key (the table itself, WITHOUT ROWID): a row
      // changed during the scan keeps its place, so it comes once. `+expires_at` keeps the planner
      // off the expiry index, which would read a range in another order and sort it for every
      // page. Rows as arrays (raw): no row object made only to be copied into the Ban.
      scanBanRowsFirst: db.prepare<[number, number], BanTuple>(`SELECT ${BAN_COLUMNS} FROM bans WHERE +expires_at > ? ORDER BY cidr LIMIT ?`).raw(true),
      scanBanRowsAfter: db.prepare<[string, number, number], BanTuple>(`SELECT ${BAN_COLUMNS} FROM bans WHERE cidr > ? AND +expires_at > ? ORDER BY cidr LIMIT ?`).raw(true),
      listBans: db.prepare<[number, number, number], BanRow>('SELECT * FROM bans WHERE expires_at > ? ORDER BY expires_at DESC, cidr LIMIT ? OFFSET ?'),
      listBansCat: db.prepare<[number, string, number, number], BanRow>(
        'SELECT * FROM bans WHERE expires_at > ? AND category = ? ORDER BY expires_at DESC, cidr LIMIT ? OFFSET ?',
      ),
      getOffence: db.prepare<[string], { offences: number; first_seen: number; quiet_since: number }>(
        'SELECT offences, first_seen, quiet_since FROM offences WHERE cidr = ?',
      ),
      putOffence: db.prepare(
        `INSERT INTO offences (cidr, offences, first_seen, quiet_since) VALUES (?, ?, ?, ?)
         ON CONFLICT (cidr) DO UPDATE SET offences = excluded.offences, first_seen = excluded.first_seen, quiet_since = excluded.quiet_since`,
      ),
      // `n` records of one key from @first to @now (a CorrespondentRun): as n upserts one after another would leave the row.
      corrRecord: db.prepare<[{ key: string; kind: string; first: number; now: number; exp: number; n: number }], CorrespondentRow>(
        `INSERT INTO correspondents (key, kind, count, first_seen, last_seen, expires_at) VALUES (@key, @kind, @n, @first, @now, @exp)
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN expires_at > @first THEN count + @n ELSE @n END,
           first_seen = CASE WHEN expires_at > @first THEN first_seen ELSE @first END,
           kind = @kind,
           last_seen = @now,
           expires_at = CASE WHEN expires_at > @first AND expires_at > @exp THEN expires_at ELSE @exp END
         RETURNING *`,
      ),
      corrGet: db.prepare<[string, number], CorrespondentRow>('SELECT * FROM correspondents WHERE key = ? AND expires_at > ?'),
      getListKind: db.prepare<[string], { kind: ListKind }>('SELECT kind FROM lists WHERE name = ?'),
      putList: db.prepare<[string, string]>('INSERT INTO lists (name, kind) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      putEntry: db.prepare(
        `INSERT INTO list_entries (list, entry, source, added_at, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (list, entry) DO UPDATE SET source = excluded.source, added_at = excluded.added_at, expires_at = excluded.expires_at`,
      ),
      delEntry: db.prepare<[string, string]>('DELETE FROM list_entries WHERE list = ? AND entry = ?'),
      listEntries: db.prepare<[string, number], ListEntryRow>(
        `SELECT e.*, l.kind FROM list_entries e JOIN lists l ON l.name = e.list
         WHERE e.list = ? AND (e.expires_at IS NULL OR e.expires_at > ?) ORDER BY e.entry`,
      ),
      allEntries: db.prepare<[number], ListEntryRow>(
        'SELECT e.*, l.kind FROM list_entries e JOIN lists l ON l.name = e.list WHERE e.expires_at IS NULL OR e.expires_at > ?',
      ),
      allLists: db.prepare<[], { name: string; kind: ListKind }>('SELECT name, kind FROM lists'),
      listNames: db.prepare<[number], ListInfo>(
        `SELECT l.name AS name, l.kind AS kind,
           (SELECT count(*) FROM list_entries e WHERE e.list = l.name AND (e.expires_at IS NULL OR e.expires_at > ?)) AS entries
         FROM lists l ORDER BY l.name`,
      ),
      greyGet: db.prepare<[string], GreyRow>(GREY_GET_SQL),
      greyPut: db.prepare(GREY_PUT_SQL),
      greyDel: db.prepare<[string]>('DELETE FROM greylist WHERE key = ?'),
      greyList: db.prepare<[number, number], GreyRow>('SELECT * FROM greylist WHERE expires_at > ? ORDER BY last_seen DESC, key LIMIT ?'),
      greyAfter: db.prepare<[string, number], { key: string; client_ip: string; expires_at: number }>(
        'SELECT key, client_ip, expires_at FROM greylist WHERE key > ? ORDER BY key LIMIT ?',
      ),
      greyClientGet: db.prepare<[string], { passes: number; expires_at: number }>('SELECT passes, expires_at FROM grey_clients WHERE client = ?'),
      greyClientPut: db.prepare<[string, number, number, number]>(
        `INSERT INTO grey_clients (client, passes, updated_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (client) DO UPDATE SET passes = excluded.passes, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      rateGet: db.prepare<[string], { tokens: number; updated_at: number }>('SELECT tokens, updated_at FROM rate_buckets WHERE key = ?'),
      rateAfter: db.prepare<[string, number], { key: string; expires_at: number }>('SELECT key, expires_at FROM rate_buckets WHERE key > ? ORDER BY key LIMIT ?'),
      rateDel: db.prepare<[string]>('DELETE FROM rate_buckets WHERE key = ?'),
      ratePut: db.prepare<[string, number, number, number]>(
        `INSERT INTO rate_buckets (key, tokens, updated_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      spreadPut: db.prepare<[{ user: string; kind: string; value: string; now: number; exp: number }]>(
        `INSERT INTO spread (user, kind, value, first_seen, last_seen, expires_at) VALUES (@user, @kind, @value, @now, @now, @exp)
         ON CONFLICT (user, kind, value) DO UPDATE SET
           first_seen = CASE WHEN expires_at > @now THEN first_seen ELSE @now END,
           last_seen = @now,
           expires_at = @exp`,
      ),
      spreadCount: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM spread WHERE user = ? AND kind = ?'),
      spreadTrim: db.prepare<[string, string, string, string, number]>(
        'DELETE FROM spread WHERE user = ? AND kind = ? AND value IN (SELECT value FROM spread WHERE user = ? AND kind = ? ORDER BY last_seen DESC, value LIMIT -1 OFFSET ?)',
      ),
      spreadCounts: db.prepare<[{ user: string; now: number; since: number; newSince: number }], { kind: string; n: number }>(
        `SELECT kind, sum(CASE WHEN kind = 'rcpt' THEN first_seen > @newSince ELSE last_seen > @since END) AS n
         FROM spread WHERE user = @user AND expires_at > @now GROUP BY kind`,
      ),
      holdGet: db.prepare<[string], HoldRow>('SELECT * FROM user_holds WHERE user = ?'),
      holdPut: db.prepare<[string, string, string, number]>('INSERT INTO user_holds (user, held_by, reason, created_at) VALUES (?, ?, ?, ?)'),
      changePut: db.prepare<[number, string, string]>('INSERT INTO changes (ts, origin, change) VALUES (?, ?, ?)'),
      changesAfter: db.prepare<[number], { seq: number; origin: string; change: string }>(
        'SELECT seq, origin, change FROM changes WHERE seq > ? ORDER BY seq LIMIT 5000',
      ),
      changesMin: db.prepare<[], { lo: number | null; hi: number | null }>('SELECT min(seq) AS lo, max(seq) AS hi FROM changes'),
    };
  }

  /** Run `fn`, turning medium faults into StoreUnavailableError. */
  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translate(e);
    }
  }

  private record(change: StoreChange, now: number): void {
    this.st.changePut.run(now, this.origin, JSON.stringify(change));
  }

  // ---- index: full load and change following

  /** Rebuild the in-memory index from the tables, consistently with the change sequence. */
  private reload(): void {
    const fresh = this.beginReload();
    try {
      this.run(() =>
        this.db.transaction(() => {
          const now = this.clock.now();
          for (const r of this.st.activeBans.iterate(now)) fresh.setBan(r.cidr, r.expires_at);
          for (const l of this.st.allLists.all()) fresh.defineList(l.name, l.kind);
          for (const r of this.st.allEntries.iterate(now)) fresh.listAdd(r.list, r.kind, r.entry, r.expires_at ?? undefined);
          this.lastSeq = this.st.changesMin.get()?.hi ?? 0;
        })(),
      );
    } catch (e) {
      this.finishReload(undefined);
      throw e;
    }
    this.finishReload(fresh);
  }

  /** Apply changes other processes wrote since the last look. */
  private poll(): void {
    if (this.closed) return;
    try {
      const span = this.st.changesMin.get();
      if (span?.lo != null && span.lo > this.lastSeq + 1 && this.lastSeq > 0) {
        this.logger.warn({ lastSeq: this.lastSeq, oldest: span.lo }, 'store fell behind the change table; reloading the index');
        this.reload();
        return;
      }
      for (;;) {
        const rows = this.st.changesAfter.all(this.lastSeq);
        for (const r of rows) {
          this.lastSeq = r.seq;
          if (r.origin !== this.origin) this.changed(JSON.parse(r.change) as StoreChange);
        }
        if (rows.length < 5000) break;
      }
    } catch (e) {
      this.logger.warn({ err: String(translate(e)) }, 'store change poll failed');
    }
  }

  // ---- bans

  protected async writeBan(cidr: string, input: BanInput, now: number): Promise<BanPlan> {
    return this.run(() =>
      this.db
        .transaction((): BanPlan => {
          const row = this.st.getBan.get(cidr);
          const off = this.st.getOffence.get(cidr);
          const offence: OffenceRecord | undefined = off && { offences: off.offences, firstSeen: off.first_seen, quietSince: off.quiet_since };
          const plan = planBan({
            now,
            cidr,
            input,
            policy: this.policy,
            active: row && banFromRow(row),
            offence,
            seconds: (n) => banSeconds(n, this.policy, this.random),
          });
          if (plan.changed) {
            this.st.putBan.run(plan.ban);
            this.st.putOffence.run(cidr, plan.offence.offences, plan.offence.firstSeen, plan.offence.quietSince);
            this.record({ kind: 'ban', ban: plan.ban }, now);
          }
          return plan;
        })
        .immediate(),
    );
  }

  protected async writeUnban(cidr: string, now: number): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction((): boolean => {
          const row = this.st.getBan.get(cidr);
          if (!row) return false;
          this.st.delBan.run(cidr);
          if (row.expires_at <= now) return false;
          const off = this.st.getOffence.get(cidr);
          const next = offenceAfterUnban(off && { offences: off.offences, firstSeen: off.first_seen, quietSince: off.quiet_since }, now);
          if (next) this.st.putOffence.run(cidr, next.offences, next.firstSeen, next.quietSince);
          this.record({ kind: 'unban', cidr }, now);
          return true;
        })
        .immediate(),
    );
  }

  protected async readBan(cidr: string): Promise<Ban | undefined> {
    const row = this.run(() => this.st.getBan.get(cidr));
    return row && banFromRow(row);
  }

  protected async readBans(opts: ListBansOptions & { limit: number; offset: number }, now: number): Promise<Ban[]> {
    const rows = this.run(() =>
      opts.category !== undefined
        ? this.st.listBansCat.all(now, opts.category, opts.limit, opts.offset)
        : this.st.listBans.all(now, opts.limit, opts.offset),
    );
    return rows.map(banFromRow);
  }

  protected async scanBanPages(onPage: BanPageReader, now: number): Promise<number> {
    let last: [string, number] | undefined;
    let total = 0;
    for (;;) {
      const after = last;
      const rows = this.run(() => (after ? this.st.scanBansAfter.all(after[1], after[0], SCAN_PAGE) : this.st.scanBansFirst.all(now, SCAN_PAGE)));
      const cidrs: string[] = new Array<string>(rows.length);
      const expiresAt: number[] = new Array<number>(rows.length);
      for (let i = 0; i < rows.length; i++) {
        cidrs[i] = rows[i][0];
        expiresAt[i] = rows[i][1];
      }
      total += rows.length;
      if (rows.length > 0) onPage(cidrs, expiresAt);
      if (rows.length < SCAN_PAGE) return total;
      last = rows[rows.length - 1];
      // Each page is a synchronous read: let the decisions waiting on the event loop run between them.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  protected async scanBanRecordPages(onPage: BanRecordReader, now: number): Promise<number> {
    let last: string | undefined;
    let total = 0;
    for (;;) {
      const after = last;
      const rows = this.run(() => (after === undefined ? this.st.scanBanRowsFirst.all(now, RECORD_PAGE) : this.st.scanBanRowsAfter.all(after, now, RECORD_PAGE)));
      total += rows.length;
      const more = rows.length === RECORD_PAGE;
      if (rows.length > 0 && onPage(rows.map(banFromTuple)) === false) return total;
      if (!more) return total;
      last = rows[rows.length - 1][0];
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  protected override async countBanCategories(now: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    // Every CIDR sorts after '': the first page starts there.
    for (let after = ''; ; ) {
      const from = after;
      const end = this.run(() => this.st.countBansEnd.get(from, COUNT_PAGE - 1))?.cidr;
      const rows = this.run(() => (end === undefined ? this.st.countBansRest.all(from, now) : this.st.countBansUpTo.all(from, end, now)));
      for (const [category, n] of rows) counts.set(category, (counts.get(category) ?? 0) + n);
      if (end === undefined) return counts;
      after = end;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  // ---- lists

  protected async writeListAdd(e: ListEntry): Promise<void> {
    this.run(() =>
      this.db
        .transaction(() => {
          this.st.putList.run(e.list, e.kind);
          const kind = this.st.getListKind.get(e.list)?.kind;
          if (kind !== e.kind) throw new InvalidEntryError(`list "${e.list}" holds ${kind} entries, not ${e.kind}`);
          this.st.putEntry.run(e.list, e.entry, e.source, e.addedAt, e.expiresAt ?? null);
          this.record({ kind: 'list-add', entry: e }, e.addedAt);
        })
        .immediate(),
    );
  }

  protected async writeListDel(list: string, entry: string): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction((): boolean => {
          const done = this.st.delEntry.run(list, entry).changes > 0;
          if (done) this.record({ kind: 'list-del', list, entry }, this.clock.now());
          return done;
        })
        .immediate(),
    );
  }

  protected async readListKind(list: string): Promise<ListKind | undefined> {
    const k = this.run(() => this.st.getListKind.get(list))?.kind;
    return k === undefined ? undefined : checkListKind(k);
  }

  protected async readList(list: string, now: number): Promise<ListEntry[]> {
    return this.run(() => this.st.listEntries.all(list, now)).map(entryFromRow);
  }

  protected async readListNames(now: number): Promise<ListInfo[]> {
    return this.run(() => this.st.listNames.all(now));
  }

  // ---- greylisting

  async greyGet(key: string): Promise<GreyEntry | undefined> {
    const queued = this.greyPending.get(key);
    if (queued) return queued.expiresAt > this.clock.now() ? queued : undefined;
    const row = this.readGrey(key);
    return row && row.expires_at > this.clock.now() ? greyFromRow(row) : undefined;
  }

  /** greyGetNow never waits for a lock (busy_timeout 0): in the rare case a read has to, the main connection waits. */
  private readGrey(key: string): GreyRow | undefined {
    try {
      return this.greyGetNow.get(key);
    } catch (e) {
      if (!isBusy(e)) throw translate(e);
    }
    return this.run(() => this.st.greyGet.get(key));
  }

  /**
   * Committed at the end of this tick (one transaction for all concurrent
   * decisions, instead of one each); the promise settles when it is
   * committed, and greyGet sees the entry at once.
   */
  greyPut(key: string, entry: GreyEntry): Promise<void> {
    let e: GreyEntry;
    try {
      e = checkGreyEntry(entry);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closed) return Promise.reject(new StoreUnavailableError('sqlite: store is closed'));
    this.greyPending.set(key, e);
    return new Promise((resolve, reject) => this.queueGrey({ key, entry: e, resolve, reject }));
  }

  /**
   * Decided in the commit at the end of this tick (greyCommitter), reading
   * the row under the write lock; the promise settles with the outcome once
   * committed. greyGet sees the attempt's entry once it is committed.
   */
  greyAttempt(key: string, clientIp: string, now: number, timing: GreyTiming): Promise<GreyAttempt> {
    let ip: string;
    try {
      ip = canonicalIp(clientIp);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closed) return Promise.reject(new StoreUnavailableError('sqlite: store is closed'));
    return new Promise((resolve, reject) => this.queueGrey({ key, attempt: { clientIp: ip, now, timing }, resolve, reject }));
  }

  private queueGrey(q: GreyQueued): void {
    this.greyQueue.push(q);
    // A commit waiting for the lock takes these along when it retries.
    if (!this.flushScheduled && this.greyRetry === undefined) {
      this.flushScheduled = true;
      setImmediate(() => this.flushGrey(false));
    }
  }

  /**
   * Commit the queued greylist entries. `wait` (callers that read the
   * greylist tables next, and close): synchronously, waiting for the write
   * lock up to busy_timeout as any other write does. Otherwise (the commit
   * at the end of a tick, held for up to GREY_GATHER_TURNS turns while
   * fewer than GREY_GATHER_ROWS are queued): never waiting — a taken lock
   * means a retry at the loop's next turn, then every GREY_RETRY_MS,
   * entries queued meanwhile joining it, until busy_timeout has passed;
   * then the entries fail as a wait would have.
   */
  private flushGrey(wait = true): void {
    if (!wait && this.greyRetry === undefined && this.greyQueue.length > 0 && this.greyQueue.length < GREY_GATHER_ROWS && this.greyHeld < GREY_GATHER_TURNS) {
      this.greyHeld++;
      setImmediate(() => this.flushGrey(false));
      return;
    }
    this.greyHeld = 0;
    this.flushScheduled = false;
    if (this.greyRetry !== undefined) {
      if ('timer' in this.greyRetry) clearTimeout(this.greyRetry.timer);
      else clearImmediate(this.greyRetry.immediate);
      this.greyRetry = undefined;
    }
    const batch = this.greyQueue;
    if (batch.length === 0) return;
    let failure: unknown;
    try {
      (wait ? this.greyCommit : this.greyCommitNow).immediate(batch);
    } catch (e) {
      const now = performance.now();
      const waited = now - (this.greyBusySince ??= now);
      if (!wait && !this.closed && isBusy(e) && waited < this.busyTimeoutMs) {
        const retry = (): void => this.flushGrey(false);
        this.greyRetry = waited < GREY_SPIN_MS ? { immediate: setImmediate(retry) } : { timer: setTimeout(retry, GREY_RETRY_MS) };
        return;
      }
      failure = translate(e);
    }
    this.greyQueue = [];
    this.greyBusySince = undefined;
    for (const q of batch) {
      if (failure !== undefined) q.reject(failure);
      else if ('entry' in q) q.resolve();
      else q.resolve(q.outcome as GreyAttempt);
    }
    for (const q of batch) if ('entry' in q && this.greyPending.get(q.key) === q.entry) this.greyPending.delete(q.key);
  }

  async greyDelete(key: string): Promise<boolean> {
    this.flushGrey();
    return this.run(() => this.st.greyDel.run(key).changes > 0);
  }

  async greyList(opts: { limit?: number } = {}): Promise<Array<{ key: string; entry: GreyEntry }>> {
    this.flushGrey();
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 1000)), 1_000_000);
    return this.run(() => this.st.greyList.all(this.clock.now(), limit)).map((r) => ({ key: r.key, entry: greyFromRow(r) }));
  }

  /**
   * Without an index on client_ip (schema migration 4): a scan in key
   * order (deleteScanning), the event loop free in
   * between — so a spamtrap hit on a large greylist never stalls the
   * decisions around it.
   */
  async greyDeleteByClient(ipOrCidr: string): Promise<number> {
    const net = parseNetwork(ipOrCidr);
    if (!net) throw new InvalidEntryError(`not an IP address or CIDR: ${JSON.stringify(ipOrCidr)}`);
    const host = net.len === (net.v6 ? 128 : 32) ? canonicalIp(ipOrCidr.replace(/\/\d+$/, '')) : undefined;
    const matches = (clientIp: string): boolean => {
      if (host !== undefined) return clientIp === host;
      const ip = parseNetwork(clientIp);
      return ip !== undefined && networkContains(net, ip);
    };
    this.flushGrey();
    return this.deleteScanning(this.st.greyAfter, this.st.greyDel, (r) => matches(r.client_ip));
  }

  /**
   * Deletes the rows of a key-ordered table that `doomed` picks, walking it
   * in key order SCAN_ROWS rows per transaction with the event loop free in
   * between: for the rare jobs that have no index (dropping a client's
   * greylist entries, the purge), so that the writes of every decision
   * need not keep one up to date.
   */
  private async deleteScanning<R extends { key: string }>(
    after: Database.Statement<[string, number], R>,
    del: Database.Statement<[string]>,
    doomed: (row: R) => boolean,
  ): Promise<number> {
    let from = '';
    let n = 0;
    for (;;) {
      const chunk = this.run(() =>
        this.db
          .transaction((): { last?: string; full: boolean; deleted: number } => {
            const rows = after.all(from, SCAN_ROWS);
            let deleted = 0;
            for (const r of rows) if (doomed(r)) deleted += del.run(r.key).changes;
            return { last: rows.at(-1)?.key, full: rows.length === SCAN_ROWS, deleted };
          })
          .immediate(),
      );
      n += chunk.deleted;
      if (!chunk.full || chunk.last === undefined) return n;
      from = chunk.last;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async greyClientPasses(client: string): Promise<number> {
    const row = this.run(() => this.st.greyClientGet.get(client));
    return row && row.expires_at > this.clock.now() ? row.passes : 0;
  }

  async greyClientPass(client: string, expiresAt: number): Promise<number> {
    const now = this.clock.now();
    return this.run(() =>
      this.db
        .transaction((): number => {
          const row = this.st.greyClientGet.get(client);
          const passes = (row && row.expires_at > now ? row.passes : 0) + 1;
          this.st.greyClientPut.run(client, passes, now, expiresAt);
          return passes;
        })
        .immediate(),
    );
  }

  // ---- rate limits

  // ---- learned correspondents

  /**
   * Records are gathered for up to CORRESPONDENT_GATHER_MS (or
   * CORRESPONDENT_GATHER_ROWS) and committed in one transaction: one is
   * learned per recipient of every authenticated client, and a commit each
   * cost the decision path more than the decision itself. A crash loses at
   * most that second of learning; reads, the purge and close commit first.
   */
  correspondentRecord(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('sqlite: store is closed'));
    return new Promise((resolve, reject) => this.gatherCorrespondent(key, kind, now, expiresAt, { now, at: 0, resolve, reject }));
  }

  correspondentNote(key: string, kind: CorrespondentKind, now: number, expiresAt: number, onError: (err: unknown) => void): void {
    if (this.closed) onError(new StoreUnavailableError('sqlite: store is closed'));
    else this.gatherCorrespondent(key, kind, now, expiresAt, onError);
  }

  /** One record into the next commit: a waiter for its row, or (a note) the function told of a failure. */
  private gatherCorrespondent(key: string, kind: CorrespondentKind, now: number, expiresAt: number, who: CorrespondentWaiter | ((err: unknown) => void)): void {
    let run = this.corrRuns.get(key);
    // The same key again while its run is unexpired: one more message on the same row (one upsert for the run).
    if (run !== undefined && run.exp > now && now >= run.now) {
      run.kind = kind;
      run.now = now;
      if (expiresAt > run.exp) run.exp = expiresAt;
    } else {
      run = { key, kind, first: now, now, exp: expiresAt, waiters: [], notes: 0 };
      this.corrQueue.push(run);
      this.corrRuns.set(key, run);
    }
    if (typeof who === 'function') {
      run.notes++;
      run.onError = who;
    } else {
      who.at = run.waiters.length + run.notes;
      run.waiters.push(who);
    }
    if (++this.corrWaiting >= CORRESPONDENT_GATHER_ROWS) this.flushCorrespondents();
    else if (this.corrTimer === undefined) {
      // Not unref'd: a caller may await it; close() commits and clears it.
      this.corrTimer = setTimeout(() => this.flushCorrespondents(), CORRESPONDENT_GATHER_MS);
    }
  }

  private flushCorrespondents(): void {
    if (this.corrTimer !== undefined) clearTimeout(this.corrTimer);
    this.corrTimer = undefined;
    const batch = this.corrQueue;
    if (batch.length === 0) return;
    this.corrQueue = [];
    this.corrRuns.clear();
    this.corrWaiting = 0;
    let rows: CorrespondentRow[];
    try {
      rows = this.run(() =>
        this.db
          .transaction(() => batch.map((r) => this.st.corrRecord.get({ key: r.key, kind: r.kind, first: r.first, now: r.now, exp: r.exp, n: r.waiters.length + r.notes })!))
          .immediate(),
      );
    } catch (e) {
      for (const r of batch) {
        for (const w of r.waiters) w.reject(e);
        r.onError?.(e);
      }
      return;
    }
    batch.forEach((r, i) => {
      if (r.waiters.length === 0) return;
      const row = correspondentFromRow(rows[i]);
      // A waiter sees the row as its own record left it: the count and last message of that point.
      const n = r.waiters.length + r.notes;
      for (const w of r.waiters) w.resolve(w.at === n - 1 ? row : { ...row, count: row.count - (n - 1 - w.at), lastSeen: w.now });
    });
  }

  async correspondentGet(key: string, now: number): Promise<Correspondent | undefined> {
    this.flushCorrespondents();
    const row = this.run(() => this.st.corrGet.get(key, now));
    return row ? correspondentFromRow(row) : undefined;
  }

  async correspondentAll(now: number): Promise<Correspondent[]> {
    this.flushCorrespondents();
    return this.run(() => this.db.prepare<[number], CorrespondentRow>('SELECT * FROM correspondents WHERE expires_at > ? ORDER BY key').all(now)).map(correspondentFromRow);
  }

  async correspondentTrim(keep: number): Promise<number> {
    this.flushCorrespondents();
    const k = Math.max(0, Math.floor(keep));
    return this.run(
      () =>
        this.db
          .prepare('DELETE FROM correspondents WHERE key IN (SELECT key FROM correspondents ORDER BY expires_at DESC LIMIT -1 OFFSET ?)')
          .run(k).changes,
    );
  }

  async rateTake(key: string, req: RateRequest): Promise<RateResult> {
    const { capacity, refillPerSecond, cost } = checkRateRequest(req);
    const now = this.clock.now();
    return this.run(() =>
      this.db
        .transaction((): RateResult => {
          const row = this.st.rateGet.get(key);
          let tokens = capacity;
          if (row) tokens = Math.min(capacity, row.tokens + (Math.max(0, now - row.updated_at) / 1000) * refillPerSecond);
          const allowed = tokens >= cost;
          if (allowed) tokens -= cost;
          const fullAt = now + Math.ceil(((capacity - tokens) / refillPerSecond) * 1000);
          this.st.ratePut.run(key, tokens, Math.max(now, row?.updated_at ?? now), fullAt);
          return { allowed, remaining: tokens, retryAfterSeconds: allowed ? 0 : (cost - tokens) / refillPerSecond };
        })
        .immediate(),
    );
  }

  // ---- sasl_spread and held users

  /**
   * One transaction: upsert each value (a value past its expiry starts
   * afresh, so a recipient forgotten counts as new again), keep at most
   * maxValues per kind (least recently seen dropped), count.
   */
  async spreadRecord(input: SpreadRecord): Promise<SpreadCounts> {
    const rec = checkSpreadRecord(input);
    const { user, now } = rec;
    return this.run(() =>
      this.db
        .transaction((): SpreadCounts => {
          const kinds = new Set<string>();
          for (const v of rec.values) {
            const keep = v.kind === 'rcpt' ? rec.knownMs : rec.windowMs;
            this.st.spreadPut.run({ user, kind: v.kind, value: v.value, now, exp: now + keep });
            kinds.add(v.kind);
          }
          for (const kind of kinds) {
            const n = this.st.spreadCount.get(user, kind)!.n;
            if (n > rec.maxValues) this.st.spreadTrim.run(user, kind, user, kind, rec.maxValues);
          }
          const out: SpreadCounts = { ips: 0, asns: 0, countries: 0, newRcpts: 0 };
          for (const r of this.st.spreadCounts.all({ user, now, since: now - rec.windowMs, newSince: now - rec.newWindowMs })) {
            if (r.kind === 'ip') out.ips = r.n;
            else if (r.kind === 'asn') out.asns = r.n;
            else if (r.kind === 'country') out.countries = r.n;
            else if (r.kind === 'rcpt') out.newRcpts = r.n;
          }
          return out;
        })
        .immediate(),
    );
  }

  async spreadReset(user: string): Promise<void> {
    this.run(() => this.db.transaction(() => this.resetSpread(user)).immediate());
  }

  private resetSpread(user: string): void {
    this.db.prepare("DELETE FROM spread WHERE user = ? AND kind IN ('ip', 'asn', 'country')").run(user);
    this.db.prepare("UPDATE spread SET first_seen = 0 WHERE user = ? AND kind = 'rcpt'").run(user);
  }

  async userHold(input: UserHold): Promise<{ hold: UserHold; created: boolean }> {
    const hold = checkUserHold(input);
    return this.run(() =>
      this.db
        .transaction(() => {
          const had = this.st.holdGet.get(hold.user);
          if (had) return { hold: holdFromRow(had), created: false };
          this.st.holdPut.run(hold.user, hold.by, hold.reason, hold.createdAt);
          return { hold, created: true };
        })
        .immediate(),
    );
  }

  async userRelease(user: string): Promise<UserHold | undefined> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const had = this.st.holdGet.get(user);
          this.db.prepare('DELETE FROM user_holds WHERE user = ?').run(user);
          this.resetSpread(user);
          return had ? holdFromRow(had) : undefined;
        })
        .immediate(),
    );
  }

  async userHoldGet(user: string): Promise<UserHold | undefined> {
    const row = this.run(() => this.st.holdGet.get(user));
    return row ? holdFromRow(row) : undefined;
  }

  async userHolds(): Promise<UserHold[]> {
    return this.run(() => this.db.prepare<[], HoldRow>('SELECT * FROM user_holds ORDER BY created_at, user LIMIT 10000').all()).map(holdFromRow);
  }

  // ---- decision log

  /**
   * Queued for the writer thread (see EventWriter): checked here, cleaned and
   * written there. Every event of a batch gets the batch's promise, which
   * settles when the batch is committed. The event's rcpts and evidence
   * arrays are read when the batch is posted (within EVENT_FLUSH_MS): the
   * caller must not change them after the call.
   */
  logEvent(event: LoggedDecision): Promise<void> {
    try {
      checkEvent(event);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.closed) return Promise.reject(new StoreUnavailableError('sqlite: store is closed'));
    return this.events.push(event);
  }

  /** Waits until every event logged before the call is committed, then reads the events file. */
  async queryEvents(q: EventQuery): Promise<DecisionEvent[]> {
    await this.events.sync();
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (q.ip !== undefined) {
      where.push('client_ip = ?');
      args.push(canonicalIp(q.ip));
    }
    if (q.rule !== undefined) {
      where.push('rule = ?');
      args.push(q.rule);
    }
    if (q.action !== undefined) {
      where.push('action = ?');
      args.push(q.action);
    }
    if (q.wouldHave === true) where.push('would_have IS NOT NULL');
    if (q.since !== undefined) {
      where.push('ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('ts <= ?');
      args.push(q.until);
    }
    // CIDR, sender and recipient: narrowed here (a range of client_ip's index, a LIKE), decided exactly by eventMatcher.
    const exact = q.cidr !== undefined || q.from !== undefined || q.rcpt !== undefined ? eventMatcher({ cidr: q.cidr, from: q.from, rcpt: q.rcpt }) : undefined;
    if (q.cidr !== undefined) {
      const prefix = cidrTextPrefix(q.cidr);
      if (prefix !== undefined) {
        where.push('client_ip >= ? AND client_ip < ?');
        args.push(prefix, prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
      }
    }
    if (q.from !== undefined) {
      const f = q.from.trim().toLowerCase();
      const d = domainOf(f);
      if (d !== undefined) {
        where.push('from_domain = ?');
        args.push(d);
        // SQLite's lower() folds ASCII only: an ASCII address is matched here too, so a busy domain's rows are not all decoded to be tested.
        if (/^[\x20-\x7e]*$/.test(f)) {
          where.push('lower(mail_from) = ?');
          args.push(f);
        }
      } else if (f === '') where.push("(mail_from = '' OR mail_from IS NULL)");
    }
    if (q.rcpt !== undefined) {
      const d = domainOf(q.rcpt.trim().toLowerCase());
      if (d !== undefined) {
        where.push("rcpt_domains LIKE ? ESCAPE '\\'");
        args.push(`%|${likeEscape(d)}|%`);
      }
    }
    const limit = eventLimit(q);
    const lim = exact ? '' : ' LIMIT ?';
    let sql: string;
    if (q.domain === undefined) {
      sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts DESC, id DESC${lim}`;
      if (!exact) args.push(limit);
    } else {
      // Sender's domain or a recipient's: three searches an index answers (events-file.ts, SEARCH_SCHEMA), newest first each, merged.
      const d = q.domain.toLowerCase();
      const rest = where.map((w) => ` AND ${w}`).join('');
      const branch = (cond: string, index = '') => `SELECT id FROM (SELECT id FROM events${index} WHERE ${cond}${rest} ORDER BY ts DESC, id DESC${lim})`;
      // The planner would read the third through the recipient-domain index by a GLOB range (all of it): named.
      sql = `SELECT * FROM events WHERE id IN (${branch('from_domain = ?')} UNION ALL ${branch('rcpt_domains = ?')} UNION ALL ${branch(
        `${MANY_RCPT_DOMAINS} AND rcpt_domains LIKE ? ESCAPE '\\'`,
        ` INDEXED BY ${MANY_RCPT_DOMAINS_INDEX}`,
      )}) ORDER BY ts DESC, id DESC${lim}`;
      const branchArgs = (first: string) => (exact ? [first, ...args] : [first, ...args, limit]);
      const all = [...branchArgs(d), ...branchArgs(`|${d}|`), ...branchArgs(`%|${likeEscape(d)}|%`)];
      if (!exact) all.push(limit);
      args.length = 0;
      args.push(...all);
    }
    // One read transaction: the rows and their evidence pieces from one snapshot (a prune in between cannot take pieces away).
    return this.run(() =>
      this.evdb.transaction(() => {
        const stmt = this.evdb.prepare<unknown[], EventRow>(sql);
        let rows: EventRow[];
        if (!exact) rows = stmt.all(...args);
        else {
          rows = [];
          for (const r of stmt.iterate(...args)) {
            if (!exact(eventFromRow(r, '[]'))) continue;
            rows.push(r);
            if (rows.length >= limit) break;
          }
        }
        const evidence = evidenceTexts(this.evdb, rows.map((r) => r.evidence));
        return rows.map((r, i) => eventFromRow(r, evidence[i]));
      })(),
    );
  }

  /** The decision log's counters (event-rollups.ts), after every event logged before the call. */
  async countEvents(q: RollupQuery): Promise<RollupRow[]> {
    await this.events.sync();
    return this.run(() => queryRollups(this.evdb, q));
  }

  /** After every event logged before the call; a write, so it runs in the writer thread when there is one. */
  async pruneEvents(opts: PruneOptions): Promise<number> {
    if (this.closed) throw new StoreUnavailableError('sqlite: store is closed');
    return this.events.prune(this.clock.now(), opts);
  }

  // ---- housekeeping

  protected async purgeBackend(now: number): Promise<PurgeResult> {
    this.flushGrey();
    this.flushCorrespondents();
    const forgetMs = this.policy.forgetAfterSeconds * 1000;
    const r = this.run(() =>
      this.db
        .transaction(
          (): PurgeResult => ({
            bans: this.db.prepare('DELETE FROM bans WHERE expires_at <= ?').run(now).changes,
            offences: this.db.prepare('DELETE FROM offences WHERE quiet_since + ? <= ? AND cidr NOT IN (SELECT cidr FROM bans)').run(forgetMs, now).changes,
            listEntries: this.db.prepare('DELETE FROM list_entries WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now).changes,
            greylist: this.db.prepare('DELETE FROM grey_clients WHERE expires_at <= ?').run(now).changes,
            rateBuckets: 0,
            changes: this.db.prepare('DELETE FROM changes WHERE ts < ?').run(now - CHANGES_KEEP_MS).changes,
            correspondents: this.db.prepare('DELETE FROM correspondents WHERE expires_at <= ?').run(now).changes,
            spread: this.db.prepare('DELETE FROM spread WHERE expires_at <= ?').run(now).changes,
          }),
        )
        .immediate(),
    );
    // No expiry index on these two (migration 5): walked in chunks.
    r.greylist += await this.deleteScanning(this.st.greyAfter, this.st.greyDel, (g) => g.expires_at <= now);
    r.rateBuckets = await this.deleteScanning(this.st.rateAfter, this.st.rateDel, (b) => b.expires_at <= now);
    return r;
  }

  async health(): Promise<StoreHealth> {
    const t0 = performance.now();
    try {
      this.run(() => this.db.prepare('SELECT 1').get());
      const mode = this.run(() => this.db.pragma('journal_mode', { simple: true }));
      this.run(() => this.evdb.prepare('SELECT 1').get());
      return {
        ok: true,
        backend: 'sqlite',
        detail: `${this.cfg.path} (journal ${String(mode)}); events ${this.eventsPath} (${this.events.state === 'thread' ? 'writer thread' : this.events.state})`,
        latencyMs: performance.now() - t0,
      };
    } catch (e) {
      return { ok: false, backend: 'sqlite', detail: String(e) };
    }
  }

  /** Commits the queued greylist entries and decision events, ends the writer thread, closes both files. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.flushGrey();
    this.flushCorrespondents();
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.stopPurgeTimer();
    try {
      await this.events.close();
    } finally {
      if (this.greyDb !== this.db) this.greyDb.close();
      this.db.close();
      this.evdb.close();
    }
  }

  /** For tests and tools: the raw database handle. */
  get database(): Database.Database {
    return this.db;
  }

  /** For tests and tools: this thread's connection to the events file. */
  get eventsDatabase(): Database.Database {
    return this.evdb;
  }

  /** For tests: the decision log's writer (its state, its thread). */
  get eventWriter(): EventWriter {
    return this.events;
  }
}
