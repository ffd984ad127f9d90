// The table of checks a policy can ask for, built from config: each name with
// its stage, cost and the function that computes its evidence. Checks whose
// configuration is missing (no DNSBL zones, a list that is not defined) are
// absent, with the reason, so rules naming them can be skipped at startup.

import { readFileSync } from 'node:fs';
import type { Clock, Envelope, Evidence } from '../core/types.js';
import type { Config, ListConfig } from '../config/schema.js';
import { networksContain, parseNetwork } from '../config/address.js';
import { ConfigError } from '../config/load.js';
import { frozenEvidence, sharedEvidence } from '../checks/evidence.js';
import type { CheckContext } from '../checks/types.js';
import { checkSpf } from '../checks/spf.js';
import { checkMxMatch } from '../checks/mx-match.js';
import { checkFcrdns, checkFcrdnsDomain } from '../checks/fcrdns.js';
import { checkHelo } from '../checks/helo.js';
import { nullSenderEvidence, rcptFqdnEvidence, checkSenderDomain } from '../checks/rfc.js';
import { checkDnsbl, DnsblHealth, parseZoneSpec, type ZoneHealthState } from '../checks/dnsbl.js';
import { checkList, DomainList, IpList, parseListText } from '../checks/lists.js';
import { checkDkim, checkDkimDomain } from '../checks/dkim.js';
import { checkDmarc } from '../checks/dmarc.js';
import { bannedQuick, checkBanned } from '../checks/banned.js';
import { checkGreylist } from '../checks/greylist.js';
import { checkRateLimit, checkRateLimitMessage, type RateLimit } from '../checks/ratelimit.js';
import { batvEvidence, type BatvCheckOptions } from '../checks/batv.js';
import { checkSaslSpread, type SaslSpreadOptions } from '../checks/sasl-spread.js';
import type { SpreadCounts, UserHold } from '../store/types.js';
import { readBatvKeys } from '../checks/batv-tag.js';
import { checkSpamtrap, spamtrapQuick, type SpamtrapCheckOptions, type SpamtrapSparing } from '../checks/spamtrap.js';
import { whitelistDomains } from '../intel/config.js';
import { checkStoreList, storeListQuick, type AsnLookup } from '../checks/store-list.js';
import type { Store } from '../store/types.js';
import { CHECKS, COST, LIST_PREFIX, listInfo, type CheckInfo, type ListMatch } from './catalog.js';

export interface RegisteredCheck extends CheckInfo {
  name: string;
  run: (env: Envelope, ctx: CheckContext) => Promise<Evidence>;
  /**
   * The evidence at once when it needs no waiting (a local test, an
   * in-memory index that says "no"); undefined: ask `run`. Lets the
   * evaluator settle most local checks without a promise.
   */
  quick?: (env: Envelope) => Evidence | undefined;
}

/** A DNSBL/DNSWL zone set whose health is probed in the background. */
export interface ProbedZones {
  name: 'dnsbl' | 'dnswl';
  health: DnsblHealth;
  intervalS: number;
}

export interface Registry {
  checks: Map<string, RegisteredCheck>;
  /** Checks that exist in the language but are not configured here, with why. */
  unavailable: Map<string, string>;
  probes: ProbedZones[];
  /** Problems worth a startup warning (bad lines in list files…). */
  warnings: string[];
}

export interface RegistryDeps {
  clock: Clock;
  /** Told when a DNSBL/DNSWL zone goes out of use or back (health probes). */
  onZoneHealth?: (check: string, state: ZoneHealthState) => void;
  /** The state store: bans, store lists, greylisting, rate limits, spamtrap bans. Without it those checks are unavailable. */
  store?: Store;
  /** Learned correspondents (serve builds them from intel.correspondents); without them `correspondent` is unavailable. */
  correspondents?: { check(env: Envelope, ctx: CheckContext): Promise<Evidence> };
  /** The IP-to-AS table (asn.table) store lists of AS numbers match with. */
  asn?: AsnLookup;
  /** Told when sasl_spread holds a user (serve logs it). */
  onUserHeld?: (hold: UserHold, counts: SpreadCounts) => void;
  /** Told of every spamtrap hit that banned nothing because the client is spared (docs/security.md, spamtrap poisoning). */
  onSpamtrapSpared?: (info: { client: string; trap: string; why: string }) => void;
}

export function buildRegistry(cfg: Config, deps: RegistryDeps): Registry {
  const checks = new Map<string, RegisteredCheck>();
  const unavailable = new Map<string, string>();
  const probes: ProbedZones[] = [];
  const warnings: string[] = [];
  const add: AddCheck = (name, run, info = CHECKS[name], quick) => {
    checks.set(name, quick ? { name, ...info, run, quick } : { name, ...info, run });
  };
  /** A check that never waits: its quick answer is its answer. */
  const addLocal = (name: string, now: (env: Envelope) => Evidence): void => add(name, (env) => Promise.resolve(now(env)), CHECKS[name], now);

  const unauthenticated = frozenEvidence({ check: 'auth', result: 'none', detail: 'not authenticated', ms: 0 });
  const authenticated = sharedEvidence((user) => ({ check: 'auth', result: 'pass', detail: `SASL-authenticated as ${user}`, ms: 0, data: { user } }));
  addLocal('auth', (env) => (env.saslUser ? authenticated(env.saslUser) : unauthenticated));

  const nets = cfg.my_networks.map((n) => parseNetwork(n)).filter((n) => n !== undefined);
  const notMine = sharedEvidence((ip) => ({ check: 'my_networks', result: 'nomatch', detail: `client ${ip} is not in my_networks`, ms: 0 }));
  addLocal('my_networks', (env) => {
    const net = networksContain(nets, env.clientIp);
    return net
      ? { check: 'my_networks', result: 'match', detail: `client ${env.clientIp} is in my_networks (${net})`, ms: 0, data: { network: net } }
      : notMine(env.clientIp);
  });

  add('spf', (env, ctx) => checkSpf(env, ctx, { identity: 'mailfrom' }));
  add('spf_helo', (env, ctx) => checkSpf(env, ctx, { identity: 'helo' }));
  add('mx', (env, ctx) => checkMxMatch(env, ctx, { maxNames: cfg.checks.mx.max_names }));
  add('fcrdns', (env, ctx) => checkFcrdns(env, ctx, { maxNames: cfg.checks.fcrdns.max_names }));
  add('fcrdns_domain', (env, ctx) => checkFcrdnsDomain(env, ctx));
  add('helo', (env, ctx) => checkHelo(env, ctx));
  add('sender_domain', (env, ctx) => checkSenderDomain(env, ctx));
  addLocal('rcpt_fqdn', rcptFqdnEvidence);
  addLocal('null_sender', nullSenderEvidence);
  if (cfg.batv.enabled) {
    const opts: BatvCheckOptions = {
      keys: readBatvKeys(cfg.batv.keys, (f) => readFileSync(f, 'utf8')),
      domains: new Set(cfg.batv.domains),
      validDays: cfg.batv.valid_days,
    };
    add('batv', (env, ctx) => Promise.resolve(batvEvidence(env, ctx.clock.now(), opts)), CHECKS.batv);
  } else unavailable.set('batv', 'BATV is off (batv.enabled)');
  add('dkim', (env, ctx) => checkDkim(env, ctx));
  add('dkim_domain', (env, ctx) => checkDkimDomain(env, ctx));
  add('dmarc', (env, ctx) => checkDmarc(env, ctx));

  for (const name of ['dnsbl', 'dnswl'] as const) {
    const c = cfg.checks[name];
    if (c.zones.length === 0) {
      unavailable.set(name, `no ${name} zones configured (checks.${name}.zones)`);
      continue;
    }
    const zones = c.zones.map(parseZoneSpec);
    const health = new DnsblHealth(zones, {
      clock: deps.clock,
      timeoutMs: c.timeout_ms,
      onChange: (state) => deps.onZoneHealth?.(name, state),
    });
    if (c.probe_interval_s > 0) probes.push({ name, health, intervalS: c.probe_interval_s });
    add(name, (env, ctx) => checkDnsbl(env, ctx, { zones, health, timeoutMs: c.timeout_ms, name, threshold: c.threshold }));
  }

  const store = deps.store;
  let allowIps: IpList | undefined;
  for (const [name, list] of Object.entries(cfg.lists)) {
    const check = `${LIST_PREFIX}${name}`;
    const { ips, domains, problems } = loadList(name, list);
    if (name === 'allow' && list.type === 'ip' && (list.match ?? 'client') === 'client') allowIps = ips;
    warnings.push(...problems);
    const field: ListMatch = list.match ?? (list.type === 'ip' ? 'client' : 'sender');
    const info = listInfo(field);
    // Domain entries against the client need its forward-confirmed names: DNS.
    if (field === 'client' && domains.size > 0) info.cost = COST.dns;
    add(
      check,
      async (env, ctx) => {
        const ev = await checkList(env, ctx, { name: check, ips, domains, field });
        // The store's list of the same name (`frontline list add NAME …`) counts too.
        if (ev.result !== 'unlisted' || !store?.lookup.listKind(name)) return ev;
        const more = await checkStoreList(env, { ...ctx, store }, { name: check, list: name, field, asn: deps.asn });
        return more.result === 'listed' ? more : ev;
      },
      info,
    );
  }

  const spare: SpamtrapSparing = {
    staticAllow: (ip) => {
      const net = networksContain(nets, ip);
      if (net) return `${ip} is in my_networks (${net})`;
      return allowIps?.has(ip) ? `${ip} is on the allow list (lists.allow)` : undefined;
    },
    storeLists: spareLists(cfg),
    dnswl: checks.has('dnswl'),
    bigSenders: new Set(cfg.intel.spf_whitelist.enabled ? whitelistDomains(cfg.intel) : []),
  };
  addStoreChecks(cfg, store, add, unavailable, { spare, onSpared: deps.onSpamtrapSpared });
  addSaslSpread(cfg, store, add, unavailable, deps);

  const correspondents = deps.correspondents;
  if (correspondents) add('correspondent', (env, ctx) => correspondents.check(env, ctx));
  else unavailable.set('correspondent', 'no correspondents are learned here (frontline serve with intel.correspondents.enabled)');

  return { checks, unavailable, probes, warnings };
}

type AddCheck = (name: string, run: RegisteredCheck['run'], info?: CheckInfo, quick?: RegisteredCheck['quick']) => void;

/** The checks that need the state store: banned, greylist, ratelimit(_message), spamtrap. */
/** The store's ip lists whose clients a spamtrap hit never bans: `allow`, the SPF-walked big senders, the correspondents' networks. */
function spareLists(cfg: Config): string[] {
  const out = ['allow'];
  if (cfg.intel.spf_whitelist.enabled) out.push(cfg.intel.spf_whitelist.list);
  if (cfg.intel.correspondents.enabled) out.push(cfg.intel.correspondents.list);
  return out;
}

function addStoreChecks(
  cfg: Config,
  store: Store | undefined,
  add: AddCheck,
  unavailable: Map<string, string>,
  trapOpts: Pick<SpamtrapCheckOptions, 'spare' | 'onSpared'>,
): void {
  const onUnavailable = cfg.store.on_unavailable;
  const traps = new Set(cfg.spamtraps);
  // Spamtraps work without a store (the recipient is refused), but nobody is banned then.
  if (store || traps.size > 0) {
    const opts: SpamtrapCheckOptions = { traps, ...trapOpts };
    add('spamtrap', (env, ctx) => checkSpamtrap(env, { ...ctx, store }, opts), CHECKS.spamtrap, (env) => spamtrapQuick(env, { store }, opts));
  }
  else unavailable.set('spamtrap', 'no spamtraps configured (spamtraps) and no store');
  if (!store) {
    for (const name of ['banned', 'greylist', 'ratelimit', 'ratelimit_message']) unavailable.set(name, 'no state store open');
    return;
  }
  add('banned', (env, ctx) => checkBanned(env, { ...ctx, store }), CHECKS.banned, (env) => bannedQuick(env, { store }));

  const g = cfg.greylist;
  if (g.enabled) {
    const config = {
      delaySeconds: g.delay_s,
      retryWindowSeconds: g.retry_window_s,
      passedTtlSeconds: g.pass_ttl_s,
      autoAllowAfter: g.auto_allow_after,
      ipv4Prefix: g.subnet.v4,
      ipv6Prefix: g.subnet.v6,
      keyOnSpfDomain: g.key_on_spf,
    };
    add('greylist', (env, ctx) => checkGreylist(env, { ...ctx, store }, { config, onlyUntrusted: g.only_untrusted, onUnavailable }));
  } else unavailable.set('greylist', 'greylisting is off (greylist.enabled: false)');

  if (cfg.ratelimits.length > 0) {
    const limits: RateLimit[] = cfg.ratelimits.map((l) => ({ name: l.name, key: l.key, capacity: l.capacity, perSeconds: l.per_s, action: l.action }));
    const opts = { limits, onUnavailable };
    add('ratelimit_message', (env, ctx) => checkRateLimitMessage(env, { ...ctx, store }, opts));
    add('ratelimit', (env, ctx) => checkRateLimit(env, { ...ctx, store }, opts));
  } else {
    for (const name of ['ratelimit', 'ratelimit_message']) unavailable.set(name, 'no rate limits configured (ratelimits)');
  }
}

function addSaslSpread(cfg: Config, store: Store | undefined, add: AddCheck, unavailable: Map<string, string>, deps: RegistryDeps): void {
  const c = cfg.sasl_spread;
  if (!c.enabled) return void unavailable.set('sasl_spread', 'sasl_spread is off (sasl_spread.enabled)');
  if (!store) return void unavailable.set('sasl_spread', 'no state store open');
  const asn = deps.asn;
  const opts: SaslSpreadOptions = {
    windowS: c.window_s,
    newRcptWindowS: c.new_rcpt_window_s,
    knownRcptDays: c.known_rcpt_days,
    maxValues: c.max_values,
    hold: c.hold,
    geo: asn?.lookup ? (ip) => asn.lookup!(ip) : undefined,
    onUnavailable: cfg.store.on_unavailable,
    onHold: deps.onUserHeld,
  };
  add('sasl_spread', (env, ctx) => checkSaslSpread(env, { ...ctx, store }, opts));
}

/**
 * A `list:NAME` that the config does not define, backed by the store's list
 * of that name (which `frontline list add` fills, and which may be empty at
 * startup). Its stage is mail: it matches the client or the sender,
 * depending on the kind of the entries.
 */
export function addStoreList(registry: Registry, name: string, store: Store, asn?: AsnLookup): void {
  const check = `${LIST_PREFIX}${name}`;
  const info: CheckInfo = { ...listInfo('sender') };
  const opts = { name: check, list: name, asn };
  registry.checks.set(check, {
    name: check,
    ...info,
    run: (env, ctx) => checkStoreList(env, { ...ctx, store }, opts),
    quick: (env) => storeListQuick(env, { store }, opts),
  });
  registry.unavailable.delete(check);
}

/** Entries from config and files; an unreadable file is a ConfigError (a list silently empty is a policy silently off). */
function loadList(name: string, list: ListConfig): { ips: IpList; domains: DomainList; problems: string[] } {
  const ips = new IpList();
  const domains = new DomainList();
  const problems: string[] = [];
  const target = list.type === 'ip' ? ips : domains;
  for (const e of list.entries) target.add(e);
  for (const [i, file] of list.files.entries()) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError([`lists.${name}.files[${i}]: cannot read ${file}: ${(e as Error).message}`]);
    }
    const { entries, errors } = parseListText(text, file, list.type);
    for (const e of entries) target.add(e);
    for (const err of errors) problems.push(`lists.${name}: ${err.file}:${err.line}: ${err.reason}: ${JSON.stringify(err.text)} (skipped)`);
  }
  return { ips, domains, problems };
}
