// Replay: the decisions in the log, re-evaluated under another policy, and
// what would have changed. Each logged decision is walked again by the real
// evaluator (src/policy/evaluate.ts) with its envelope as logged; every check
// answers from the evidence the log kept for that decision, never from a new
// lookup unless asked (`liveDns`). Evidence the log does not have — a check
// an earlier rule made unnecessary, a check whose settings changed, state
// that is gone (greylisting, rate limits), a message not stored — is handed
// to the evaluator as "not recorded": a FAULT for every leaf that asks
// (Kleene logic decides a rule without it when it can), and a decision that
// depends on it is counted as not reproducible, never guessed.
//
// Used by `frontline replay` (src/cli/replay.ts) and the dashboard's Policy
// page, through replayDecisions() and parseReplayConfig(). docs/report.md,
// section Replay.

import { STAGES, systemClock, type Clock, type Envelope, type Evidence, type Stage, type Verdict } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { parseConfig, type Config } from '../config/load.js';
import { Policy, type SkippedRule } from '../policy/policy.js';
import { NOT_RECORDED, type CompiledRule } from '../policy/evaluate.js';
import type { RegisteredCheck } from '../policy/registry.js';
import type { Condition } from '../policy/condition.js';
import { LIST_PREFIX } from '../policy/catalog.js';
import type { DecisionEvent, EventEvidence, Store } from '../store/types.js';

/** Decisions replayed when no limit is given, and the most a caller may ask for. */
export const DEFAULT_REPLAY_LIMIT = 100_000;
export const MAX_REPLAY_LIMIT = 1_000_000;
/** Examples kept per line of the report. */
export const DEFAULT_REPLAY_EXAMPLES = 5;

export interface ReplayOptions {
  /** The open store whose decision log is replayed (its lists and bans also back the policy's store checks). */
  store: Store;
  /** The policy to try (parseReplayConfig for text). */
  proposed: Config;
  /**
   * The configuration the logged decisions were made under (the one in
   * force). A check whose settings (zones, list entries, limits…) differ in
   * `proposed` has its logged evidence treated as not recorded. Absent: the
   * settings are taken as unchanged (the report says so in `warnings`).
   */
  current?: Config;
  /** Window of decision times (ms since the epoch); default: the whole log. */
  since?: number;
  until?: number;
  /** At most this many decisions, the newest (default 100,000; at most 1,000,000). */
  limit?: number;
  /**
   * Compute evidence the log lacks with this resolver (and the store as it
   * is now) — `frontline replay --live-dns`. Checks that write state
   * (greylist, rate limits, spamtraps) never run, nor message checks.
   */
  liveResolver?: Resolver;
  /** Examples per report line (default 5). */
  examples?: number;
  clock?: Clock;
}

/** A decision's outcome: what was done, by which rule. */
export interface ReplayOutcome {
  action: string;
  rule: string;
  code?: number;
}

/** A logged decision named in the report (untrusted text: escape it for a terminal or page). */
export interface ReplayExample {
  id?: string;
  ts: number;
  stage: string;
  clientIp: string;
  clientPtr?: string;
  helo?: string;
  from?: string;
  rcpts: string[];
}

export interface ReplayChange {
  from: ReplayOutcome;
  to: ReplayOutcome;
  count: number;
  examples: ReplayExample[];
}

export interface ReplayUnreproducible {
  /** Why: `dnsbl: not recorded (an earlier rule decided)`, `greylist: state not kept`, … */
  reason: string;
  count: number;
  examples: ReplayExample[];
}

export interface ReplayReport {
  since?: number;
  until?: number;
  /** Decisions read from the log and replayed. */
  replayed: number;
  /** The limit stopped the read: older decisions in the window were not replayed. */
  limited: boolean;
  unchanged: number;
  /** Same action, another rule deciding or another reply code (not counted in `changed`). */
  otherRule: number;
  /** A different action. */
  changed: number;
  notReproducible: number;
  /** Changes grouped by from → to, the largest first. */
  changes: ReplayChange[];
  /** Changed decisions by the rule that made the difference (the new deciding rule, or the old one where nothing refuses now). */
  byRule: Array<{ rule: string; count: number }>;
  unreproducible: ReplayUnreproducible[];
  /** Decisions logged before the log kept replay data (events file version 4): envelope and evidence data partly missing. */
  oldRecords: number;
  liveDns: boolean;
  /** Rules of the proposed policy left out (check not configured…), as `frontline serve` would. */
  skippedRules: SkippedRule[];
  warnings: string[];
}

/**
 * A proposed configuration from its YAML text: the same validation as
 * `frontline config check`. Throws ConfigError whose problems read
 * `NAME:line:col: key: problem`.
 */
export function parseReplayConfig(text: string, name = 'proposed config'): Config {
  return parseConfig(text, name);
}

/** Checks whose answer is a function of the envelope and the config alone: always computed anew (the proposed config's answer). */
const RECOMPUTED = new Set(['auth', 'my_networks', 'null_sender', 'rcpt_fqdn']);
/** Of those, the ones that need an envelope field records before version 4 lack (SASL user, recipient count). */
const NEEDS_NEW_ENVELOPE = new Set(['auth', 'null_sender']);
/** Checks that change state when they run, or read state a replay cannot have: never run by a replay. */
const STATEFUL: Record<string, string> = {
  greylist: 'greylist state is not kept',
  ratelimit: 'rate-limit state is not kept',
  ratelimit_message: 'rate-limit state is not kept',
  spamtrap: 'a spamtrap check bans: not run by a replay',
  banned: 'the bans in force then are not kept',
  sasl_spread: 'a sasl_spread check records and may hold the user: not run by a replay',
};
const MESSAGE = new Set(['dkim', 'dkim_domain', 'dmarc']);

/** The settings a check's evidence depends on, beyond the envelope (to tell evidence made under other settings). */
function settingsOf(cfg: Config, check: string): unknown {
  if (check.startsWith(LIST_PREFIX)) return cfg.lists[check.slice(LIST_PREFIX.length)] ?? null;
  switch (check) {
    case 'dnsbl':
    case 'dnswl':
    case 'mx':
    case 'fcrdns':
      return cfg.checks[check];
    case 'greylist':
      return cfg.greylist;
    case 'ratelimit':
    case 'ratelimit_message':
      return cfg.ratelimits;
    case 'spamtrap':
      return cfg.spamtraps;
    case 'sasl_spread':
      return cfg.sasl_spread;
    case 'my_networks':
      return cfg.my_networks;
    case 'correspondent':
      return cfg.intel.correspondents;
    default:
      return null;
  }
}

/** JSON with object keys sorted: the same settings compare equal however the YAML ordered them. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** The `check.field` names the rules compare, by check. */
function fieldsUsed(rules: readonly CompiledRule[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const walk = (c: Condition): void => {
    if (c.kind === 'field') {
      let s = out.get(c.check);
      if (!s) out.set(c.check, (s = new Set()));
      s.add(c.field);
    } else if (c.kind === 'any' || c.kind === 'all') c.items.forEach(walk);
    else if (c.kind === 'not') walk(c.item);
  };
  for (const r of rules) walk(r.cond);
  return out;
}

/** A resolver that answers nothing and remembers being asked: a recomputed check that needs DNS is not reproducible offline. */
class NoDns implements Resolver {
  asked = false;
  private no(): Promise<never> {
    this.asked = true;
    return Promise.reject(new Error('replay: no DNS queries without --live-dns'));
  }
  a(): Promise<string[]> {
    return this.no();
  }
  aaaa(): Promise<string[]> {
    return this.no();
  }
  txt(): Promise<string[]> {
    return this.no();
  }
  mx(): Promise<never> {
    return this.no();
  }
  ptr(): Promise<string[]> {
    return this.no();
  }
}

/** What the replay of one decision met: evidence handed out as not recorded, and rules that faulted on it. */
interface EventState {
  event: DecisionEvent;
  recorded: Map<string, EventEvidence>;
  old: boolean;
  missing: Map<string, string>;
  /** A rule's value depended on evidence not recorded: the reasons. */
  blocking: Set<string>;
}

function notRecorded(check: string, reason: string): Evidence {
  return { check, result: 'temperror', detail: `not recorded: ${reason}`, ms: 0, data: { [NOT_RECORDED]: true, reason } };
}

/** Logged evidence back as evidence the evaluator takes. */
function fromLog(e: EventEvidence): Evidence {
  const ev: Evidence = { check: e.check, result: e.result as Evidence['result'], detail: e.detail ?? '', ms: e.ms ?? 0 };
  if (e.data !== undefined) ev.data = { ...e.data };
  return ev;
}

/** The envelope of a logged decision, as the evaluator saw it (at RCPT the earlier recipients stand as empty places: only their number is kept). */
export function envelopeOf(e: DecisionEvent): Envelope {
  let rcpts = e.rcpts.slice();
  if (e.stage === 'rcpt' && typeof e.rcptCount === 'number' && e.rcptCount > rcpts.length) {
    rcpts = [...new Array<string>(e.rcptCount - rcpts.length).fill(''), ...rcpts];
  }
  const env: Envelope = { clientIp: e.clientIp, rcpts };
  if (e.clientPtr !== undefined) env.clientPtr = e.clientPtr;
  if (e.helo !== undefined) env.helo = e.helo;
  if (e.from !== undefined) env.from = e.from;
  if (e.saslUser !== undefined) env.saslUser = e.saslUser;
  if (e.sessionId !== undefined) env.sessionId = e.sessionId;
  return env;
}

/**
 * Did the frontend that decided see the message? The log does not say which
 * frontend decided: at DATA and end of message it did; before, the decision
 * is replayed as the policy server makes it (message checks not visible).
 */
function seesMessage(e: DecisionEvent): boolean {
  if (e.stage === 'data' || e.stage === 'eom') return true;
  return false;
}

function example(e: DecisionEvent): ReplayExample {
  const x: ReplayExample = { ts: e.ts, stage: e.stage, clientIp: e.clientIp, rcpts: e.rcpts.slice(0, 5) };
  if (e.id !== undefined) x.id = e.id;
  if (e.clientPtr !== undefined) x.clientPtr = e.clientPtr;
  if (e.helo !== undefined) x.helo = e.helo;
  if (e.from !== undefined) x.from = e.from;
  return x;
}

const REFUSING = new Set(['reject', 'defer', 'tarpit']);

/**
 * Re-evaluate the logged decisions under `proposed` and count what changes.
 * Reads the log newest first, at most `limit` decisions; never writes to the
 * store; makes no DNS query unless `liveResolver` is given.
 */
export async function replayDecisions(opts: ReplayOptions): Promise<ReplayReport> {
  const clock = opts.clock ?? systemClock;
  const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? DEFAULT_REPLAY_LIMIT)), MAX_REPLAY_LIMIT);
  const perLine = Math.max(0, Math.floor(opts.examples ?? DEFAULT_REPLAY_EXAMPLES));
  const live = opts.liveResolver;
  const warnings: string[] = [];
  if (opts.current === undefined) warnings.push('the configuration in force was not given: logged evidence is taken as made under the proposed check settings');

  // The proposed policy as serve would build it, minus what only costs or races: no shared evidence cache, no deadline.
  const cfg: Config = structuredClone(opts.proposed);
  cfg.policy.evidence_cache.ttl_s = 0;
  cfg.policy.deadline_ms = 0;

  const changedSettings = new Set<string>();
  const settingsChanged = (check: string): boolean => {
    if (opts.current === undefined) return false;
    return stableJson(settingsOf(opts.current, check)) !== stableJson(settingsOf(opts.proposed, check));
  };

  let state: EventState | undefined;
  const noDns = new NoDns();
  const wrap = (check: RegisteredCheck): RegisteredCheck => {
    const name = check.name;
    const changed = settingsChanged(name);
    if (changed) changedSettings.add(name);
    const answer = async (env: Envelope, ctx: Parameters<RegisteredCheck['run']>[1]): Promise<Evidence> => {
      const s = state!;
      const miss = (reason: string): Evidence => {
        s.missing.set(name, reason);
        return notRecorded(name, reason);
      };
      if (RECOMPUTED.has(name) && !(s.old && NEEDS_NEW_ENVELOPE.has(name))) return check.quick?.(env) ?? check.run(env, ctx);
      const logged = s.recorded.get(name);
      if (logged !== undefined && !changed) {
        const fields = used.get(name);
        if (fields !== undefined) {
          if (s.old) return miss('logged before evidence data was kept');
          const cutAll = logged.dataCut?.includes('*') === true;
          const cut = [...fields].find((f) => logged.dataCut?.includes(f) === true || (cutAll && !Object.prototype.hasOwnProperty.call(logged.data ?? {}, f)));
          if (cut !== undefined) return miss(`${name}.${cut} was too large to keep`);
        }
        return fromLog(logged);
      }
      const why = changed ? 'its settings changed' : 'not computed then (an earlier rule decided)';
      if (STATEFUL[name] !== undefined) return miss(STATEFUL[name]);
      if (MESSAGE.has(name)) return miss('the message is not stored');
      if (live !== undefined) return check.run(env, { ...ctx, resolver: live });
      if (name.startsWith(LIST_PREFIX) && changed) {
        // A list's entries are the proposed config's: matched anew, unless that needs DNS (domain entries against the client).
        const probe = new NoDns();
        const ev = await check.run(env, { ...ctx, resolver: probe });
        if (!probe.asked) return ev;
      }
      return miss(`${why}; --live-dns computes it`);
    };
    // No quick path: every answer goes through `answer`, which knows the decision being replayed.
    const { quick: _quick, ...rest } = check;
    return { ...rest, run: answer };
  };

  const policy = Policy.fromConfig(cfg, {
    resolver: live ?? noDns,
    clock,
    store: opts.store,
    // Learned correspondents live in serve: logged evidence only (a live query gets "not recorded").
    correspondents: { check: () => Promise.resolve(notRecorded('correspondent', 'learned correspondents are not available to a replay')) },
    replay: {
      check: wrap,
      onRuleFault: (_rule, faults) => {
        const s = state!;
        const flagged = faults.filter((f) => f.data?.[NOT_RECORDED] === true);
        if (flagged.length > 0) for (const f of flagged) s.blocking.add(`${f.check}: ${String(f.data?.reason)}`);
        // A score comparison faults with no evidence of its own: it rests on the scores that did.
        else if (faults.length === 0) for (const [check, reason] of s.missing) s.blocking.add(`${check}: ${reason}`);
      },
    },
  });
  const used = fieldsUsed(policy.rules);
  // Skipped rules are reported as such (skippedRules), not twice.
  warnings.push(...policy.warnings.filter((w) => !policy.skipped.some((k) => w === `rule ${k.rule} skipped: ${k.reason}`)));
  for (const c of changedSettings) warnings.push(`${c}: settings differ from the configuration in force; its logged evidence is not used`);

  const report: ReplayReport = {
    replayed: 0,
    limited: false,
    unchanged: 0,
    otherRule: 0,
    changed: 0,
    notReproducible: 0,
    changes: [],
    byRule: [],
    unreproducible: [],
    oldRecords: 0,
    liveDns: live !== undefined,
    skippedRules: [...policy.skipped],
    warnings,
  };
  if (opts.since !== undefined) report.since = opts.since;
  if (opts.until !== undefined) report.until = opts.until;

  const changes = new Map<string, ReplayChange>();
  const byRule = new Map<string, number>();
  const unrepro = new Map<string, ReplayUnreproducible>();

  for await (const e of readLog(opts.store, opts.since, opts.until, limit, () => (report.limited = true))) {
    report.replayed++;
    const old = e.rcptCount === undefined;
    if (old) report.oldRecords++;
    const recorded = new Map<string, EventEvidence>();
    for (const ev of e.evidence) if (!recorded.has(ev.check)) recorded.set(ev.check, ev);
    state = { event: e, recorded, old, missing: new Map(), blocking: new Set() };
    const stage = (STAGES as readonly string[]).includes(e.stage) ? (e.stage as Stage) : undefined;
    if (stage === undefined) {
      countUnrepro(unrepro, `stage ${e.stage} unknown`, e, perLine);
      report.notReproducible++;
      continue;
    }
    const verdict: Verdict = await policy.transaction({ seesMessage: seesMessage(e) }).evaluate(stage, envelopeOf(e));
    if (state.blocking.size > 0) {
      report.notReproducible++;
      for (const reason of state.blocking) countUnrepro(unrepro, reason, e, perLine);
      continue;
    }
    const from: ReplayOutcome = { action: e.action, rule: e.rule };
    if (e.code !== undefined) from.code = e.code;
    const to: ReplayOutcome = { action: verdict.action, rule: verdict.rule };
    if (verdict.code !== undefined) to.code = verdict.code;
    if (from.action === to.action) {
      if (from.rule === to.rule && from.code === to.code) report.unchanged++;
      else report.otherRule++;
      continue;
    }
    report.changed++;
    const key = JSON.stringify([from.action, from.rule, from.code, to.action, to.rule, to.code]);
    let c = changes.get(key);
    if (!c) changes.set(key, (c = { from, to, count: 0, examples: [] }));
    c.count++;
    if (c.examples.length < perLine) c.examples.push(example(e));
    const rule = REFUSING.has(to.action) ? to.rule : from.rule;
    byRule.set(rule, (byRule.get(rule) ?? 0) + 1);
  }
  state = undefined;
  report.changes = [...changes.values()].sort((a, b) => b.count - a.count);
  report.byRule = [...byRule.entries()].map(([rule, count]) => ({ rule, count })).sort((a, b) => b.count - a.count || (a.rule < b.rule ? -1 : 1));
  report.unreproducible = [...unrepro.values()].sort((a, b) => b.count - a.count);
  return report;
}

function countUnrepro(map: Map<string, ReplayUnreproducible>, reason: string, e: DecisionEvent, perLine: number): void {
  let u = map.get(reason);
  if (!u) map.set(reason, (u = { reason, count: 0, examples: [] }));
  u.count++;
  if (u.examples.length < perLine) u.examples.push(example(e));
}

/** Page size of the log reads (the store's largest query). */
const PAGE = 10_000;

/**
 * The log's decisions in the window, newest first, at most `limit`: pages of
 * the store's own query, each ending where the last one stopped (decisions
 * of the boundary millisecond are told apart by id).
 */
async function* readLog(store: Store, since: number | undefined, until: number | undefined, limit: number, onLimit: () => void): AsyncGenerator<DecisionEvent> {
  let end = until;
  let seenAtEnd = new Set<string>();
  let n = 0;
  for (;;) {
    const page = await store.queryEvents({ since, until: end, limit: PAGE });
    let fresh = 0;
    const nextSeen = new Set<string>();
    const lastTs = page.length > 0 ? page[page.length - 1].ts : undefined;
    for (const e of page) {
      const key = e.id ?? `${e.ts}|${e.clientIp}|${e.stage}|${e.rcpts.join(',')}`;
      if (e.ts === end && seenAtEnd.has(key)) continue;
      if (e.ts === lastTs) nextSeen.add(key);
      fresh++;
      if (n >= limit) {
        onLimit();
        return;
      }
      n++;
      yield e;
    }
    // A short page is the end of the window; a page of nothing new means one millisecond holds more than a page (left there).
    if (page.length < PAGE || fresh === 0 || lastTs === undefined) return;
    if (lastTs !== end) seenAtEnd = nextSeen;
    else for (const k of nextSeen) seenAtEnd.add(k);
    end = lastTs;
  }
}
