// The Store: everything frontline remembers — bans, named lists, greylist
// entries, rate-limit buckets, the decision log — behind one interface with
// two backends (SQLite embedded, Redis shared between hosts). See
// docs/store.md.
//
// Times are milliseconds since the epoch, taken from the injected Clock;
// durations in configuration are seconds.

import type { Clock, Evidence } from '../core/types.js';
import type { RollupQuery, RollupRow } from './event-rollups.js';

export type { RollupDim, RollupQuery, RollupRow } from './event-rollups.js';

/** Why an address was banned; free text allowed beyond the usual ones. */
export type BanCategory = 'spamtrap' | 'dnsbl' | 'brute-force' | 'probe' | 'policy' | 'manual' | (string & {});

/**
 * Why a CIDR is never banned: `syntax` not a network (or host bits set); `prefix` wider than
 * store.bans.min_prefix; `network` overlaps loopback, this host's addresses, my_networks or
 * store.never_ban; `list` overlaps an entry of a never-ban list (the allow list).
 */
export interface BanRefusal {
  by: 'syntax' | 'prefix' | 'network' | 'list';
  why: string;
}

export interface BanInput {
  /** IP or CIDR; stored in canonical form ("192.0.2.0/24", "192.0.2.7/32"). */
  cidr: string;
  reason: string;
  category: BanCategory;
  /** Who banned: a rule name, `cli:<user>`, `log:<file>`, a host name… */
  source: string;
  /** Fixed duration (manual bans); otherwise the reoffender policy decides. */
  durationSeconds?: number;
}

export interface Ban {
  cidr: string;
  reason: string;
  category: BanCategory;
  source: string;
  /** First offence of the current offence history (survives expiry until forgotten). */
  firstSeen: number;
  /** When this ban started. */
  createdAt: number;
  expiresAt: number;
  /** Offence number of this ban (1 = first); decides its length. */
  offences: number;
}

export type BanResult =
  | {
      refused: false;
      ban: Ban;
      /** False when an unexpired ban already existed (it is kept; a fixed duration may extend it). */
      created: boolean;
    }
  | { refused: true; cidr: string; why: string };

/** Reoffenders: duration = min(base × factor^(offences−1), max) × (1 ± jitter). */
export interface BanPolicy {
  baseSeconds: number;
  factor: number;
  maxSeconds: number;
  /** Fraction (0.1 = ±10 %), so bans made together do not all expire together. */
  jitter: number;
  /** The offence count starts again after this long without a ban. */
  forgetAfterSeconds: number;
}

/** The shortest prefix length a ban may have. */
export interface BanMinPrefix {
  v4: number;
  v6: number;
}

export const DEFAULT_BAN_MIN_PREFIX: BanMinPrefix = { v4: 16, v6: 32 };

export const DEFAULT_BAN_POLICY: BanPolicy = {
  baseSeconds: 3600,
  factor: 2,
  maxSeconds: 30 * 86400,
  jitter: 0.1,
  forgetAfterSeconds: 90 * 86400,
};

export interface ListBansOptions {
  limit?: number;
  offset?: number;
  category?: string;
}

/**
 * - ip: IPs and CIDRs (longest-prefix match);
 * - domain: a name matches itself and its subdomains;
 * - asn: "AS64496" (look the client up in an AsnTable first);
 * - address: whole e-mail addresses, e.g. spamtraps (case-insensitive).
 */
export type ListKind = 'ip' | 'domain' | 'asn' | 'address';
export const LIST_KINDS: readonly ListKind[] = ['ip', 'domain', 'asn', 'address'];

export interface ListEntry {
  list: string;
  kind: ListKind;
  /** Canonical form (CIDR text, lower-case domain, "AS123", lower-case address). */
  entry: string;
  source: string;
  addedAt: number;
  expiresAt?: number;
}

export interface ListAddOptions {
  source: string;
  expiresAt?: number;
  /** Kind of a new list; inferred from the entry when absent. Must match an existing list's kind. */
  kind?: ListKind;
}

export interface ListInfo {
  name: string;
  kind: ListKind;
  entries: number;
}

/** The greylisting delays an attempt is judged by (a part of GreylistConfig). */
export interface GreyTiming {
  delaySeconds: number;
  retryWindowSeconds: number;
  passedTtlSeconds: number;
}

/**
 * What one attempt found: 'first' (new, expired or past its retry window:
 * deferred), 'early' (retried before the delay: deferred), 'retried' (the
 * retry that passes), 'known' (passed before: passes). `seconds`: for
 * 'first' and 'early' the seconds until a retry can pass; for 'retried'
 * how long the sender waited; for 'known' how long ago it first passed.
 */
export interface GreyAttempt {
  outcome: 'first' | 'early' | 'retried' | 'known';
  seconds: number;
}

export interface GreyEntry {
  firstSeen: number;
  lastSeen: number;
  /** When the triplet first passed (retried after the delay); absent while still deferred. */
  passedAt?: number;
  /** Attempts seen (deferred and passed). */
  attempts: number;
  /** Deliveries that passed. */
  passes: number;
  /** Last client IP seen for this triplet. */
  clientIp: string;
  /** The store forgets the entry after this. */
  expiresAt: number;
}

export interface RateRequest {
  /** Bucket size: the burst allowed. */
  capacity: number;
  /** Tokens added back per second (sustained rate). */
  refillPerSecond: number;
  /** Tokens this event costs (default 1). */
  cost?: number;
}

export interface RateResult {
  allowed: boolean;
  /** Tokens left after this event (fractional). */
  remaining: number;
  /** When refused: seconds until `cost` tokens are back; 0 when allowed. */
  retryAfterSeconds: number;
}

/** Evidence as stored in the decision log: enough to explain, small enough to keep millions. */
export interface EventEvidence {
  check: string;
  result: string;
  detail?: string;
  ms?: number;
  /**
   * The evidence's structured data that rule conditions compare
   * (`check.field OP value`): scalar values and lists of them, bounded
   * (events.ts, compactData). Absent on records written before replay
   * data was kept (events file version 4) and when the check gave none.
   */
  data?: Record<string, EventDataValue>;
  /**
   * Keys of `data` left out or shortened because they were too large (a
   * condition on them cannot be replayed); a last `*` stands for every key
   * not in `data`.
   */
  dataCut?: string[];
}

export type EventDataValue = string | number | boolean | Array<string | number | boolean>;

/** One decision, as stored in the log. */
export interface DecisionEvent {
  /** Assigned by the store; ignored on logEvent. */
  id?: string;
  ts: number;
  sessionId?: string;
  clientIp: string;
  helo?: string;
  /** MAIL FROM ('' = null sender). */
  from?: string;
  rcpts: string[];
  stage: string;
  action: string;
  code?: number;
  rule: string;
  /** Reply text, when there was one. */
  text?: string;
  evidence: EventEvidence[];
  /** Sum of the score rules walked, when the policy scores. */
  score?: number;
  /** What rules in `mode: test` would have done (the verdict did not follow them). */
  wouldHave?: EventWouldHave[];
  /**
   * The rest of the envelope a re-evaluation needs (`frontline replay`):
   * the client's reverse name as the MTA saw it, the SASL login and how many
   * recipients the transaction had so far (at RCPT, `rcpts` holds only the
   * current one). `rcptCount` is present on every record that keeps them
   * (events file version 4 and later; Redis events written since): its
   * absence marks a record from before, whose envelope replay cannot trust.
   */
  clientPtr?: string;
  saslUser?: string;
  rcptCount?: number;
}

/**
 * A decision as handed to logEvent: its evidence may be the policy's own
 * entries, which the store compacts (events.ts, compactEvidencePieces) once,
 * as it serialises them — not copied compact first and then again.
 */
export interface LoggedDecision extends Omit<DecisionEvent, 'evidence'> {
  evidence: ReadonlyArray<EventEvidence | Evidence>;
}

/** One test-mode finding as the decision log keeps it. */
export interface EventWouldHave {
  rule: string;
  action: string;
  code?: number;
  text?: string;
}

export interface EventQuery {
  /** Exact client IP. */
  ip?: string;
  /** Matches the sender's domain or any recipient's domain (exactly, lower-case). */
  domain?: string;
  /** Client IPs inside this network ("192.0.2.0/24", "2001:db8::/32"). Throws InvalidEntryError when it is none. */
  cidr?: string;
  /** MAIL FROM, exactly (case-insensitive; '' = the null sender). */
  from?: string;
  /** One of the recipients, exactly (case-insensitive). */
  rcpt?: string;
  since?: number;
  until?: number;
  rule?: string;
  action?: string;
  /** Only decisions where a rule in test mode would have acted. */
  wouldHave?: boolean;
  /** Newest first; default 100, at most 10,000. */
  limit?: number;
}

export interface PruneOptions {
  /** Delete events older than this. */
  maxAgeSeconds?: number;
  /** Keep at most this many (the newest). */
  maxRows?: number;
}

export type StoreChange =
  | { kind: 'ban'; ban: Ban }
  | { kind: 'unban'; cidr: string }
  | { kind: 'list-add'; entry: ListEntry }
  | { kind: 'list-del'; list: string; entry: string };

export type ChangeListener = (change: StoreChange) => void;

export interface StoreHealth {
  ok: boolean;
  backend: 'sqlite' | 'redis';
  detail: string;
  latencyMs?: number;
}

export interface PurgeResult {
  bans: number;
  offences: number;
  listEntries: number;
  greylist: number;
  rateBuckets: number;
  /** sasl_spread values past their window (SQLite; Redis expires them itself). */
  spread: number;
  changes: number;
  correspondents: number;
}

/** `example.com` (a domain) or `bob@gmail.com` (an address at a free-mail provider). */
export type CorrespondentKind = 'domain' | 'address';

/** A learned correspondent (src/intel/correspondents): somewhere our users write to. */
export interface Correspondent {
  /** Lower case. */
  key: string;
  kind: CorrespondentKind;
  /** Messages (recipients) our users sent there since it was first seen (or last forgotten). */
  count: number;
  firstSeen: number;
  lastSeen: number;
  /** Forgotten after this (each message moves it on). */
  expiresAt: number;
}

/** What sasl_spread counts per SASL user (src/checks/sasl-spread.ts). */
export type SpreadKind = 'ip' | 'asn' | 'country' | 'rcpt';
export const SPREAD_KINDS: readonly SpreadKind[] = ['ip', 'asn', 'country', 'rcpt'];

/** One message's values for a user's spread, and the windows they are counted in. */
export interface SpreadRecord {
  /** The SASL login as the store keys it (lower case, at most 256 characters: sasl-spread.ts spreadUserKey). */
  user: string;
  values: ReadonlyArray<{ kind: SpreadKind; value: string }>;
  now: number;
  /** ip, asn, country: counted (and kept) while last seen within this many ms. */
  windowMs: number;
  /** rcpt: a recipient is new while first seen within this many ms. */
  newWindowMs: number;
  /** rcpt: a recipient is remembered (not new) this long after the user last wrote to it. */
  knownMs: number;
  /** Values kept per user and kind at most; the least recently seen go first (counts saturate here). */
  maxValues: number;
}

/** Distinct values of one user, after the record: ip/asn/country within the window, recipients first seen within the new-recipient window. */
export interface SpreadCounts {
  ips: number;
  asns: number;
  countries: number;
  newRcpts: number;
}

/** A SASL user whose mail is deferred until released (frontline user hold|release). */
export interface UserHold {
  /** As the store keys it (spreadUserKey). */
  user: string;
  /** Who held: `rule:sasl-spread`, `cli:root`, `web:admin`… */
  by: string;
  reason: string;
  createdAt: number;
}

/** Synchronous in-memory answers (the tries and sets kept in step with the store): no I/O, no await. */
export interface StoreLookup {
  /** Is `ip` inside an unexpired ban? (The fastest question: no text is built.) */
  isBanned(ip: string): boolean;
  /** The longest unexpired ban containing `ip`. */
  bannedBy(ip: string): { cidr: string; expiresAt: number } | undefined;
  listHas(list: string, value: string | number): boolean;
  /** The entry that matched (e.g. the CIDR or parent domain), or undefined. */
  listMatch(list: string, value: string | number): string | undefined;
  listKind(list: string): ListKind | undefined;
}

/** One page of Store.scanBans: `cidrs[i]` expires at `expiresAt[i]`. */
export type BanPageReader = (cidrs: readonly string[], expiresAt: readonly number[]) => void;

/** One page of Store.scanBanRecords; answering `false` ends the scan after this page. */
export type BanRecordReader = (bans: readonly Ban[]) => void | false;

export interface Store {
  readonly backend: 'sqlite' | 'redis';
  /** In-memory lookups, for hot paths that want no promise at all. */
  readonly lookup: StoreLookup;

  // Bans
  /** Ban an IP/CIDR. Refused (and logged) when it overlaps the never-ban set. Throws InvalidEntryError on a bad CIDR. */
  ban(input: BanInput): Promise<BanResult>;
  /** Why ban() would refuse this CIDR, or undefined when it would not. Writes nothing. */
  banRefusal(cidr: string): BanRefusal | undefined;
  /** Lift a ban now (exact CIDR); the offence count is kept (the quiet period starts now). */
  unban(cidr: string): Promise<boolean>;
  /** Longest unexpired ban containing `ip`. A miss is answered from memory; a hit reads the details. */
  getBan(ip: string): Promise<Ban | undefined>;
  /** The unexpired ban on exactly this CIDR. */
  showBan(cidr: string): Promise<Ban | undefined>;
  /** Unexpired bans, latest expiry first. */
  listBans(opts?: ListBansOptions): Promise<Ban[]>;
  /**
   * Every unexpired ban as its CIDR and expiry (ms) only, a page at a time, in
   * no particular order; resolves the number of bans passed. For readers of
   * the whole set (the firewall's full reconcile reads a million): no Ban
   * objects, no OFFSET paging. A ban changed while the scan runs may come
   * twice, as of either state; the page arrays are not kept after the call.
   */
  scanBans(onPage: BanPageReader): Promise<number>;
  /**
   * Every unexpired ban in full, a page at a time, in no particular order;
   * resolves the number of bans passed. For readers of the whole set that
   * need more than CIDR and expiry (zone data, feed, report):
   * no OFFSET paging. SQLite pages by key (the CIDR): each ban comes at most
   * once. Redis walks the ban hash with HSCAN: a ban may come twice when the
   * hash shrinks during the scan. A ban present for the whole scan always
   * comes; one made or lifted meanwhile may or may not.
   */
  scanBanRecords(onPage: BanRecordReader): Promise<number>;
  /**
   * Unexpired bans by category, counted a page at a time (the ban census):
   * SQLite counts each page of keys in SQL (no row leaves the database),
   * Redis counts over scanBanRecords.
   */
  countBans(): Promise<Map<string, number>>;

  // Lists
  listAdd(list: string, entry: string, opts: ListAddOptions): Promise<ListEntry>;
  listDel(list: string, entry: string): Promise<boolean>;
  /** Unexpired entries of a list, sorted by entry. */
  listShow(list: string): Promise<ListEntry[]>;
  listNames(): Promise<ListInfo[]>;
  /** Same as lookup.listHas (from memory). */
  listHas(list: string, value: string | number): Promise<boolean>;

  // Greylisting
  greyGet(key: string): Promise<GreyEntry | undefined>;
  greyPut(key: string, entry: GreyEntry): Promise<void>;
  /**
   * One greylisting attempt on a triplet: read its entry, decide
   * (greylist.ts attemptOf), store the updated entry; answers the outcome.
   * On Redis one atomic script, so two hosts that see the same triplet at
   * once cannot lose either update.
   */
  greyAttempt(key: string, clientIp: string, now: number, timing: GreyTiming): Promise<GreyAttempt>;
  greyDelete(key: string): Promise<boolean>;
  greyList(opts?: { limit?: number }): Promise<Array<{ key: string; entry: GreyEntry }>>;
  /** Drop every entry last seen from this IP or inside this CIDR (greytrapping); returns how many. */
  greyDeleteByClient(ipOrCidr: string): Promise<number>;
  /** Passed deliveries counted for a client (subnet or SPF domain) — for auto-allow. */
  greyClientPasses(client: string): Promise<number>;
  /** Count one more passed delivery; the counter lives until `expiresAt`. Returns the new count. */
  greyClientPass(client: string, expiresAt: number): Promise<number>;

  // Rate limits
  /** Token bucket: take `cost` tokens from `key` if there are enough. Atomic, shared by all hosts on Redis. */
  rateTake(key: string, req: RateRequest): Promise<RateResult>;

  // Learned correspondents (shared by every host on Redis; purge drops the expired ones)
  /** Count one more message to `key` at `now`: a key expired at `now` starts again at 1; its expiry becomes the later of the two. Atomic. */
  correspondentRecord(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent>;
  /**
   * correspondentRecord without an answer, for the policy path: nothing waits
   * for the row, so nothing of the decision is kept until the commit (an
   * answer awaited per record held every authenticated envelope alive until
   * then, for the garbage collector to copy). A failed write goes to `onError`.
   */
  correspondentNote?(key: string, kind: CorrespondentKind, now: number, expiresAt: number, onError: (err: unknown) => void): void;
  /** The correspondent, unless unknown or expired at `now`. */
  correspondentGet(key: string, now: number): Promise<Correspondent | undefined>;
  /** Every correspondent unexpired at `now`. */
  correspondentAll(now: number): Promise<Correspondent[]>;
  /** Keep at most `keep`: those that expire first (seen longest ago) go. Returns how many went. */
  correspondentTrim(keep: number): Promise<number>;

  // Spread of SASL users (sasl_spread) and held users; shared by every host on Redis
  /** Note the values of one message and answer the user's distinct counts. Atomic per user. */
  spreadRecord(rec: SpreadRecord): Promise<SpreadCounts>;
  /** Forget the user's addresses, networks and countries, and count its known recipients as old (a release starts afresh). */
  spreadReset(user: string): Promise<void>;
  /** Hold a user: its mail is deferred until released. An existing hold is kept (created false). */
  userHold(hold: UserHold): Promise<{ hold: UserHold; created: boolean }>;
  /** Lift the hold and reset the user's spread; answers the hold lifted, undefined when there was none. */
  userRelease(user: string): Promise<UserHold | undefined>;
  userHoldGet(user: string): Promise<UserHold | undefined>;
  /** Every held user, oldest hold first (at most 10,000). */
  userHolds(): Promise<UserHold[]>;

  // Decision log
  logEvent(event: LoggedDecision): Promise<void>;
  queryEvents(q: EventQuery): Promise<DecisionEvent[]>;
  /** Apply retention; returns the number of events deleted. */
  pruneEvents(opts: PruneOptions): Promise<number>;
  /** The decision log's counters per minute or hour (event-rollups.ts), after every event logged before the call. */
  countEvents(q: RollupQuery): Promise<RollupRow[]>;

  // Change feed
  /** Bans and list changes, from this process and (Redis, or SQLite via its change table) from others. Returns an unsubscribe function. */
  onChange(listener: ChangeListener): () => void;

  /** Delete expired bans, list entries, greylist entries, idle rate buckets and forgotten offence counts. */
  purge(): Promise<PurgeResult>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

/** pino-compatible logger subset. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: StoreLogger = { info() {}, warn() {}, error() {} };

export interface StoreDeps {
  clock?: Clock;
  logger?: StoreLogger;
  banPolicy?: Partial<BanPolicy>;
  /** CIDRs never banned (loopback is always added): my networks, admin networks. */
  neverBan?: string[];
  /** Names of ip lists whose entries are never banned either (e.g. the whitelist). */
  neverBanLists?: string[];
  /** This host's own addresses, never banned; default: every local interface's, read at open (os.networkInterfaces()). */
  ownAddresses?: ReadonlyArray<{ address: string; iface: string }>;
  /** The shortest prefix a ban may have, per family (default /16 and /32): a wider ban() throws InvalidEntryError. */
  banMinPrefix?: Partial<BanMinPrefix>;
  /** Random source for ban jitter (tests pin it). */
  random?: () => number;
  /** Run purge() this often (seconds); 0 = never (default 300). */
  purgeIntervalSeconds?: number;
}

export interface SqliteStoreConfig {
  backend: 'sqlite';
  /** File path, or ':memory:' (tests). */
  path: string;
  /** NORMAL (default) survives process death (SIGKILL); FULL also survives power loss, at an fsync per commit. */
  synchronous?: 'NORMAL' | 'FULL';
  busyTimeoutMs?: number;
  /** How often to read the change table written by other processes (ms; 0 = never). Default 500. */
  pollMs?: number;
  /** Nice value of the decision log's writer thread (Linux; 0–19). Default 19 (WRITER_NICE). */
  writerNice?: number;
}

export interface RedisStoreConfig {
  backend: 'redis';
  /** redis://[:password@]host:port[/db] */
  url: string;
  /** Key prefix, default "fl:" — lets several installations share one Redis. */
  prefix?: string;
  /** A command not answered within this fails with StoreUnavailableError (default 1000 ms). */
  commandTimeoutMs?: number;
  /** openStore waits this long for the first connection (default 3000 ms). */
  connectTimeoutMs?: number;
  /** Cap on the decision-log stream (approximate, XADD MAXLEN ~). Default 1,000,000. */
  eventsMaxLen?: number;
  /** Find and follow the primary through Redis Sentinel; `url` then gives only password, db and TLS. */
  sentinel?: { hosts: Array<{ host: string; port: number }>; name: string; password?: string };
  /** Bans and list changes are acknowledged once this many replicas hold them (WAIT). Default 0. */
  minReplicas?: number;
  /** How long such a change waits for its replicas (ms). Default 1000. */
  replicaWaitMs?: number;
}

export type StoreConfig = SqliteStoreConfig | RedisStoreConfig;
