// The shared backend: several frontline hosts on one Redis see the same
// bans, lists, greylist entries, rate budgets and decision log.
//
// Keys (prefix configurable, default "fl:"; see docs/store.md):
//   <p>bans               hash   cidr → Ban JSON
//   <p>bans:exp           zset   cidr scored by expiresAt (listing, purge, index load)
//   <p>offences           hash   cidr → {offences, firstSeen, quietSince}
//   <p>offences:forget    zset   cidr scored by quietSince + forgetAfter (purge)
//   <p>lists              hash   list name → kind
//   <p>list:<name>        hash   entry → {source, addedAt, expiresAt?}
//   <p>lists:exp          zset   "<name>\n<entry>" scored by expiresAt
//   <p>grey:<key>         string GreyEntry JSON, PEXPIRE = its expiry
//   <p>greyc:<origin>     string {passes, expiresAt}, PEXPIRE
//   <p>rate:<key>         hash   {t: tokens, ts}, PEXPIRE = when full again
//   <p>spread:<user>:<kind> zset value scored by last seen (ip, asn, country, rcpt), PEXPIRE
//   <p>spread:<user>:first  zset recipient scored by first seen, PEXPIRE
//   <p>holds              hash   user → {by, reason, createdAt}
//   <p>events             stream field e = event JSON, IDs <ts>-<seq>, MAXLEN ~
//   <p>changes            pub/sub channel of {origin, change}
//
// Faults: no offline queue, one retry, a short command timeout — while
// Redis is away every call rejects at once with StoreUnavailableError, and
// the client reconnects by itself. Bans and lists keep answering from the
// in-memory index; after a reconnect the index is reloaded, since pub/sub
// messages sent meanwhile are lost.

import { Redis, type RedisOptions } from 'ioredis';
import { durationTable, type BanPlan } from '../bans.js';
import { BaseStore, checkGreyEntry, checkRateRequest, checkSpreadRecord, checkUserHold } from '../base-store.js';
import { checkListKind } from '../entries.js';
import { InvalidEntryError, StoreUnavailableError } from '../errors.js';
import { canonicalOrRaw, cleanEventJson, compactEvidencePieces, eventLimit, eventMatcher } from '../events.js';
import { RedisEventBatch } from './event-batch.js';
import { COARSE_SINCE_KEY, queryRedisRollups, rollupArgs, ROLLUP_ADD_LUA, ROLLUP_PRUNE_LUA } from './event-rollups.js';
import { RollupCounter, type RollupQuery, type RollupRow } from '../event-rollups.js';
import { RedisGreyBatch } from './grey-batch.js';
import { canonicalIp, networkContains, parseNetwork } from '../ip.js';
import type { MemoryIndex } from '../memory-index.js';
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
  RedisStoreConfig,
  StoreChange,
  StoreDeps,
  StoreHealth,
  SpreadCounts,
  SpreadKind,
  SpreadRecord,
  UserHold,
} from '../types.js';
import {
  BAN_LUA,
  EVENTS_ADD_LUA,
  GREY_ATTEMPT_LUA,
  GREY_CLIENT_PASS_LUA,
  LIST_ADD_LUA,
  LIST_DEL_LUA,
  PURGE_LISTS_LUA,
  PURGE_ZSET_LUA,
  CORRESPONDENT_RECORD_LUA,
  CORRESPONDENT_TRIM_LUA,
  RATE_LUA,
  SPREAD_LUA,
  SPREAD_RESET_LUA,
  UNBAN_LUA,
} from './scripts.js';

type Arg = string | number;

/** The Lua scripts, as ioredis commands (defineCommand: EVALSHA, falling back to EVAL after a restart). */
interface Scripts {
  flBan(...args: Arg[]): Promise<string>;
  flUnban(...args: Arg[]): Promise<number>;
  flListAdd(...args: Arg[]): Promise<string>;
  flListDel(...args: Arg[]): Promise<number>;
  flRate(...args: Arg[]): Promise<[number, string]>;
  flGreyClientPass(...args: Arg[]): Promise<number>;
  flGreyAttempt(numKeys: number, ...args: Arg[]): Promise<Array<string | number>>;
  flEventsAdd(...args: Arg[]): Promise<number>;
  flRollAdd(...args: Arg[]): Promise<number>;
  flRollPrune(...args: Arg[]): Promise<number>;
  flPurgeZset(...args: Arg[]): Promise<number>;
  flPurgeLists(...args: Arg[]): Promise<number>;
  flCorrRecord(...args: Arg[]): Promise<string>;
  flCorrTrim(...args: Arg[]): Promise<number>;
  flSpread(...args: Arg[]): Promise<number[]>;
  flSpreadReset(numKeys: number, ...args: Arg[]): Promise<string | null>;
}

type Client = Redis & Scripts;

/** ZSCAN's COUNT hint for scanBans: about this many bans per round trip. */
const SCAN_COUNT = 10_000;
/** HSCAN's COUNT hint for scanBanRecords (whole Ban JSON each, so a smaller reply). */
const RECORD_COUNT = 5_000;
/** Bans read per HMGET by listBans. */
const HMGET_CHUNK = 10_000;
/** Redis replies that mean "not now" rather than "you are wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|NOSCRIPT)/;

function translate(e: unknown): unknown {
  if (e instanceof StoreUnavailableError || e instanceof InvalidEntryError) return e;
  const err = e as Error;
  if (err?.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message)) return e;
  return new StoreUnavailableError(`redis: ${err?.message ?? String(e)}`, { cause: e });
}

/** The KEYS index of each kind in SPREAD_LUA. */
const SPREAD_KIND_INDEX: Readonly<Record<SpreadKind, number>> = { ip: 1, asn: 2, country: 3, rcpt: 4 };

/** A hold from its JSON in the holds hash; undefined when absent or unreadable. */
function holdOf(user: string, raw: string | null | undefined): UserHold | undefined {
  if (!raw) return undefined;
  try {
    const o = JSON.parse(raw) as { by: string; reason: string; createdAt: number };
    return { user, by: String(o.by), reason: String(o.reason ?? ''), createdAt: Number(o.createdAt) };
  } catch {
    return undefined;
  }
}

/** A correspondent from the JSON the record script writes ({k, n, f, l, e}). */
function correspondentOf(key: string, raw: string | null | undefined): Correspondent | undefined {
  const r = parseJson<{ k: CorrespondentKind; n: number; f: number; l: number; e: number }>(raw);
  return r && { key, kind: r.k, count: Number(r.n), firstSeen: Number(r.f), lastSeen: Number(r.l), expiresAt: Number(r.e) };
}

/** A Ban from its JSON (Lua's cjson writes keys in any order; this fixes the shape). */
function banOf(raw: string | null | undefined): Ban | undefined {
  const b = parseJson<Ban>(raw);
  return b && shapeBan(b);
}

function shapeBan(b: Ban): Ban {
  return {
    cidr: b.cidr,
    reason: b.reason,
    category: b.category,
    source: b.source,
    firstSeen: b.firstSeen,
    createdAt: b.createdAt,
    expiresAt: b.expiresAt,
    offences: b.offences,
  };
}

function parseJson<T>(raw: string | null | undefined): T | undefined {
  if (raw === null || raw === undefined) return undefined;
  return JSON.parse(raw) as T;
}

/**
 * Client options that find the primary through Redis Sentinel: the URL keeps
 * giving the password, user, database and TLS. A READONLY reply means we still
 * talk to a demoted primary: reconnect (asking the sentinels again) and resend.
 */
function sentinelOptions(url: string, sentinel: NonNullable<RedisStoreConfig['sentinel']>, common: RedisOptions): RedisOptions {
  const u = new URL(url);
  const opts: RedisOptions = {
    ...common,
    sentinels: sentinel.hosts,
    name: sentinel.name,
    role: 'master',
    reconnectOnError: (e) => (/^READONLY/.test(e.message) ? 2 : false),
    sentinelRetryStrategy: (times) => Math.min(100 * times, 2000),
  };
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.username) opts.username = decodeURIComponent(u.username);
  const db = u.pathname.replace(/^\//, '');
  if (db) opts.db = Number(db);
  if (u.protocol === 'rediss:') opts.tls = {};
  if (sentinel.password) opts.sentinelPassword = sentinel.password;
  return opts;
}

export class RedisStore extends BaseStore {
  readonly backend = 'redis' as const;
  private readonly p: string;
  private readonly channel: string;
  private readonly k: {
    bans: string;
    bansExp: string;
    offences: string;
    offencesForget: string;
    lists: string;
    listsExp: string;
    events: string;
    corr: string;
    corrExp: string;
    holds: string;
  };
  private client!: Client;
  private sub!: Redis;
  private closed = false;
  private lastErrorLog = 0;
  private subReadyOnce = false;
  private reloadTimer?: NodeJS.Timeout;
  /** The rollup counts of the events in the batch being filled (event-rollups.ts). */
  private readonly rollups = new RollupCounter();
  /** Decision events waiting to be sent, a batch per script call. */
  private readonly events = new RedisEventBatch(async (pairs) => {
    // Not this.call: close() sends the last batch after it has shut the door to new work.
    try {
      const incs = this.rollups.take();
      // Both calls leave together; both are awaited, so a Redis outage rejects the batch once and leaves no stray rejection.
      const counted = incs.length === 0 ? undefined : this.client.flRollAdd(`${this.p}roll:hours`, ...rollupArgs(this.p, incs));
      const [added] = await Promise.all([this.client.flEventsAdd(this.k.events, this.cfg.eventsMaxLen ?? 1_000_000, ...pairs), counted]);
      return added;
    } catch (e) {
      throw translate(e);
    }
  });

  /** Greylist attempts of a loop turn, one script call per batch. */
  private readonly greys = new RedisGreyBatch(async (keys, args) => {
    // Not this.call: close() sends the last batch after it has shut the door to new work.
    try {
      return await this.client.flGreyAttempt(keys.length, ...keys, ...args);
    } catch (e) {
      throw translate(e);
    }
  });

  private constructor(
    private readonly cfg: RedisStoreConfig,
    deps: StoreDeps,
  ) {
    super(deps);
    this.p = cfg.prefix ?? 'fl:';
    this.channel = `${this.p}changes`;
    this.k = {
      bans: `${this.p}bans`,
      bansExp: `${this.p}bans:exp`,
      offences: `${this.p}offences`,
      offencesForget: `${this.p}offences:forget`,
      lists: `${this.p}lists`,
      listsExp: `${this.p}lists:exp`,
      events: `${this.p}events`,
      corr: `${this.p}corr`,
      corrExp: `${this.p}corr:exp`,
      holds: `${this.p}holds`,
    };
  }

  static async open(cfg: RedisStoreConfig, deps: StoreDeps = {}): Promise<RedisStore> {
    const store = new RedisStore(cfg, deps);
    await store.connect();
    store.startPurgeTimer(deps.purgeIntervalSeconds);
    return store;
  }

  private makeClient(name: string): Redis {
    const common: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.cfg.commandTimeoutMs ?? 1000,
      connectTimeout: this.cfg.connectTimeoutMs ?? 3000,
      // Keep trying, quickly at first, never slower than every 2 s.
      retryStrategy: (times) => Math.min(100 * times, 2000),
      connectionName: `frontline-${name}`,
      // Commands issued in the same tick (concurrent decisions) leave in one write: on a busy
      // policy server the socket writes, not Redis, cost the most.
      enableAutoPipelining: true,
      // …except the calls that already carry a batch (a loop turn's greylist attempts, 100
      // decision events): auto-pipelining keeps each turn's pipeline in a Map that it adds to and
      // deletes from, and V8's obsolete hash tables point to their successors — once one was
      // promoted, every later pipeline, with the decisions waiting on it, survived young-generation
      // GC (docs/performance.md, "What survives a scavenge").
      autoPipeliningIgnoredCommands: ['flGreyAttempt', 'flEventsAdd', 'flRollAdd'],
    };
    const c = this.cfg.sentinel ? new Redis(sentinelOptions(this.cfg.url, this.cfg.sentinel, common)) : new Redis(this.cfg.url, common);
    c.on('error', (e: Error) => this.logError(e, name));
    return c;
  }

  /**
   * With min_replicas set, a ban or list change is acknowledged only once that many replicas
   * hold it: WAIT covers every write this connection sent before it, so a fail-over after the
   * acknowledgement cannot lose the change. Fewer replicas in time: not acknowledged (an error),
   * although the primary may keep it.
   */
  private async replicated(what: string): Promise<void> {
    const want = this.cfg.minReplicas ?? 0;
    if (want === 0) return;
    const ms = this.cfg.replicaWaitMs ?? 1000;
    const got = await this.call((c) => c.wait(want, ms));
    if (got < want) {
      throw new StoreUnavailableError(`redis: ${what} reached ${got} of ${want} replicas within ${ms} ms (store.redis.min_replicas): not acknowledged`);
    }
  }

  /** ioredis reports every failed reconnect; one line per 10 s is enough. */
  private logError(e: Error, conn: string): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.logger.warn({ err: e.message, conn, url: this.cfg.url.replace(/\/\/[^@]*@/, '//***@') }, 'redis connection problem');
  }

  private async connect(): Promise<void> {
    const client = this.makeClient('cmd') as Client;
    client.defineCommand('flBan', { numberOfKeys: 4, lua: BAN_LUA });
    client.defineCommand('flUnban', { numberOfKeys: 4, lua: UNBAN_LUA });
    client.defineCommand('flListAdd', { numberOfKeys: 3, lua: LIST_ADD_LUA });
    client.defineCommand('flListDel', { numberOfKeys: 2, lua: LIST_DEL_LUA });
    client.defineCommand('flRate', { numberOfKeys: 1, lua: RATE_LUA });
    client.defineCommand('flGreyClientPass', { numberOfKeys: 1, lua: GREY_CLIENT_PASS_LUA });
    // Its number of keys comes with each call: one per attempt of the batch.
    client.defineCommand('flGreyAttempt', { lua: GREY_ATTEMPT_LUA });
    client.defineCommand('flEventsAdd', { numberOfKeys: 1, lua: EVENTS_ADD_LUA });
    client.defineCommand('flRollAdd', { numberOfKeys: 1, lua: ROLLUP_ADD_LUA });
    client.defineCommand('flRollPrune', { numberOfKeys: 1, lua: ROLLUP_PRUNE_LUA });
    client.defineCommand('flCorrRecord', { numberOfKeys: 2, lua: CORRESPONDENT_RECORD_LUA });
    client.defineCommand('flCorrTrim', { numberOfKeys: 2, lua: CORRESPONDENT_TRIM_LUA });
    client.defineCommand('flSpread', { numberOfKeys: 5, lua: SPREAD_LUA });
    // Variable key count: a reset alone (4 keys) or a release (5, with the holds hash).
    client.defineCommand('flSpreadReset', { lua: SPREAD_RESET_LUA });
    client.defineCommand('flPurgeZset', { numberOfKeys: 2, lua: PURGE_ZSET_LUA });
    client.defineCommand('flPurgeLists', { numberOfKeys: 1, lua: PURGE_LISTS_LUA });
    const sub = this.makeClient('sub');
    this.client = client;
    this.sub = sub;
    const timeout = this.cfg.connectTimeoutMs ?? 3000;
    try {
      await withTimeout(Promise.all([client.connect(), sub.connect()]), timeout, `redis: no connection to ${this.cfg.url} within ${timeout} ms`);
      sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
      await sub.subscribe(this.channel);
      await this.reload();
      await client.set(`${this.p}schema`, '1');
      // The rollups' coarser counters count from now on: older buckets are read from the finer ones (event-rollups.ts).
      await client.set(`${this.p}${COARSE_SINCE_KEY}`, String(this.clock.now()), 'NX');
    } catch (e) {
      client.disconnect();
      sub.disconnect();
      throw translate(e);
    }
    // Messages published while the subscriber was away are lost: reload the index when both connections are back.
    sub.on('ready', () => this.scheduleReload());
    client.on('ready', () => this.scheduleReload());
    this.subReadyOnce = true;
  }

  /** Reload the index after a reconnect, retrying until Redis answers (or the store closes). */
  private scheduleReload(): void {
    if (!this.subReadyOnce || this.closed || this.reloadTimer) return;
    const attempt = () => {
      this.reloadTimer = undefined;
      if (this.closed) return;
      this.reload().then(
        () => this.logger.info({ bans: this.index.stats().bans }, 'redis back: index reloaded'),
        () => {
          this.reloadTimer = setTimeout(attempt, 250);
          this.reloadTimer.unref();
        },
      );
    };
    this.reloadTimer = setTimeout(attempt, 0);
    this.reloadTimer.unref();
  }

  private onMessage(channel: string, message: string): void {
    if (channel !== this.channel) return;
    let msg: { origin: string; change: StoreChange };
    try {
      msg = JSON.parse(message) as { origin: string; change: StoreChange };
    } catch {
      this.logger.warn({ channel }, 'ignoring malformed change message');
      return;
    }
    if (msg.origin !== this.origin) this.changed(msg.change);
  }

  /** Run a Redis call; every failure that is not a bug becomes StoreUnavailableError. */
  private async call<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('redis: store is closed');
    try {
      return await fn(this.client);
    } catch (e) {
      throw translate(e);
    }
  }

  /** Rebuild the in-memory index from Redis. */
  private async reload(): Promise<void> {
    const fresh = this.beginReload();
    try {
      await this.readIndex(fresh);
    } catch (e) {
      this.finishReload(undefined);
      throw e;
    }
    this.finishReload(fresh);
  }

  private async readIndex(fresh: MemoryIndex): Promise<void> {
    const now = this.clock.now();
    // ZSCAN (scanBans), not OFFSET pages: a ban passed twice, or changed meanwhile, is put right by
    // the changes finishReload replays.
    await this.scanBanPages((cidrs, expiresAt) => {
      for (let i = 0; i < cidrs.length; i++) fresh.setBan(cidrs[i], expiresAt[i]);
    }, now);
    const lists = await this.call((c) => c.hgetall(this.k.lists));
    for (const [name, kind] of Object.entries(lists)) {
      fresh.defineList(name, checkListKind(kind));
      let cursor = '0';
      do {
        const [next, flat] = await this.call((c) => c.hscan(`${this.p}list:${name}`, cursor, 'COUNT', 5000));
        cursor = next;
        for (let i = 0; i < flat.length; i += 2) {
          const meta = JSON.parse(flat[i + 1]) as { expiresAt?: number };
          if (meta.expiresAt === undefined || meta.expiresAt > now) fresh.listAdd(name, kind as ListKind, flat[i], meta.expiresAt);
        }
      } while (cursor !== '0');
    }
  }

  // ---- bans

  protected async writeBan(cidr: string, input: BanInput, now: number): Promise<BanPlan> {
    let fixed = '';
    if (input.durationSeconds !== undefined) {
      const ms = Math.round(input.durationSeconds * 1000);
      if (!(ms > 0)) throw new InvalidEntryError(`ban duration must be > 0 seconds (got ${input.durationSeconds})`);
      fixed = String(ms);
    }
    const durations = fixed ? [] : durationTable(this.policy, this.random).map((s) => s * 1000);
    const raw = await this.call((c) =>
      c.flBan(
        this.k.bans,
        this.k.bansExp,
        this.k.offences,
        this.k.offencesForget,
        cidr,
        now,
        this.policy.forgetAfterSeconds * 1000,
        input.reason,
        input.category,
        input.source,
        this.origin,
        this.channel,
        fixed,
        ...durations,
      ),
    );
    await this.replicated(`ban of ${cidr}`);
    const r = JSON.parse(raw) as { ban: Ban; created: boolean; changed: boolean };
    r.ban = shapeBan(r.ban);
    return { ban: r.ban, created: r.created, changed: r.changed, offence: { offences: r.ban.offences, firstSeen: r.ban.firstSeen, quietSince: r.ban.expiresAt } };
  }

  protected async writeUnban(cidr: string, now: number): Promise<boolean> {
    const n = await this.call((c) =>
      c.flUnban(this.k.bans, this.k.bansExp, this.k.offences, this.k.offencesForget, cidr, now, this.policy.forgetAfterSeconds * 1000, this.origin, this.channel),
    );
    if (n === 1) await this.replicated(`lifting the ban of ${cidr}`);
    return n === 1;
  }

  protected async readBan(cidr: string): Promise<Ban | undefined> {
    return banOf(await this.call((c) => c.hget(this.k.bans, cidr)));
  }

  protected async readBans(opts: ListBansOptions & { limit: number; offset: number }, now: number): Promise<Ban[]> {
    if (opts.limit === 0) return [];
    if (opts.category === undefined) {
      const cidrs = await this.call((c) => c.zrevrangebyscore(this.k.bansExp, '+inf', `(${now}`, 'LIMIT', opts.offset, opts.limit));
      return this.bansFor(cidrs, now);
    }
    const out: Ban[] = [];
    let skipped = 0;
    const page = 1000;
    for (let at = 0; out.length < opts.limit; at += page) {
      const cidrs = await this.call((c) => c.zrevrangebyscore(this.k.bansExp, '+inf', `(${now}`, 'LIMIT', at, page));
      for (const b of await this.bansFor(cidrs, now)) {
        if (b.category !== opts.category) continue;
        if (skipped < opts.offset) skipped++;
        else if (out.length < opts.limit) out.push(b);
      }
      if (cidrs.length < page) break;
    }
    return out;
  }

  protected async scanBanPages(onPage: BanPageReader, now: number): Promise<number> {
    // ZSCAN of the expiry index: every member present for the whole scan comes at least once, with
    // no OFFSET walk; its score is the expiry, so the ban hash (reasons, JSON) is never read.
    let cursor = '0';
    let total = 0;
    do {
      const [next, flat] = await this.call((c) => c.zscan(this.k.bansExp, cursor, 'COUNT', SCAN_COUNT));
      cursor = next;
      const cidrs: string[] = [];
      const expiresAt: number[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const at = Number(flat[i + 1]);
        if (!(at > now)) continue;
        cidrs.push(flat[i]);
        expiresAt.push(at);
      }
      total += cidrs.length;
      if (cidrs.length > 0) onPage(cidrs, expiresAt);
    } while (cursor !== '0');
    return total;
  }

  protected async scanBanRecordPages(onPage: BanRecordReader, now: number): Promise<number> {
    // HSCAN of the ban hash: the record comes with its key, so one round trip per page and no
    // OFFSET walk of the expiry index. Expired records not yet purged are left out here.
    let cursor = '0';
    let total = 0;
    do {
      const [next, flat] = await this.call((c) => c.hscan(this.k.bans, cursor, 'COUNT', RECORD_COUNT));
      cursor = next;
      const bans: Ban[] = [];
      for (let i = 1; i < flat.length; i += 2) {
        const b = banOf(flat[i]);
        if (b !== undefined && b.expiresAt > now) bans.push(b);
      }
      total += bans.length;
      if (bans.length > 0 && onPage(bans) === false) return total;
    } while (cursor !== '0');
    return total;
  }

  private async bansFor(cidrs: string[], now: number): Promise<Ban[]> {
    const out: Ban[] = [];
    // In chunks: one HMGET of some 70,000 spread arguments overflowed the stack inside ioredis
    // (listBans of 100,000, as the dashboard asks), and its auto-pipelining then threw where no
    // caller could catch it: the process exited.
    for (let at = 0; at < cidrs.length; at += HMGET_CHUNK) {
      const chunk = cidrs.slice(at, at + HMGET_CHUNK);
      const raws = await this.call((c) => c.hmget(this.k.bans, ...chunk));
      for (const r of raws) {
        const b = banOf(r);
        if (b !== undefined && b.expiresAt > now) out.push(b);
      }
    }
    return out;
  }

  // ---- lists

  protected async writeListAdd(e: ListEntry): Promise<void> {
    const meta: { source: string; addedAt: number; expiresAt?: number } = { source: e.source, addedAt: e.addedAt };
    if (e.expiresAt !== undefined) meta.expiresAt = e.expiresAt;
    const change: StoreChange = { kind: 'list-add', entry: e };
    const r = await this.call((c) =>
      c.flListAdd(
        this.k.lists,
        `${this.p}list:${e.list}`,
        this.k.listsExp,
        e.list,
        e.kind,
        e.entry,
        JSON.stringify(meta),
        e.expiresAt ?? '',
        this.origin,
        this.channel,
        JSON.stringify(change),
      ),
    );
    if (r !== 'OK') throw new InvalidEntryError(`list "${e.list}" holds ${r} entries, not ${e.kind}`);
    await this.replicated(`list ${e.list} entry ${e.entry}`);
  }

  protected async writeListDel(list: string, entry: string): Promise<boolean> {
    const n = await this.call((c) => c.flListDel(`${this.p}list:${list}`, this.k.listsExp, list, entry, this.origin, this.channel));
    if (n > 0) await this.replicated(`deleting ${entry} from list ${list}`);
    return n > 0;
  }

  protected async readListKind(list: string): Promise<ListKind | undefined> {
    const k = await this.call((c) => c.hget(this.k.lists, list));
    return k === null ? undefined : checkListKind(k);
  }

  protected async readList(list: string, now: number): Promise<ListEntry[]> {
    const kind = await this.readListKind(list);
    if (!kind) return [];
    const all = await this.call((c) => c.hgetall(`${this.p}list:${list}`));
    const out: ListEntry[] = [];
    for (const [entry, raw] of Object.entries(all)) {
      const meta = JSON.parse(raw) as { source: string; addedAt: number; expiresAt?: number };
      if (meta.expiresAt !== undefined && meta.expiresAt <= now) continue;
      const e: ListEntry = { list, kind, entry, source: meta.source, addedAt: meta.addedAt };
      if (meta.expiresAt !== undefined) e.expiresAt = meta.expiresAt;
      out.push(e);
    }
    return out.sort((a, b) => (a.entry < b.entry ? -1 : a.entry > b.entry ? 1 : 0));
  }

  protected async readListNames(now: number): Promise<ListInfo[]> {
    const lists = await this.call((c) => c.hgetall(this.k.lists));
    const out: ListInfo[] = [];
    for (const name of Object.keys(lists).sort()) {
      const entries = (await this.readList(name, now)).length;
      out.push({ name, kind: checkListKind(lists[name]), entries });
    }
    return out;
  }

  // ---- greylisting

  private greyKeyName(key: string): string {
    return `${this.p}grey:${key}`;
  }

  /** Redis TTL for something the clock says expires at `expiresAt` (a margin: the clock decides, the TTL only collects garbage). */
  private ttlMs(expiresAt: number): number {
    return Math.max(1000, Math.ceil(expiresAt - this.clock.now()) + 60_000);
  }

  async greyGet(key: string): Promise<GreyEntry | undefined> {
    const e = parseJson<GreyEntry>(await this.call((c) => c.get(this.greyKeyName(key))));
    return e && e.expiresAt > this.clock.now() ? e : undefined;
  }

  async greyPut(key: string, entry: GreyEntry): Promise<void> {
    const e = checkGreyEntry(entry);
    await this.call((c) => c.set(this.greyKeyName(key), JSON.stringify(e), 'PX', this.ttlMs(e.expiresAt)));
  }

  /**
   * Decided by GREY_ATTEMPT_LUA, atomically across hosts, in one script call
   * with the other attempts of this loop turn (redis/grey-batch.ts): one round
   * trip instead of a read and a write, and one call for many decisions.
   */
  async greyAttempt(key: string, clientIp: string, now: number, timing: GreyTiming): Promise<GreyAttempt> {
    const ip = canonicalIp(clientIp);
    if (this.closed) throw new StoreUnavailableError('redis: store is closed');
    return this.greys.attempt(this.greyKeyName(key), ip, now, timing);
  }

  async greyDelete(key: string): Promise<boolean> {
    return (await this.call((c) => c.del(this.greyKeyName(key)))) > 0;
  }

  /** Every greylist key in Redis with its entry (SCAN: fine for admin commands, not for the hot path). */
  private async greyScan(visit: (key: string, entry: GreyEntry) => void): Promise<void> {
    const pattern = `${this.p.replace(/[*?[\]\\]/g, '\\$&')}grey:*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.call((c) => c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
      cursor = next;
      if (keys.length === 0) continue;
      const raws = await this.call((c) => c.mget(...keys));
      keys.forEach((k, i) => {
        const e = parseJson<GreyEntry>(raws[i]);
        if (e) visit(k.slice(this.p.length + 'grey:'.length), e);
      });
    } while (cursor !== '0');
  }

  async greyList(opts: { limit?: number } = {}): Promise<Array<{ key: string; entry: GreyEntry }>> {
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 1000)), 1_000_000);
    const now = this.clock.now();
    const out: Array<{ key: string; entry: GreyEntry }> = [];
    await this.greyScan((key, entry) => {
      if (entry.expiresAt > now) out.push({ key, entry });
    });
    out.sort((a, b) => b.entry.lastSeen - a.entry.lastSeen || (a.key < b.key ? -1 : 1));
    return out.slice(0, limit);
  }

  async greyDeleteByClient(ipOrCidr: string): Promise<number> {
    const net = parseNetwork(ipOrCidr);
    if (!net) throw new InvalidEntryError(`not an IP address or CIDR: ${JSON.stringify(ipOrCidr)}`);
    const doomed: string[] = [];
    await this.greyScan((key, entry) => {
      const ip = parseNetwork(entry.clientIp);
      if (ip && networkContains(net, ip)) doomed.push(this.greyKeyName(key));
    });
    let n = 0;
    for (let i = 0; i < doomed.length; i += 500) {
      const chunk = doomed.slice(i, i + 500);
      n += await this.call((c) => c.del(...chunk));
    }
    return n;
  }

  async greyClientPasses(client: string): Promise<number> {
    const o = parseJson<{ passes: number; expiresAt: number }>(await this.call((c) => c.get(`${this.p}greyc:${client}`)));
    return o && o.expiresAt > this.clock.now() ? o.passes : 0;
  }

  async greyClientPass(client: string, expiresAt: number): Promise<number> {
    return this.call((c) => c.flGreyClientPass(`${this.p}greyc:${client}`, this.clock.now(), expiresAt));
  }

  // ---- rate limits

  async rateTake(key: string, req: RateRequest): Promise<RateResult> {
    const { capacity, refillPerSecond, cost } = checkRateRequest(req);
    const [allowed, left] = await this.call((c) => c.flRate(`${this.p}rate:${key}`, this.clock.now(), capacity, refillPerSecond, cost));
    const remaining = Number(left);
    return { allowed: allowed === 1, remaining, retryAfterSeconds: allowed === 1 ? 0 : (cost - remaining) / refillPerSecond };
  }

  // ---- sasl_spread and held users

  private spreadKeys(user: string): string[] {
    const base = `${this.p}spread:${user}:`;
    return [`${base}ip`, `${base}asn`, `${base}country`, `${base}rcpt`, `${base}first`];
  }

  async spreadRecord(input: SpreadRecord): Promise<SpreadCounts> {
    const rec = checkSpreadRecord(input);
    const pairs: Arg[] = [];
    for (const v of rec.values) pairs.push(SPREAD_KIND_INDEX[v.kind], v.value);
    const [ips, asns, countries, newRcpts] = await this.call((c) =>
      c.flSpread(...this.spreadKeys(rec.user), rec.now, rec.windowMs, rec.newWindowMs, rec.knownMs, rec.maxValues, ...pairs),
    );
    return { ips, asns, countries, newRcpts };
  }

  async spreadReset(user: string): Promise<void> {
    const [ip, asn, country, , first] = this.spreadKeys(user);
    await this.call((c) => c.flSpreadReset(4, ip, asn, country, first, user));
  }

  async userHold(input: UserHold): Promise<{ hold: UserHold; created: boolean }> {
    const hold = checkUserHold(input);
    const json = JSON.stringify({ by: hold.by, reason: hold.reason, createdAt: hold.createdAt });
    if ((await this.call((c) => c.hsetnx(this.k.holds, hold.user, json))) === 1) return { hold, created: true };
    return { hold: (await this.userHoldGet(hold.user)) ?? hold, created: false };
  }

  async userRelease(user: string): Promise<UserHold | undefined> {
    const [ip, asn, country, , first] = this.spreadKeys(user);
    return holdOf(user, await this.call((c) => c.flSpreadReset(5, ip, asn, country, first, this.k.holds, user)));
  }

  async userHoldGet(user: string): Promise<UserHold | undefined> {
    return holdOf(user, await this.call((c) => c.hget(this.k.holds, user)));
  }

  async userHolds(): Promise<UserHold[]> {
    const all = await this.call((c) => c.hgetall(this.k.holds));
    const out: UserHold[] = [];
    for (const [user, json] of Object.entries(all)) {
      const h = holdOf(user, json);
      if (h) out.push(h);
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.user < b.user ? -1 : 1)).slice(0, 10_000);
  }

  // ---- learned correspondents

  async correspondentRecord(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent> {
    const json = await this.call((c) => c.flCorrRecord(this.k.corr, this.k.corrExp, key, kind, now, expiresAt));
    return correspondentOf(key, json)!;
  }

  async correspondentGet(key: string, now: number): Promise<Correspondent | undefined> {
    const c = correspondentOf(key, await this.call((cl) => cl.hget(this.k.corr, key)));
    return c && c.expiresAt > now ? c : undefined;
  }

  async correspondentAll(now: number): Promise<Correspondent[]> {
    const out: Correspondent[] = [];
    const keys = await this.call((c) => c.zrangebyscore(this.k.corrExp, `(${now}`, '+inf'));
    for (let i = 0; i < keys.length; i += 1000) {
      const page = keys.slice(i, i + 1000);
      const values = await this.call((c) => c.hmget(this.k.corr, ...page));
      page.forEach((key, j) => {
        const c = correspondentOf(key, values[j]);
        if (c && c.expiresAt > now) out.push(c);
      });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async correspondentTrim(keep: number): Promise<number> {
    return this.call((c) => c.flCorrTrim(this.k.corr, this.k.corrExp, Math.max(0, Math.floor(keep))));
  }

  // ---- decision log

  /** Batched (event-batch.ts): the promise settles when the event's batch is in the stream. */
  logEvent(event: LoggedDecision): Promise<void> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('redis: store is closed'));
    let json: string;
    let pieces: string[];
    try {
      // Each evidence entry compacted and serialised once, for the stream and the rollups.
      pieces = compactEvidencePieces(event.evidence ?? []);
      json = cleanEventJson(event, pieces);
    } catch (e) {
      return Promise.reject(e);
    }
    this.countEvent(event, pieces);
    return this.events.push(Math.round(event.ts), json);
  }

  /** Count a (checked) event into the rollups of the batch it joins, as the SQLite writer counts the cleaned event. */
  private countEvent(event: LoggedDecision, pieces: string[]): void {
    const cut = (v: string) => (v.length > 500 ? v.slice(0, 500) : v);
    const e: Parameters<RollupCounter['add']>[0] = {
      ts: Math.round(event.ts),
      clientIp: canonicalOrRaw(cut(event.clientIp)),
      action: event.action,
      rule: cut(event.rule),
    };
    if (event.from !== undefined) e.from = cut(event.from);
    if (Array.isArray(event.wouldHave) && event.wouldHave.length > 0) e.wouldHave = event.wouldHave.slice(0, 20);
    this.rollups.add(e, pieces);
  }

  /** Counters of the decision log (event-rollups.ts), after every event logged before the call. */
  async countEvents(q: RollupQuery): Promise<RollupRow[]> {
    await this.events.sync();
    return this.call((c) => queryRedisRollups(c, this.p, q));
  }

  /** Newest first, scanning back through the stream (at most 200,000 entries per query). */
  async queryEvents(q: EventQuery): Promise<DecisionEvent[]> {
    await this.events.sync();
    const limit = eventLimit(q);
    const matches = eventMatcher({ ...q, ip: q.ip === undefined ? undefined : canonicalIp(q.ip) });
    const out: DecisionEvent[] = [];
    let end = q.until !== undefined ? `${Math.floor(q.until)}` : '+';
    const start = q.since !== undefined ? `${Math.ceil(q.since)}` : '-';
    const page = 1000;
    for (let scanned = 0; out.length < limit && scanned < 200_000; scanned += page) {
      const rows = await this.call((c) => c.xrevrange(this.k.events, end, start, 'COUNT', page));
      for (const [id, fields] of rows) {
        const e = JSON.parse(fields[1]) as DecisionEvent;
        e.id = id;
        if (matches(e)) out.push(e);
        if (out.length >= limit) break;
      }
      if (rows.length < page) break;
      end = `(${rows[rows.length - 1][0]}`;
    }
    return out;
  }

  async pruneEvents(opts: PruneOptions): Promise<number> {
    await this.events.sync();
    let n = 0;
    if (opts.maxAgeSeconds !== undefined) {
      const minId = Math.max(0, Math.floor(this.clock.now() - opts.maxAgeSeconds * 1000));
      n += await this.call((c) => c.xtrim(this.k.events, 'MINID', minId));
    }
    if (opts.maxRows !== undefined) {
      const keep = Math.max(0, Math.floor(opts.maxRows));
      n += await this.call((c) => c.xtrim(this.k.events, 'MAXLEN', keep));
    }
    // The rollups of the hours before the oldest remaining event's (all before this hour's when none is left).
    const first = await this.call((c) => c.xrange(this.k.events, '-', '+', 'COUNT', 1));
    const oldest = first.length > 0 ? Number(first[0][0].split('-')[0]) : this.clock.now();
    const before = Math.floor(oldest / 3_600_000) * 3_600_000;
    while ((await this.call((c) => c.flRollPrune(`${this.p}roll:hours`, `${this.p}roll:`, before))) >= 1000);
    return n;
  }

  // ---- housekeeping

  protected async purgeBackend(now: number): Promise<PurgeResult> {
    const drain = async (run: () => Promise<number>): Promise<number> => {
      let total = 0;
      for (;;) {
        const n = await run();
        total += n;
        if (n < 1000) return total;
      }
    };
    return {
      bans: await drain(() => this.call((c) => c.flPurgeZset(this.k.bansExp, this.k.bans, now, 1000))),
      offences: await drain(() => this.call((c) => c.flPurgeZset(this.k.offencesForget, this.k.offences, now, 1000))),
      listEntries: await drain(() => this.call((c) => c.flPurgeLists(this.k.listsExp, now, 1000, this.p))),
      // Greylist entries and rate buckets carry Redis TTLs: Redis drops them itself.
      greylist: 0,
      rateBuckets: 0,
      spread: 0,
      changes: 0,
      correspondents: await drain(() => this.call((c) => c.flPurgeZset(this.k.corrExp, this.k.corr, now, 1000))),
    };
  }

  async health(): Promise<StoreHealth> {
    const t0 = performance.now();
    try {
      await this.call((c) => c.ping());
      return { ok: true, backend: 'redis', detail: `${this.cfg.url.replace(/\/\/[^@]*@/, '//***@')} prefix ${this.p}`, latencyMs: performance.now() - t0 };
    } catch (e) {
      return { ok: false, backend: 'redis', detail: (e as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.events.sync(), this.greys.sync()]);
    this.stopPurgeTimer();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.sub.removeAllListeners('ready');
    this.client.removeAllListeners('ready');
    await Promise.allSettled([this.client.quit(), this.sub.quit()]);
    this.client.disconnect();
    this.sub.disconnect();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StoreUnavailableError(message)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
