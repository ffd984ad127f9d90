// The policy: config compiled into ordered rules over a registry of checks.
// Frontends open a transaction per message and evaluate it at each stage.

import type pino from 'pino';
import { STAGES, stageIndex, systemClock, type Clock, type Envelope, type Stage, type Verdict } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { defaultAuthservId, ruleSchema, type Config, type RuleConfig } from '../config/schema.js';
import { checksOf, parseCondition } from './condition.js';
import { DEFAULT_RULES } from './default-policy.js';
import { evaluateRules, evaluateRulesNow, EvidenceMemo, type CompiledRule, type EvaluatorOptions } from './evaluate.js';
import { addStoreList, buildRegistry, type RegisteredCheck, type Registry, type RegistryDeps } from './registry.js';
import type { ZoneHealthState } from '../checks/dnsbl.js';
import type { Store } from '../store/types.js';
import { LIST_PREFIX } from './catalog.js';
import { EvidenceCache } from './evidence-cache.js';

/** Checks whose evidence gives an Authentication-Results method before the message (DKIM, DMARC come at its end). */
const HEADER_CHECKS = ['spf', 'spf_helo', 'fcrdns'] as const;

export interface PolicyDeps {
  resolver: Resolver;
  clock?: Clock;
  logger?: pino.Logger;
  /**
   * The state store (bans, store lists, greylisting, rate limits). Without
   * it, rules naming banned, greylist, ratelimit are skipped, and `list:NAME`
   * means the config's lists only.
   */
  store?: Store;
  /** Learned correspondents: the `correspondent` check (serve; src/cli/intel-jobs.ts). */
  correspondents?: RegistryDeps['correspondents'];
  /** The IP-to-AS table (asn.table): store lists of AS numbers match the client's AS. */
  asn?: RegistryDeps['asn'];
  /**
   * A re-evaluation of logged decisions (src/report/replay.ts): every check
   * the policy can run is handed through `check` (which answers from the
   * log), and rules meeting a fault are told to `onRuleFault`.
   */
  replay?: {
    check: (check: RegisteredCheck) => RegisteredCheck;
    onRuleFault: NonNullable<EvaluatorOptions['onRuleFault']>;
  };
  /** Told each check's run time (ms) for /metrics; absent = not timed. */
  onCheckRun?: EvaluatorOptions['onCheckRun'];
}

export interface Transaction {
  /** Never rejects: a fault becomes a 4xx verdict. */
  evaluate(stage: Stage, env: Envelope): Promise<Verdict>;
  /** The same, synchronous when no evidence has to be waited for. Never throws; a returned promise never rejects. */
  evaluateNow(stage: Stage, env: Envelope): Verdict | Promise<Verdict>;
}

export interface SkippedRule {
  rule: string;
  reason: string;
}

export class Policy {
  /** Problems found at startup (also logged): skipped rules, bad list-file lines. */
  readonly warnings: string[] = [];
  readonly skipped: SkippedRule[] = [];
  private timers: NodeJS.Timeout[] = [];

  private constructor(
    readonly rules: readonly CompiledRule[],
    private readonly registry: Registry,
    private readonly opts: EvaluatorOptions,
    private readonly deps: PolicyDeps,
  ) {}

  static fromConfig(cfg: Config, deps: PolicyDeps): Policy {
    const clock = deps.clock ?? systemClock;
    const log = deps.logger;
    const ec = cfg.policy.evidence_cache;
    const evidenceCache = EvidenceCache.create(deps.resolver, { ttlS: ec.ttl_s, maxEntries: ec.max_entries, clock });
    const registry = buildRegistry(cfg, {
      clock,
      store: deps.store,
      correspondents: deps.correspondents,
      asn: deps.asn,
      onSpamtrapSpared: (info) => log?.info(info, `spamtrap hit: ${info.client} not banned: ${info.why}`),
      // The event of a hold: at warn level, since an admin must act (release, or change the password).
      onUserHeld: (hold, counts) =>
        log?.warn({ user: hold.user, by: hold.by, reason: hold.reason, counts, event: 'user-held' }, `user ${hold.user} held: ${hold.reason} (frontline user release ${hold.user})`),
      onZoneHealth: (check, state) => {
        // Listings seen through a zone that went out of use (or came back) must not be reused.
        evidenceCache?.invalidate(check);
        if (state.usable && state.usableV6) log?.info({ check, zone: state.zone }, `${check} zone ${state.zone} back in use`);
        else log?.warn({ check, zone: state.zone, reason: state.reason ?? state.reasonV6 }, `${check} zone ${state.zone} taken out of use: ${state.reason ?? state.reasonV6}`);
      },
    });
    const opts: EvaluatorOptions = {
      checks: registry.checks,
      headers: {
        authservId: cfg.headers.authserv_id ?? defaultAuthservId(),
        authenticationResults: cfg.headers.authentication_results,
        checkHeaders: cfg.headers.checks,
        tagHeader: cfg.headers.tag,
      },
      onFault: cfg.policy.on_fault,
      resolver: deps.resolver,
      clock,
      onError: (err, stage) => log?.error({ err, stage }, 'policy evaluation failed; answering 451 4.3.0'),
      evidenceCache,
      deadlineMs: cfg.policy.deadline_ms,
      onCheckRun: deps.onCheckRun,
    };
    const isDefault = cfg.policy.rules === undefined;
    const ruleConfigs: RuleConfig[] = cfg.policy.rules ?? defaultRules();
    const rules: CompiledRule[] = [];
    const skipped: SkippedRule[] = [];
    for (const r of ruleConfigs) {
      // The shipped rule naming a sender-domain DNS fault defers; an admin who asked faults to continue gets none.
      if (isDefault && r.name === 'sender-domain-fault' && cfg.policy.on_fault === 'continue') continue;
      const cond = parseCondition(r.if);
      const names = checksOf(cond);
      if (deps.store) {
        // A list the config does not define is the store's list of that name (filled by `frontline list add`).
        for (const n of names) {
          if (!n.startsWith(LIST_PREFIX) || registry.checks.has(n)) continue;
          const list = n.slice(LIST_PREFIX.length);
          addStoreList(registry, list, deps.store, deps.asn);
          if (deps.store.lookup.listKind(list) === 'asn' && deps.asn === undefined) {
            registry.warnings.push(`rule ${r.name}: list ${list} holds AS numbers, but no IP-to-AS table is configured (asn.table): it matches nothing`);
          }
          if (!isDefault && deps.store.lookup.listKind(list) === undefined) {
            registry.warnings.push(`rule ${r.name}: list ${list} is not in the config and the store's list ${list} is empty (add entries with \`frontline list add ${list} ENTRY\`)`);
          }
        }
      }
      const missing = names.find((n) => !registry.checks.has(n));
      if (missing !== undefined) {
        const reason =
          registry.unavailable.get(missing) ??
          (missing.startsWith(LIST_PREFIX) ? `list ${missing.slice(LIST_PREFIX.length)} is not defined (lists.${missing.slice(LIST_PREFIX.length)})` : `check ${missing} is not available`);
        skipped.push({ rule: r.name, reason });
        continue;
      }
      const stageOf = (seesMessage: boolean): Stage => {
        if (r.stage) return r.stage;
        let s = 0;
        for (const n of names) {
          const c = registry.checks.get(n);
          if (c && !(c.needsMessage && !seesMessage)) s = Math.max(s, stageIndex(c.stage));
        }
        return STAGES[s];
      };
      rules.push({
        name: r.name,
        cond,
        action: r.action ?? 'continue',
        code: r.code,
        status: r.status,
        text: r.text,
        remedy: r.remedy,
        mode: r.mode,
        score: r.score,
        stageSeen: stageOf(true),
        stageUnseen: stageOf(false),
      });
    }
    const replay = deps.replay;
    if (replay) {
      for (const [name, check] of registry.checks) registry.checks.set(name, replay.check(check));
      opts.onRuleFault = replay.onRuleFault;
    }
    // Authentication-Results methods the rules compute (src/policy/evaluate.ts, RuleWalk.finish).
    const named = new Set(rules.flatMap((r) => checksOf(r.cond)));
    opts.headerChecks = HEADER_CHECKS.filter((c) => named.has(c));
    const policy = new Policy(rules, registry, opts, deps);
    policy.skipped.push(...skipped);
    for (const w of registry.warnings) {
      policy.warnings.push(w);
      log?.warn(w);
    }
    for (const s of skipped) {
      const msg = `rule ${s.rule} skipped: ${s.reason}`;
      // The default policy names optional lists and zones; leaving those rules out is expected.
      if (isDefault) log?.debug(msg);
      else {
        policy.warnings.push(msg);
        log?.warn(msg);
      }
    }
    return policy;
  }

  /** Evidence shared between transactions, when policy.evidence_cache is on. */
  get evidenceCache(): EvidenceCache | undefined {
    return this.opts.evidenceCache;
  }

  /** The result headers this policy writes (its Authentication-Results authserv-id, its per-check and tag header names). */
  get ownHeaders(): { authservId: string; names: string[] } {
    const h = this.opts.headers;
    return (this.own ??= { authservId: h.authservId, names: [...Object.values(h.checkHeaders), ...(h.tagHeader ? [h.tagHeader] : [])] });
  }
  private own: { authservId: string; names: string[] } | undefined;

  transaction(opts: { seesMessage: boolean }): Transaction {
    const memo = new EvidenceMemo(this.opts, opts.seesMessage);
    const rules = this.rules as CompiledRule[];
    const evalOpts = this.opts;
    return {
      evaluate(stage: Stage, env: Envelope): Promise<Verdict> {
        return evaluateRules(rules, stage, env, memo, evalOpts);
      },
      evaluateNow(stage: Stage, env: Envelope): Verdict | Promise<Verdict> {
        return evaluateRulesNow(rules, stage, env, memo, evalOpts);
      },
    };
  }

  /** Start background jobs: DNSBL/DNSWL health probes (RFC 5782 §5), now and every probe_interval_s. */
  start(): void {
    if (this.timers.length > 0) return;
    for (const p of this.registry.probes) {
      const run = (): void => {
        p.health.probe(this.deps.resolver).catch((err: unknown) => this.deps.logger?.warn({ err, check: p.name }, `${p.name} health probe failed`));
      };
      run();
      const t = setInterval(run, p.intervalS * 1000);
      t.unref();
      this.timers.push(t);
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** The DNSBL/DNSWL zones' last health probe (for the dashboard). */
  zoneStates(): Array<{ check: string; state: ZoneHealthState }> {
    return this.registry.probes.flatMap((p) => p.health.allStates().map((state) => ({ check: p.name, state })));
  }
}

/** The shipped default rules, through the same schema as rules from a file. */
export function defaultRules(): RuleConfig[] {
  return DEFAULT_RULES.map((r) => ruleSchema.parse(r));
}
