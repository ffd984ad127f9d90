// What both backends share: input checking and canonical forms, the
// never-ban rule, the in-memory index and the change listeners, the purge
// timer. A backend supplies storage; this class decides what goes in.

import type { RollupQuery, RollupRow } from './event-rollups.js';
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../core/types.js';
import { resolveBanPolicy, type BanPlan } from './bans.js';
import { canonicalEntry, checkListName, inferKind } from './entries.js';
import { InvalidEntryError, isStoreUnavailable } from './errors.js';
import { canonicalCidr, canonicalIp, exactNetwork, formatNetwork, type Network } from './ip.js';
import { MemoryIndex } from './memory-index.js';
import { NeverBan } from './never-ban.js';
import { localInterfaceAddresses } from './own-addresses.js';
import { SPREAD_KINDS, type BanRefusal } from './types.js';
import {
  DEFAULT_BAN_MIN_PREFIX,
  silentLogger,
  type Ban,
  type BanInput,
  type BanPolicy,
  type BanResult,
  type ChangeListener,
  type DecisionEvent,
  type LoggedDecision,
  type EventQuery,
  type GreyAttempt,
  type GreyEntry,
  type GreyTiming,
  type ListAddOptions,
  type BanPageReader,
  type BanRecordReader,
  type ListBansOptions,
  type ListEntry,
  type ListInfo,
  type ListKind,
  type PruneOptions,
  type PurgeResult,
  type Correspondent,
  type CorrespondentKind,
  type RateRequest,
  type RateResult,
  type Store,
  type StoreChange,
  type StoreDeps,
  type StoreHealth,
  type StoreLogger,
  type StoreLookup,
  type SpreadCounts,
  type SpreadRecord,
  type UserHold,
} from './types.js';

const MAX_TEXT = 500;

function text(field: string, v: unknown, required: boolean): string {
  if (typeof v !== 'string' || (required && v.trim() === '')) throw new InvalidEntryError(`${field} must be a non-empty string`);
  return v.length > MAX_TEXT ? v.slice(0, MAX_TEXT) : v;
}

/** Validate a token-bucket request (shared so both backends refuse the same nonsense). */
export function checkRateRequest(req: RateRequest): Required<RateRequest> {
  const cost = req.cost ?? 1;
  if (!(req.capacity > 0) || !(req.refillPerSecond > 0) || !(cost >= 0)) {
    throw new InvalidEntryError(`rate limit needs capacity > 0, refillPerSecond > 0, cost ≥ 0 (got ${JSON.stringify(req)})`);
  }
  if (cost > req.capacity) throw new InvalidEntryError(`rate limit cost ${cost} exceeds capacity ${req.capacity}: it could never pass`);
  return { capacity: req.capacity, refillPerSecond: req.refillPerSecond, cost };
}

/** The most values sasl_spread keeps per user and kind, whatever the config says (memory bound). */
export const SPREAD_MAX_VALUES = 10_000;
/** Longest user key and value a spread record or hold may carry (the check shortens first: sasl-spread.ts). */
const SPREAD_MAX_TEXT = 320;

/** Validate a spread record (shared so both backends refuse the same nonsense). */
export function checkSpreadRecord(rec: SpreadRecord): SpreadRecord {
  if (typeof rec.user !== 'string' || rec.user === '' || rec.user.length > SPREAD_MAX_TEXT) throw new InvalidEntryError('spread: user must be 1-320 characters');
  for (const v of rec.values) {
    if (!SPREAD_KIND_SET.has(v.kind) || typeof v.value !== 'string' || v.value === '' || v.value.length > SPREAD_MAX_TEXT) {
      throw new InvalidEntryError(`spread: bad value ${JSON.stringify(v).slice(0, 100)}`);
    }
  }
  for (const k of ['windowMs', 'newWindowMs', 'knownMs'] as const) {
    if (!(rec[k] > 0)) throw new InvalidEntryError(`spread: ${k} must be > 0`);
  }
  if (!(rec.maxValues >= 1)) throw new InvalidEntryError('spread: maxValues must be >= 1');
  return { ...rec, maxValues: Math.min(Math.floor(rec.maxValues), SPREAD_MAX_VALUES) };
}

export function checkUserHold(hold: UserHold): UserHold {
  if (typeof hold.user !== 'string' || hold.user === '' || hold.user.length > SPREAD_MAX_TEXT) throw new InvalidEntryError('hold: user must be 1-320 characters');
  return { user: hold.user, by: text('by', hold.by, true), reason: text('reason', hold.reason, false), createdAt: hold.createdAt };
}

const SPREAD_KIND_SET: ReadonlySet<string> = new Set(SPREAD_KINDS);

export function checkGreyEntry(entry: GreyEntry): GreyEntry {
  return { ...entry, clientIp: canonicalIp(entry.clientIp) };
}

export abstract class BaseStore implements Store {
  abstract readonly backend: 'sqlite' | 'redis';
  protected readonly clock: Clock;
  protected readonly logger: StoreLogger;
  protected readonly policy: BanPolicy;
  protected readonly random: () => number;
  protected readonly index: MemoryIndex;
  protected readonly neverBan: NeverBan;
  private readonly ownAddress: (ip: string) => boolean;
  private readonly minPrefix: { v4: number; v6: number };
  /** Tells this store's own changes apart when they come back from the shared feed. */
  protected readonly origin = randomUUID();
  private readonly listeners = new Set<ChangeListener>();
  /** Changes seen while a reload reads its snapshot; re-applied on top of it. */
  private reloadBuffer?: StoreChange[];
  private purgeTimer?: NodeJS.Timeout;

  constructor(deps: StoreDeps) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? silentLogger;
    this.policy = resolveBanPolicy(deps.banPolicy);
    this.random = deps.random ?? Math.random;
    this.minPrefix = { ...DEFAULT_BAN_MIN_PREFIX, ...deps.banMinPrefix };
    // The index needs the never-ban set (own addresses) and the set needs the index (never-ban lists).
    const own = (ip: string) => this.neverBan.ownAddress(ip);
    this.ownAddress = own;
    this.index = new MemoryIndex(this.clock, own);
    this.neverBan = new NeverBan(deps.neverBan, deps.neverBanLists, this.index, deps.ownAddresses ?? localInterfaceAddresses());
  }

  get lookup(): StoreLookup {
    return this.index;
  }

  protected startPurgeTimer(seconds: number | undefined): void {
    const s = seconds ?? 300;
    if (s <= 0) return;
    this.purgeTimer = setInterval(() => {
      this.purge().catch((e: unknown) => this.logger.warn({ err: String(e) }, 'store purge failed'));
    }, s * 1000);
    this.purgeTimer.unref();
  }

  protected stopPurgeTimer(): void {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
  }

  // ---- what a backend provides

  /** Atomically: read the active ban and offence record of `cidr`, plan, write if changed, record the change. */
  protected abstract writeBan(cidr: string, input: BanInput, now: number): Promise<BanPlan>;
  protected abstract writeUnban(cidr: string, now: number): Promise<boolean>;
  /** The stored record of exactly `cidr`, expired or not. */
  protected abstract readBan(cidr: string): Promise<Ban | undefined>;
  protected abstract readBans(opts: Required<Pick<ListBansOptions, 'limit' | 'offset'>> & ListBansOptions, now: number): Promise<Ban[]>;
  /** Every ban unexpired at `now`, CIDR and expiry only, page by page (Store.scanBans). */
  protected abstract scanBanPages(onPage: BanPageReader, now: number): Promise<number>;
  /** Every ban unexpired at `now` in full, page by page (Store.scanBanRecords). */
  protected abstract scanBanRecordPages(onPage: BanRecordReader, now: number): Promise<number>;
  /** Add or replace an entry; InvalidEntryError when the list exists with another kind. */
  protected abstract writeListAdd(entry: ListEntry): Promise<void>;
  protected abstract writeListDel(list: string, entry: string): Promise<boolean>;
  protected abstract readListKind(list: string): Promise<ListKind | undefined>;
  protected abstract readList(list: string, now: number): Promise<ListEntry[]>;
  protected abstract readListNames(now: number): Promise<ListInfo[]>;
  protected abstract purgeBackend(now: number): Promise<PurgeResult>;

  abstract greyGet(key: string): Promise<GreyEntry | undefined>;
  abstract greyPut(key: string, entry: GreyEntry): Promise<void>;
  abstract greyAttempt(key: string, clientIp: string, now: number, timing: GreyTiming): Promise<GreyAttempt>;
  abstract greyDelete(key: string): Promise<boolean>;
  abstract greyList(opts?: { limit?: number }): Promise<Array<{ key: string; entry: GreyEntry }>>;
  abstract greyDeleteByClient(ipOrCidr: string): Promise<number>;
  abstract greyClientPasses(client: string): Promise<number>;
  abstract greyClientPass(client: string, expiresAt: number): Promise<number>;
  abstract rateTake(key: string, req: RateRequest): Promise<RateResult>;
  abstract spreadRecord(rec: SpreadRecord): Promise<SpreadCounts>;
  abstract spreadReset(user: string): Promise<void>;
  abstract userHold(hold: UserHold): Promise<{ hold: UserHold; created: boolean }>;
  abstract userRelease(user: string): Promise<UserHold | undefined>;
  abstract userHoldGet(user: string): Promise<UserHold | undefined>;
  abstract userHolds(): Promise<UserHold[]>;
  abstract correspondentRecord(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent>;
  abstract correspondentGet(key: string, now: number): Promise<Correspondent | undefined>;
  abstract correspondentAll(now: number): Promise<Correspondent[]>;
  abstract correspondentTrim(keep: number): Promise<number>;
  abstract logEvent(event: LoggedDecision): Promise<void>;
  abstract queryEvents(q: EventQuery): Promise<DecisionEvent[]>;
  abstract pruneEvents(opts: PruneOptions): Promise<number>;
  abstract countEvents(q: RollupQuery): Promise<RollupRow[]>;
  abstract health(): Promise<StoreHealth>;
  abstract close(): Promise<void>;

  // ---- bans

  /**
   * The one entry point of every ban (CLI, spamtraps, log watching, the trap
   * listener): what is refused here is refused for every source. A CIDR with
   * host bits set or wider than the minimum prefix throws InvalidEntryError;
   * one overlapping the never-ban set (this host's own addresses included) is
   * refused and logged.
   */
  async ban(input: BanInput): Promise<BanResult> {
    if (typeof input.cidr !== 'string') throw new InvalidEntryError('cidr must be a string');
    const net = exactNetwork(input.cidr);
    const cidr = formatNetwork(net);
    const tooWide = this.tooWide(net);
    if (tooWide) throw new InvalidEntryError(tooWide);
    const clean: BanInput = {
      cidr,
      reason: text('reason', input.reason, false),
      category: text('category', input.category, true),
      source: text('source', input.source, true),
      durationSeconds: input.durationSeconds,
    };
    const why = this.neverBan.why(cidr);
    if (why) {
      this.logger.warn({ cidr, category: clean.category, source: clean.source, reason: clean.reason, why }, 'ban refused: never-ban');
      return { refused: true, cidr, why };
    }
    const plan = await this.writeBan(cidr, clean, this.clock.now());
    if (plan.changed) this.changed({ kind: 'ban', ban: plan.ban });
    return { refused: false, ban: plan.ban, created: plan.created };
  }

  private tooWide(net: Network): string | undefined {
    const min = net.v6 ? this.minPrefix.v6 : this.minPrefix.v4;
    if (net.len >= min) return undefined;
    const key = net.v6 ? 'ipv6' : 'ipv4';
    return `${formatNetwork(net)} is wider than a ban may be: the shortest prefix is /${min} (store.bans.min_prefix.${key})`;
  }

  banRefusal(cidr: string): BanRefusal | undefined {
    let net: Network;
    try {
      net = exactNetwork(cidr);
    } catch (e) {
      return { by: 'syntax', why: (e as Error).message };
    }
    const wide = this.tooWide(net);
    if (wide) return { by: 'prefix', why: wide };
    const canon = formatNetwork(net);
    const network = this.neverBan.whyNetwork(canon);
    if (network) return { by: 'network', why: network };
    const listed = this.neverBan.whyListed(canon);
    return listed ? { by: 'list', why: listed } : undefined;
  }

  async unban(cidr: string): Promise<boolean> {
    const c = canonicalCidr(cidr);
    const done = await this.writeUnban(c, this.clock.now());
    if (done) this.changed({ kind: 'unban', cidr: c });
    return done;
  }

  async getBan(ip: string): Promise<Ban | undefined> {
    for (let tries = 0; tries < 4; tries++) {
      const hit = this.index.bannedBy(ip);
      if (!hit) return undefined;
      let ban: Ban | undefined;
      try {
        ban = await this.readBan(hit.cidr);
      } catch (e) {
        if (!isStoreUnavailable(e)) throw e;
        // The index says banned: that stands even when the details cannot be read.
        return {
          cidr: hit.cidr,
          reason: '(details unavailable: store down)',
          category: 'unknown',
          source: 'memory-index',
          firstSeen: 0,
          createdAt: 0,
          expiresAt: hit.expiresAt,
          offences: 0,
        };
      }
      if (ban && ban.expiresAt > this.clock.now()) return ban;
      // The index ran ahead of a change it has not heard about yet: believe the store, and look again.
      if (ban) this.index.setBan(ban.cidr, ban.expiresAt);
      else this.index.deleteBan(hit.cidr);
    }
    return undefined;
  }

  async showBan(cidr: string): Promise<Ban | undefined> {
    const ban = await this.readBan(canonicalCidr(cidr));
    return ban && ban.expiresAt > this.clock.now() ? ban : undefined;
  }

  async listBans(opts: ListBansOptions = {}): Promise<Ban[]> {
    const limit = Math.min(Math.max(0, Math.floor(opts.limit ?? 100)), 100_000);
    const offset = Math.max(0, Math.floor(opts.offset ?? 0));
    return this.readBans({ ...opts, limit, offset }, this.clock.now());
  }

  scanBans(onPage: BanPageReader): Promise<number> {
    return this.scanBanPages(onPage, this.clock.now());
  }

  scanBanRecords(onPage: BanRecordReader): Promise<number> {
    return this.scanBanRecordPages(onPage, this.clock.now());
  }

  countBans(): Promise<Map<string, number>> {
    return this.countBanCategories(this.clock.now());
  }

  /** Store.countBans over the full records; a backend that can count without them does. */
  protected async countBanCategories(now: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    await this.scanBanRecordPages((page) => {
      for (const b of page) counts.set(b.category, (counts.get(b.category) ?? 0) + 1);
    }, now);
    return counts;
  }

  // ---- lists

  private async kindOf(list: string): Promise<ListKind | undefined> {
    return this.index.listKind(list) ?? (await this.readListKind(list));
  }

  async listAdd(list: string, entry: string, opts: ListAddOptions): Promise<ListEntry> {
    checkListName(list);
    const kind = opts.kind ?? (await this.kindOf(list)) ?? inferKind(entry);
    const e: ListEntry = {
      list,
      kind,
      entry: canonicalEntry(kind, entry),
      source: text('source', opts.source, true),
      addedAt: this.clock.now(),
    };
    if (opts.expiresAt !== undefined) {
      if (!Number.isFinite(opts.expiresAt)) throw new InvalidEntryError(`expiresAt must be a time in ms (got ${opts.expiresAt})`);
      e.expiresAt = opts.expiresAt;
    }
    await this.writeListAdd(e);
    this.changed({ kind: 'list-add', entry: e });
    return e;
  }

  async listDel(list: string, entry: string): Promise<boolean> {
    checkListName(list);
    const kind = await this.kindOf(list);
    if (!kind) return false;
    const canon = canonicalEntry(kind, entry);
    const done = await this.writeListDel(list, canon);
    if (done) this.changed({ kind: 'list-del', list, entry: canon });
    return done;
  }

  async listShow(list: string): Promise<ListEntry[]> {
    checkListName(list);
    return this.readList(list, this.clock.now());
  }

  async listNames(): Promise<ListInfo[]> {
    return this.readListNames(this.clock.now());
  }

  async listHas(list: string, value: string | number): Promise<boolean> {
    return this.index.listHas(list, value);
  }

  // ---- change feed

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Start an index reload: changes from now on are remembered for finishReload(). */
  protected beginReload(): MemoryIndex {
    this.reloadBuffer = [];
    return new MemoryIndex(this.clock, this.ownAddress);
  }

  /** Swap in the reloaded index, replaying the changes seen while it was read (they are idempotent). */
  protected finishReload(fresh: MemoryIndex | undefined): void {
    const buffered = this.reloadBuffer ?? [];
    this.reloadBuffer = undefined;
    if (!fresh) return;
    this.index.replaceWith(fresh);
    for (const c of buffered) this.index.apply(c);
  }

  /** A change made here or heard from elsewhere: into the index, then to the listeners. */
  protected changed(change: StoreChange): void {
    this.index.apply(change);
    this.reloadBuffer?.push(change);
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (e) {
        this.logger.error({ err: String(e), change: change.kind }, 'store change listener threw');
      }
    }
  }

  async purge(): Promise<PurgeResult> {
    const r = await this.purgeBackend(this.clock.now());
    this.index.purge();
    return r;
  }
}
