// The embedded backend: one SQLite file (better-sqlite3, WAL).
//
// Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (in
// the OS page cache) before better-sqlite3 returns, so every acknowledged
// change survives the death of the process, SIGKILL included; only an OS
// crash or power loss can drop the last commits. synchronous=FULL (config)
// adds an fsync per commit for that case. Decision events are the exception:
// records, not acknowledgements, they are committed in batches (see
// EVENT_FLUSH_MS), so a SIGKILL can lose the last 200 ms of them.
//
// Several processes may open the same file (the daemon and the CLI): writes
// take the lock with BEGIN IMMEDIATE and wait up to busy_timeout, and each
// process follows the others' ban and list changes through the `changes`
// table, polled every `pollMs`.

import Database from 'better-sqlite3';
import { banSeconds, offenceAfterUnban, planBan, type BanPlan, type OffenceRecord } from '../bans.js';
import { BaseStore, checkGreyEntry, checkRateRequest } from '../base-store.js';
import { checkListKind } from '../entries.js';
import { InvalidEntryError, StoreUnavailableError } from '../errors.js';
import { domainOf } from '../../core/address.js';
import { cleanEvent, eventLimit, rcptDomains } from '../events.js';
import { canonicalIp, networkContains, parseNetwork } from '../ip.js';
import type {
  Ban,
  BanInput,
  DecisionEvent,
  EventQuery,
  GreyEntry,
  ListBansOptions,
  ListEntry,
  ListInfo,
  ListKind,
  PruneOptions,
  PurgeResult,
  RateRequest,
  RateResult,
  SqliteStoreConfig,
  StoreChange,
  StoreDeps,
  StoreHealth,
} from '../types.js';
import { migrate } from './schema.js';

/**
 * Decision events are records, not acknowledgements: they are committed in
 * batches, at most this long after they were logged (a SIGKILL loses at most
 * this much of the log), or as soon as EVENT_BATCH_ROWS are waiting.
 */
const EVENT_FLUSH_MS = 200;
const EVENT_BATCH_ROWS = 500;

/** Change rows older than this are pruned; a process that lagged longer reloads everything. */
const CHANGES_KEEP_MS = 10 * 60 * 1000;

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
}

interface ListEntryRow {
  list: string;
  entry: string;
  source: string;
  added_at: number;
  expires_at: number | null;
  kind: ListKind;
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

function eventFromRow(r: EventRow): DecisionEvent {
  const e: DecisionEvent = {
    id: String(r.id),
    ts: r.ts,
    clientIp: r.client_ip,
    rcpts: JSON.parse(r.rcpts) as string[],
    stage: r.stage,
    action: r.action,
    rule: r.rule,
    evidence: JSON.parse(r.evidence) as DecisionEvent['evidence'],
  };
  if (r.session_id !== null) e.sessionId = r.session_id;
  if (r.helo !== null) e.helo = r.helo;
  if (r.mail_from !== null) e.from = r.mail_from;
  if (r.code !== null) e.code = r.code;
  if (r.text !== null) e.text = r.text;
  return e;
}

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL|NOMEM|NOLFS)/;

/** Faults of the medium (locked, disk full, I/O) become StoreUnavailableError; bugs stay what they are. */
function translate(e: unknown): unknown {
  if (e instanceof Database.SqliteError && UNAVAILABLE.test(e.code)) {
    return new StoreUnavailableError(`sqlite: ${e.code}: ${e.message}`, { cause: e });
  }
  if (e instanceof TypeError && /database connection is not open/.test(e.message)) {
    return new StoreUnavailableError('sqlite: store is closed', { cause: e });
  }
  return e;
}

export class SqliteStore extends BaseStore {
  readonly backend = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly st: ReturnType<SqliteStore['prepare']>;
  private lastSeq = 0;
  private pollTimer?: NodeJS.Timeout;
  /** Writes waiting for the next batch commit: decision-log events and greylist entries. */
  private pending: Array<{ event?: DecisionEvent; grey?: [string, GreyEntry]; resolve: () => void; reject: (e: unknown) => void }> = [];
  /** Greylist entries written but not yet committed, by key: greyGet answers from here first. */
  private readonly greyPending = new Map<string, GreyEntry>();
  private flushScheduled = false;
  /** Pending decision events are committed when this fires (or sooner, with a greylist entry or a full batch). */
  private flushTimer?: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly cfg: SqliteStoreConfig,
    deps: StoreDeps,
  ) {
    super(deps);
    try {
      this.db = new Database(cfg.path);
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(cfg.busyTimeoutMs ?? 5000))}`);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${cfg.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      this.db.pragma('foreign_keys = ON');
      migrate(this.db, this.clock.now());
    } catch (e) {
      throw translate(e);
    }
    this.st = this.prepare();
  }

  static async open(cfg: SqliteStoreConfig, deps: StoreDeps = {}): Promise<SqliteStore> {
    const store = new SqliteStore(cfg, deps);
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
      greyGet: db.prepare<[string], GreyRow>('SELECT * FROM greylist WHERE key = ?'),
      greyPut: db.prepare(
        `INSERT INTO greylist (key, client_ip, first_seen, last_seen, passed_at, attempts, passes, expires_at)
         VALUES (@key, @clientIp, @firstSeen, @lastSeen, @passedAt, @attempts, @passes, @expiresAt)
         ON CONFLICT (key) DO UPDATE SET client_ip = excluded.client_ip, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
           passed_at = excluded.passed_at, attempts = excluded.attempts, passes = excluded.passes, expires_at = excluded.expires_at`,
      ),
      greyDel: db.prepare<[string]>('DELETE FROM greylist WHERE key = ?'),
      greyList: db.prepare<[number, number], GreyRow>('SELECT * FROM greylist WHERE expires_at > ? ORDER BY last_seen DESC, key LIMIT ?'),
      greyDelIp: db.prepare<[string]>('DELETE FROM greylist WHERE client_ip = ?'),
      greyClients: db.prepare<[], { key: string; client_ip: string }>('SELECT key, client_ip FROM greylist'),
      greyClientGet: db.prepare<[string], { passes: number; expires_at: number }>('SELECT passes, expires_at FROM grey_clients WHERE client = ?'),
      greyClientPut: db.prepare<[string, number, number, number]>(
        `INSERT INTO grey_clients (client, passes, updated_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (client) DO UPDATE SET passes = excluded.passes, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      rateGet: db.prepare<[string], { tokens: number; updated_at: number }>('SELECT tokens, updated_at FROM rate_buckets WHERE key = ?'),
      ratePut: db.prepare<[string, number, number, number]>(
        `INSERT INTO rate_buckets (key, tokens, updated_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      eventPut: db.prepare(
        `INSERT INTO events (ts, session_id, client_ip, helo, mail_from, from_domain, rcpts, rcpt_domains, stage, action, code, rule, text, evidence)
         VALUES (@ts, @sessionId, @clientIp, @helo, @from, @fromDomain, @rcpts, @rcptDomains, @stage, @action, @code, @rule, @text, @evidence)`,
      ),
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
    const row = this.run(() => this.st.greyGet.get(key));
    return row && row.expires_at > this.clock.now() ? greyFromRow(row) : undefined;
  }

  /**
   * Written in the next batch (with the decision-log events: one commit per
   * tick for all concurrent decisions, instead of one each); the promise
   * settles when the batch is committed, and greyGet sees the entry at once.
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
    return this.enqueue({ grey: [key, e] });
  }

  async greyDelete(key: string): Promise<boolean> {
    this.flushEvents();
    return this.run(() => this.st.greyDel.run(key).changes > 0);
  }

  async greyList(opts: { limit?: number } = {}): Promise<Array<{ key: string; entry: GreyEntry }>> {
    this.flushEvents();
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 1000)), 1_000_000);
    return this.run(() => this.st.greyList.all(this.clock.now(), limit)).map((r) => ({ key: r.key, entry: greyFromRow(r) }));
  }

  async greyDeleteByClient(ipOrCidr: string): Promise<number> {
    const net = parseNetwork(ipOrCidr);
    if (!net) throw new InvalidEntryError(`not an IP address or CIDR: ${JSON.stringify(ipOrCidr)}`);
    const host = net.len === (net.v6 ? 128 : 32);
    this.flushEvents();
    return this.run(() =>
      this.db
        .transaction((): number => {
          if (host) return this.st.greyDelIp.run(canonicalIp(ipOrCidr.replace(/\/\d+$/, ''))).changes;
          let n = 0;
          for (const r of this.st.greyClients.all()) {
            const ip = parseNetwork(r.client_ip);
            if (ip && networkContains(net, ip)) n += this.st.greyDel.run(r.key).changes;
          }
          return n;
        })
        .immediate(),
    );
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

  // ---- decision log

  /** Events are written in batches (every EVENT_FLUSH_MS or EVENT_BATCH_ROWS); the promise settles when the batch is committed. */
  logEvent(event: DecisionEvent): Promise<void> {
    let clean: DecisionEvent;
    try {
      clean = cleanEvent(event);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.closed) return Promise.reject(new StoreUnavailableError('sqlite: store is closed'));
    return this.enqueue({ event: clean });
  }

  private enqueue(write: { event?: DecisionEvent; grey?: [string, GreyEntry] }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...write, resolve, reject });
      if (write.grey || this.pending.length >= EVENT_BATCH_ROWS) this.scheduleFlush();
      else this.flushTimer ??= setTimeout(() => this.flushEvents(), EVENT_FLUSH_MS);
    });
  }

  /** Commit at the end of this tick (greylist entries are acknowledgements: they do not wait for the timer). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushEvents());
  }

  /** Commit the pending events and greylist entries in one transaction. Synchronous: callers that read the tables flush first. */
  private flushEvents(): void {
    this.flushScheduled = false;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      this.run(() =>
        this.db.transaction(() => {
          for (const { event: e, grey } of batch) {
            if (grey) {
              const [key, g] = grey;
              this.st.greyPut.run({ key, ...g, passedAt: g.passedAt ?? null });
            }
            if (!e) continue;
            this.st.eventPut.run({
              ts: e.ts,
              sessionId: e.sessionId ?? null,
              clientIp: e.clientIp,
              helo: e.helo ?? null,
              from: e.from ?? null,
              fromDomain: domainOf(e.from) ?? null,
              rcpts: JSON.stringify(e.rcpts),
              rcptDomains: `|${rcptDomains(e.rcpts).join('|')}|`,
              stage: e.stage,
              action: e.action,
              code: e.code ?? null,
              rule: e.rule,
              text: e.text ?? null,
              evidence: JSON.stringify(e.evidence),
            });
          }
        })(),
      );
      for (const p of batch) p.resolve();
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      for (const { grey } of batch) if (grey && this.greyPending.get(grey[0]) === grey[1]) this.greyPending.delete(grey[0]);
    }
  }

  async queryEvents(q: EventQuery): Promise<DecisionEvent[]> {
    this.flushEvents();
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
    if (q.since !== undefined) {
      where.push('ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('ts <= ?');
      args.push(q.until);
    }
    if (q.domain !== undefined) {
      const d = q.domain.toLowerCase();
      where.push("(from_domain = ? OR rcpt_domains LIKE ? ESCAPE '\\')");
      args.push(d, `%|${d.replace(/[\\%_]/g, (c) => `\\${c}`)}|%`);
    }
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts DESC, id DESC LIMIT ?`;
    args.push(eventLimit(q));
    return this.run(() => this.db.prepare<unknown[], EventRow>(sql).all(...args)).map(eventFromRow);
  }

  async pruneEvents(opts: PruneOptions): Promise<number> {
    this.flushEvents();
    const now = this.clock.now();
    return this.run(() =>
      this.db
        .transaction((): number => {
          let n = 0;
          if (opts.maxAgeSeconds !== undefined) {
            n += this.db.prepare('DELETE FROM events WHERE ts < ?').run(now - opts.maxAgeSeconds * 1000).changes;
          }
          if (opts.maxRows !== undefined) {
            const keep = Math.max(0, Math.floor(opts.maxRows));
            // The newest row beyond the allowance; it and everything older go.
            const first = this.db
              .prepare<[number], { ts: number; id: number }>('SELECT ts, id FROM events ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?')
              .get(keep);
            if (first) {
              n += this.db.prepare('DELETE FROM events WHERE ts < ? OR (ts = ? AND id <= ?)').run(first.ts, first.ts, first.id).changes;
            }
          }
          return n;
        })
        .immediate(),
    );
  }

  // ---- housekeeping

  protected async purgeBackend(now: number): Promise<PurgeResult> {
    this.flushEvents();
    const forgetMs = this.policy.forgetAfterSeconds * 1000;
    return this.run(() =>
      this.db
        .transaction(
          (): PurgeResult => ({
            bans: this.db.prepare('DELETE FROM bans WHERE expires_at <= ?').run(now).changes,
            offences: this.db.prepare('DELETE FROM offences WHERE quiet_since + ? <= ? AND cidr NOT IN (SELECT cidr FROM bans)').run(forgetMs, now).changes,
            listEntries: this.db.prepare('DELETE FROM list_entries WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now).changes,
            greylist:
              this.db.prepare('DELETE FROM greylist WHERE expires_at <= ?').run(now).changes +
              this.db.prepare('DELETE FROM grey_clients WHERE expires_at <= ?').run(now).changes,
            rateBuckets: this.db.prepare('DELETE FROM rate_buckets WHERE expires_at <= ?').run(now).changes,
            changes: this.db.prepare('DELETE FROM changes WHERE ts < ?').run(now - CHANGES_KEEP_MS).changes,
          }),
        )
        .immediate(),
    );
  }

  async health(): Promise<StoreHealth> {
    const t0 = performance.now();
    try {
      this.run(() => this.db.prepare('SELECT 1').get());
      const mode = this.run(() => this.db.pragma('journal_mode', { simple: true }));
      return { ok: true, backend: 'sqlite', detail: `${this.cfg.path} (journal ${String(mode)})`, latencyMs: performance.now() - t0 };
    } catch (e) {
      return { ok: false, backend: 'sqlite', detail: String(e) };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushEvents();
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.stopPurgeTimer();
    this.db.close();
  }

  /** For tests and tools: the raw database handle. */
  get database(): Database.Database {
    return this.db;
  }
}
