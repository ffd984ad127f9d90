// The evaluator: walks the ordered rules for one stage of one transaction.
//
// Leaves are three-valued plus FAULT: TRUE, FALSE, UNKNOWN (the check needs a
// later stage), FAULT (the check's evidence is temperror). `any`/`all`/`not`
// follow Kleene logic, UNKNOWN beating FAULT (wait for more data before
// blaming a fault). Evidence is lazy (a check runs only when a leaf needs it),
// memoised per transaction (per recipient for recipient checks), cheap leaves
// first, DNS leaves of one node in parallel with short-circuit.
//
// The walk never throws: a bug becomes a 451 4.3.0 fault verdict.

import { afterOn, stageIndex, type Action, type Envelope, type Evidence, type Stage, type Verdict } from '../core/types.js';
import type { Clock } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import type { CheckContext } from '../checks/types.js';
import { sharedEvidence } from '../checks/evidence.js';
import type { CompareOp, Condition, FieldValue } from './condition.js';
import type { RegisteredCheck } from './registry.js';
import { COST } from './catalog.js';
import { NOT_VISIBLE, resultHeaders, type HeaderOptions } from './headers.js';
import { buildReply, FAULT_REPLY, templateValues } from './verdict.js';
import { safe } from './template.js';
import type { EvidenceCache } from './evidence-cache.js';

export type TV = 'true' | 'false' | 'unknown' | 'fault';

/** The data flag of evidence a replay could not reproduce (src/report/replay.ts): a FAULT for every leaf, `CHECK=temperror` too. */
export const NOT_RECORDED = 'notRecorded';

export interface CompiledRule {
  name: string;
  cond: Condition;
  action: Action;
  code?: number;
  status?: string;
  text?: string;
  remedy?: string;
  mode: 'enforce' | 'test';
  score?: number;
  /** Earliest stage the rule may decide at, when the message is / is not visible. */
  stageSeen: Stage;
  stageUnseen: Stage;
}

export interface EvaluatorOptions {
  checks: Map<string, RegisteredCheck>;
  headers: HeaderOptions;
  /** What a rule that would refuse does when its evidence hit a fault. */
  onFault: 'defer' | 'continue';
  resolver: Resolver;
  clock: Clock;
  /** Told about evaluator faults (bugs), which become 451 4.3.0. */
  onError?: (err: unknown, stage: Stage) => void;
  /** Evidence shared between transactions (policy.evidence_cache); absent = none. */
  evidenceCache?: EvidenceCache;
  /**
   * The whole decision's deadline (policy.deadline_ms): evidence still
   * unfinished when it passes counts as a fault for this decision. Absent or
   * 0: none.
   */
  deadlineMs?: number;
  /**
   * Checks that give Authentication-Results methods and that the rules use
   * (spf, spf_helo, fcrdns): an accepting verdict's header waits for their
   * evidence still coming and takes it from the shared cache when it is there.
   */
  headerChecks?: readonly string[];
  /**
   * Told when an enforcing, non-scoring rule's condition comes out FAULT,
   * with the evidence that faulted (frontline replay: a rule that met
   * evidence the log did not keep cannot be judged).
   */
  onRuleFault?: (rule: CompiledRule, faults: readonly Evidence[]) => void;
  /** Told how long each check that ran took, in ms (not those answered from a cache or at once): /metrics. */
  onCheckRun?: (check: string, ms: number) => void;
}

const REFUSING: ReadonlySet<Action> = new Set(['reject', 'defer', 'tarpit']);

/**
 * Longest an accepting verdict waits for header evidence still coming (an SPF
 * lookup started beside the MX match that decided): an answer that comes at
 * all comes well within it, while a lookup that times out takes seconds the
 * decision does not have (issue 17) — the header then goes without it.
 */
const HEADER_WAIT_MS = 1000;

/**
 * One check's evidence for the envelope fields it depends on (see slotFits):
 * settled, pending, and — for evidence the shared cache may hold — when it
 * stops being fresh (absent: not shareable).
 */
interface Slot {
  check: RegisteredCheck;
  /** stageIndex of the check's stage. */
  level: number;
  perRcpt: boolean;
  ip: string;
  helo: string;
  from: string;
  sasl: string;
  rcptCount: number;
  rcpt: string;
  evidence?: Evidence;
  pending?: Promise<Evidence>;
  expiresAt?: number;
}

/** Memoised evidence of one transaction. */
export class EvidenceMemo {
  /**
   * Slots by check name. Found by comparing the few envelope fields a check
   * depends on rather than by a string key: a key per check per lookup was
   * a tenth of a decision's allocations, and a transaction rarely holds more
   * than one slot per check.
   */
  private readonly slots = new Map<string, Slot[]>();
  /** Settled slots, in the order they settled. */
  private readonly order: Slot[] = [];

  constructor(
    private readonly opts: EvaluatorOptions,
    readonly seesMessage: boolean,
  ) {}

  /** The slot of a check for this envelope, if there is one. */
  private find(check: RegisteredCheck, env: Envelope): Slot | undefined {
    const list = this.slots.get(check.name);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) if (slotFits(list[i], env)) return list[i];
    return undefined;
  }

  private slot(check: RegisteredCheck, env: Envelope): Slot {
    const found = this.find(check, env);
    if (found) return found;
    const s = newSlot(check, env);
    const list = this.slots.get(check.name);
    if (list) list.push(s);
    else this.slots.set(check.name, [s]);
    return s;
  }

  peek(check: RegisteredCheck, env: Envelope): Evidence | undefined {
    return this.find(check, env)?.evidence;
  }

  /**
   * A header check's evidence still coming for this envelope, if any: settled
   * evidence, and evidence fresh in the shared cache (settled here now),
   * need no waiting; a check never started is not started.
   */
  coming(check: RegisteredCheck, env: Envelope): Promise<Evidence> | undefined {
    const found = this.find(check, env);
    if (found !== undefined && (found.evidence !== undefined || found.pending !== undefined)) return found.pending;
    // Not asked in this transaction: only the shared cache can have it (a look there makes no slot on a miss).
    if (found === undefined && !check.quick && !check.needsMessage) {
      const cache = this.opts.evidenceCache;
      const key = cache?.keyOf(check.name, env);
      if (key === undefined || !cache?.has(key)) return undefined;
    }
    return this.ready(check, env) ? undefined : this.find(check, env)?.pending;
  }

  /**
   * The evidence at once, when no waiting is needed: already settled in this
   * transaction, made up (a message the frontend cannot see), or fresh in
   * the shared evidence cache (then settled here). Undefined: ask get().
   */
  ready(check: RegisteredCheck, env: Envelope): Evidence | undefined {
    const slot = this.slot(check, env);
    if (slot.evidence || slot.pending) return slot.evidence;
    if (check.needsMessage && !this.seesMessage) return this.settle(slot, notVisible(check.name));
    const quick = quickEvidence(check, env);
    if (quick) return this.settle(slot, quick);
    const cache = this.opts.evidenceCache;
    const shared = cache?.keyOf(check.name, env);
    const hit = shared === undefined ? undefined : cache?.get(shared);
    if (!hit) return undefined;
    // What it was built from comes into the transaction too, as computing it would have brought it.
    let depsReady = true;
    for (const dep of hit.deps) {
      const c = this.opts.checks.get(dep);
      if (!c || !this.ready(c, env)) depsReady = false;
    }
    if (depsReady) return this.settle(slot, hit.evidence, hit.expiresAt);
    slot.pending = Promise.all(hit.deps.map((d) => this.get(d, env))).then(() => this.settle(slot, hit.evidence, hit.expiresAt));
    return undefined;
  }

  private settle(slot: Slot, ev: Evidence, expiresAt?: number): Evidence {
    slot.evidence = ev;
    slot.pending = undefined;
    if (expiresAt !== undefined) slot.expiresAt = expiresAt;
    this.order.push(slot);
    return ev;
  }

  get(name: string, env: Envelope): Promise<Evidence> {
    const check = this.opts.checks.get(name);
    if (!check) {
      return Promise.resolve({ check: name, result: 'temperror', detail: `internal error: check ${name} is not configured`, ms: 0, data: { internal: true } });
    }
    const slot = this.slot(check, env);
    if (slot.evidence) return Promise.resolve(slot.evidence);
    if (!slot.pending) slot.pending = this.compute(check, env, slot).then((ev) => this.settle(slot, ev));
    return slot.pending;
  }

  private async compute(check: RegisteredCheck, env: Envelope, slot: Slot): Promise<Evidence> {
    if (check.needsMessage && !this.seesMessage) return notVisible(check.name);
    const quick = quickEvidence(check, env);
    if (quick) return quick;
    const cache = this.opts.evidenceCache;
    const shared = cache?.keyOf(check.name, env);
    if (cache === undefined || shared === undefined) {
      return this.run(check, env, { resolver: this.opts.resolver, clock: this.opts.clock, evidence: (name) => this.get(name, env) });
    }
    const hit = cache.get(shared);
    if (hit) {
      for (const dep of hit.deps) await this.get(dep, env);
      slot.expiresAt = hit.expiresAt;
      return hit.evidence;
    }
    const scope = cache.scope();
    const ev = await this.run(check, env, {
      resolver: scope.resolver,
      clock: this.opts.clock,
      evidence: async (name) => {
        const dep = await this.get(name, env);
        const c = this.opts.checks.get(name);
        scope.dependsOn(name, c ? this.find(c, env)?.expiresAt : undefined);
        return dep;
      },
    });
    const expiresAt = cache.put(shared, ev, scope);
    if (expiresAt !== undefined) slot.expiresAt = expiresAt;
    return ev;
  }

  private async run(check: RegisteredCheck, env: Envelope, ctx: CheckContext): Promise<Evidence> {
    const t0 = performance.now();
    try {
      const ev = await check.run(env, ctx);
      this.opts.onCheckRun?.(check.name, performance.now() - t0);
      return ev.check === check.name ? ev : { ...ev, check: check.name };
    } catch (e) {
      this.opts.onCheckRun?.(check.name, performance.now() - t0);
      // A check that throws is a bug: never a reason to refuse mail.
      const msg = e instanceof Error ? e.message : String(e);
      return { check: check.name, result: 'temperror', detail: `internal error: ${msg}`, ms: Math.round(performance.now() - t0), data: { internal: true } };
    }
  }

  /** Evidence computed for this envelope (this recipient), in the order it settled. */
  current(env: Envelope): Evidence[] {
    const out: Evidence[] = [];
    for (let i = 0; i < this.order.length; i++) {
      const slot = this.order[i];
      if (slotFits(slot, env)) out.push(slot.evidence!);
    }
    return out;
  }
}

/** A check's answer without waiting, if it has one; a quick path that throws leaves the answer to `run` (which reports the error). */
function quickEvidence(check: RegisteredCheck, env: Envelope): Evidence | undefined {
  if (!check.quick) return undefined;
  try {
    return check.quick(env);
  } catch {
    return undefined;
  }
}

/** The evidence of a check that needs the message, for a frontend that cannot see it (one frozen object per check). */
const notVisible = sharedEvidence((check) => ({ check, result: 'none', detail: 'message not visible to the policy server', ms: 0, data: { [NOT_VISIBLE]: true } }), 1000);

/**
 * What a check's evidence depends on: the client, then what the stages up to
 * its own added — the HELO name; the sender and SASL user; for a
 * per-recipient check, the recipient count and the last recipient.
 */
function newSlot(check: RegisteredCheck, env: Envelope): Slot {
  const level = stageIndex(check.stage);
  const perRcpt = check.perRcpt === true;
  return {
    check,
    level,
    perRcpt,
    ip: env.clientIp,
    helo: level >= HELO ? (env.helo ?? '') : '',
    // \u0001 tells "no MAIL FROM yet" from the null sender ''.
    from: level >= MAIL ? (env.from ?? '\u0001') : '',
    sasl: level >= MAIL ? (env.saslUser ?? '') : '',
    rcptCount: perRcpt ? env.rcpts.length : 0,
    rcpt: perRcpt ? (env.rcpts[env.rcpts.length - 1] ?? '') : '',
  };
}

/** Whether a slot holds the check's evidence for this envelope (the fields newSlot took). */
function slotFits(s: Slot, env: Envelope): boolean {
  if (s.ip !== env.clientIp) return false;
  const level = s.level;
  if (level >= HELO && s.helo !== (env.helo ?? '')) return false;
  if (level >= MAIL && (s.from !== (env.from ?? '\u0001') || s.sasl !== (env.saslUser ?? ''))) return false;
  if (s.perRcpt) return s.rcptCount === env.rcpts.length && s.rcpt === (env.rcpts[env.rcpts.length - 1] ?? '');
  return true;
}
const HELO = stageIndex('helo');
const MAIL = stageIndex('mail');

/** One walk of the rules at one stage. */
class Walk {
  score = 0;
  /** Scores of score rules whose condition hit a fault: the true score lies in a range. */
  private faultedScores: number[] = [];
  /** Evidence with temperror met while evaluating the current rule. */
  faults: Evidence[] = [];
  /** Started when the walk first waits for evidence (a decision answered at once needs no timer). */
  private deadline: Deadline | undefined;
  /** Stand-ins for evidence the deadline cut off, by check (for the verdict's evidence list). */
  timedOut: Evidence[] | undefined;

  constructor(
    private readonly memo: EvidenceMemo,
    private readonly checks: Map<string, RegisteredCheck>,
    readonly stage: Stage,
    readonly env: Envelope,
    private readonly opts: EvaluatorOptions,
  ) {}

  /**
   * Evidence still coming, bounded by the decision's deadline: once it has
   * passed, unfinished evidence is a temperror for this decision (a FAULT,
   * never a refusal). The check itself runs on and is memoised, so a later
   * stage may still use its answer.
   */
  bounded(check: string, pending: Promise<Evidence>): Promise<Evidence> {
    const ms = this.opts.deadlineMs;
    if (!ms) return pending;
    const d = (this.deadline ??= new Deadline(ms, this.opts.clock));
    if (d.passed) return Promise.resolve(this.cutOff(check, ms));
    return Promise.race([pending, d.promise.then(() => this.cutOff(check, ms))]);
  }

  /** `pending` settled, or the deadline passed (nothing is recorded: a header just goes without it). */
  untilDeadline(pending: Promise<Evidence>): Promise<unknown> {
    const ms = this.opts.deadlineMs;
    if (!ms) return pending;
    const d = (this.deadline ??= new Deadline(ms, this.opts.clock));
    return d.passed ? Promise.resolve() : Promise.race([pending, d.promise]);
  }

  private cutOff(check: string, ms: number): Evidence {
    const ev: Evidence = { check, result: 'temperror', detail: `no answer within the decision deadline of ${ms} ms (policy.deadline_ms)`, ms, data: { deadline: true } };
    (this.timedOut ??= []).push(ev);
    return ev;
  }

  /** The walk is over: its timer is not needed any more. */
  stopDeadline(): void {
    this.deadline?.stop();
  }

  addScore(n: number): void {
    this.score += n;
  }
  addFaultedScore(n: number): void {
    this.faultedScores.push(n);
  }

  /** Is the check's data there at this stage? Message checks the frontend cannot see resolve at once. */
  available(check: RegisteredCheck): boolean {
    if (check.needsMessage && !this.memo.seesMessage) return true;
    return stageIndex(check.stage) <= stageIndex(this.stage);
  }

  private cost(c: Condition): number {
    switch (c.kind) {
      case 'const':
      case 'score':
        return COST.local;
      case 'result':
      case 'field': {
        const check = this.checks.get(c.check);
        if (!check || !this.available(check) || this.memo.peek(check, this.env)) return COST.local;
        return check.needsMessage && !this.memo.seesMessage ? COST.local : check.cost;
      }
      case 'not':
        return this.cost(c.item);
      default: {
        let max = -Infinity;
        for (const item of c.items) max = Math.max(max, this.cost(item));
        return max;
      }
    }
  }

  /**
   * The value of a condition. Synchronous when every piece of evidence it
   * needs is already at hand (settled in this transaction, or fresh in the
   * shared evidence cache), which on a warm cache is most of the time: a
   * promise per node was much of the cost of a decision.
   */
  eval(c: Condition): TV | Promise<TV> {
    switch (c.kind) {
      case 'const':
        return c.value ? 'true' : 'false';
      case 'score':
        return this.scoreLeaf(c.op, c.value);
      case 'result':
      case 'field':
        return this.leaf(c);
      case 'not': {
        const v = this.eval(c.item);
        return typeof v === 'string' ? not(v) : v.then(not);
      }
      default:
        return this.junction(c.kind, c.items);
    }
  }

  private leaf(c: Extract<Condition, { kind: 'result' | 'field' }>): TV | Promise<TV> {
    const check = this.checks.get(c.check);
    if (!check) throw new Error(`rule names check ${c.check}, which is not configured`);
    if (!this.available(check)) return 'unknown';
    const ev = this.memo.ready(check, this.env);
    if (ev) return this.judge(c, ev);
    return this.bounded(c.check, this.memo.get(c.check, this.env)).then((e) => this.judge(c, e));
  }

  private judge(c: Extract<Condition, { kind: 'result' | 'field' }>, ev: Evidence): TV {
    if (c.kind === 'result') {
      const hit = c.results.includes(ev.result);
      // A leaf that asks about temperror itself is answered; any other meets a fault. Evidence the
      // deadline cut off is no answer at all: a fault even for `CHECK=temperror` (451 4.3.0).
      // Evidence a replay could not reproduce (NOT_RECORDED) is no answer either.
      if (ev.result === 'temperror' && (!hit || ev.data?.deadline === true || ev.data?.[NOT_RECORDED] === true)) {
        this.faults.push(ev);
        return 'fault';
      }
      return hit !== c.negate ? 'true' : 'false';
    }
    if (ev.result === 'temperror') {
      this.faults.push(ev);
      return 'fault';
    }
    return compareField(ev.data?.[c.field], c.op, c.value) ? 'true' : 'false';
  }

  private scoreLeaf(op: CompareOp, value: number): TV {
    const lo = this.score + this.faultedScores.filter((s) => s < 0).reduce((a, b) => a + b, 0);
    const hi = this.score + this.faultedScores.filter((s) => s > 0).reduce((a, b) => a + b, 0);
    const atLo = compareField(lo, op, value);
    if (lo === hi) return atLo ? 'true' : 'false';
    // Ordering comparisons are monotonic: the same answer at both ends holds for the range.
    if ((op === '=' || op === '!=') || atLo !== compareField(hi, op, value)) return 'fault';
    return atLo ? 'true' : 'false';
  }

  /**
   * any/all: cheap children one by one, cheapest first, stopping at the
   * decisive value; then every DNS (or dearer) child at once, the first
   * decisive answer winning (the others run on and are memoised).
   */
  private junction(kind: 'any' | 'all', items: Condition[]): TV | Promise<TV> {
    const ranked = rank(items, (c) => this.cost(c));
    const decisive: TV = kind === 'any' ? 'true' : 'false';
    const seen: TV[] = [];
    let i = 0;
    for (; i < ranked.length && ranked[i].cost < COST.dns; i++) {
      const v = this.eval(ranked[i].item);
      if (typeof v !== 'string') return this.junctionAfter(kind, ranked, i, v, seen);
      if (v === decisive) return v;
      seen.push(v);
    }
    return this.expensive(kind, ranked, i, seen);
  }

  /** The rest of a junction once a cheap child turned out to need waiting for. */
  private async junctionAfter(kind: 'any' | 'all', ranked: readonly Ranked[], at: number, pending: Promise<TV>, seen: TV[]): Promise<TV> {
    const decisive: TV = kind === 'any' ? 'true' : 'false';
    let v = await pending;
    if (v === decisive) return v;
    seen.push(v);
    let i = at + 1;
    for (; i < ranked.length && ranked[i].cost < COST.dns; i++) {
      v = await this.eval(ranked[i].item);
      if (v === decisive) return v;
      seen.push(v);
    }
    return this.expensive(kind, ranked, i, seen);
  }

  /** The children from `from` on, all started at once; the first decisive value wins. */
  private expensive(kind: 'any' | 'all', ranked: readonly Ranked[], from: number, seen: TV[]): TV | Promise<TV> {
    if (from >= ranked.length) return combine(kind, seen);
    const decisive: TV = kind === 'any' ? 'true' : 'false';
    const waiting: Array<Promise<TV>> = [];
    let found = false;
    // Every child is started before any answer is looked at, as the DNS ones run in parallel.
    for (let i = from; i < ranked.length; i++) {
      const v = this.eval(ranked[i].item);
      if (typeof v !== 'string') waiting.push(v);
      else if (v === decisive) found = true;
      else seen.push(v);
    }
    if (found) return decisive;
    if (waiting.length === 0) return combine(kind, seen);
    return new Promise<TV>((resolve, reject) => {
      let left = waiting.length;
      for (const p of waiting) {
        p.then((r) => {
          seen.push(r);
          if (r === decisive) resolve(r);
          else if (--left === 0) resolve(combine(kind, seen));
        }, reject);
      }
    });
  }
}

interface Ranked {
  item: Condition;
  cost: number;
}

/**
 * Children by cost, cheapest first, ties in written order (a stable
 * insertion sort: junctions have a handful of children). A rule's children
 * nearly always come out in written order, so that case allocates one
 * small array and no comparator.
 */
function rank(items: readonly Condition[], cost: (c: Condition) => number): Ranked[] {
  const out = new Array<Ranked>(items.length);
  for (let i = 0; i < items.length; i++) {
    const r: Ranked = { item: items[i], cost: cost(items[i]) };
    let j = i;
    while (j > 0 && out[j - 1].cost > r.cost) {
      out[j] = out[j - 1];
      j--;
    }
    out[j] = r;
  }
  return out;
}

/** Kleene negation: UNKNOWN and FAULT stay what they are. */
export function not(v: TV): TV {
  return v === 'true' ? 'false' : v === 'false' ? 'true' : v;
}

/**
 * Kleene any/all over evaluated children: the decisive value wins
 * (any: TRUE, all: FALSE); else UNKNOWN beats FAULT (wait for more data
 * before blaming a fault); else the neutral value.
 */
export function combine(kind: 'any' | 'all', values: readonly TV[]): TV {
  const decisive: TV = kind === 'any' ? 'true' : 'false';
  if (values.includes(decisive)) return decisive;
  if (values.includes('unknown')) return 'unknown';
  if (values.includes('fault')) return 'fault';
  return kind === 'any' ? 'false' : 'true';
}

function compareField(actual: unknown, op: CompareOp, want: FieldValue): boolean {
  if (op === '=' || op === '!=') {
    const eq = Array.isArray(actual) ? actual.some((a) => looseEqual(a, want)) : looseEqual(actual, want);
    return op === '=' ? eq : !eq;
  }
  const n = typeof actual === 'number' ? actual : typeof actual === 'string' && actual.trim() !== '' ? Number(actual) : NaN;
  if (Number.isNaN(n) || typeof want !== 'number') return false;
  switch (op) {
    case '>=':
      return n >= want;
    case '<=':
      return n <= want;
    case '>':
      return n > want;
    default:
      return n < want;
  }
}

function looseEqual(actual: unknown, want: FieldValue): boolean {
  if (actual === undefined || actual === null) return false;
  if (typeof want === 'string' && typeof actual === 'string') return actual.toLowerCase() === want.toLowerCase();
  return String(actual) === String(want);
}

/** Walk the rules for one stage. Never throws (nor rejects). */
export async function evaluateRules(
  rules: CompiledRule[],
  stage: Stage,
  env: Envelope,
  memo: EvidenceMemo,
  opts: EvaluatorOptions,
): Promise<Verdict> {
  return evaluateRulesNow(rules, stage, env, memo, opts);
}

/**
 * The same walk, answered synchronously when no rule has to wait for
 * evidence (on a warm evidence cache, most decisions): a promise per
 * decision, and the microtask hops behind it, were a measurable part of a
 * warm answer. Never throws; a returned promise never rejects.
 */
export function evaluateRulesNow(
  rules: CompiledRule[],
  stage: Stage,
  env: Envelope,
  memo: EvidenceMemo,
  opts: EvaluatorOptions,
): Verdict | Promise<Verdict> {
  const run = new RuleWalk(rules, stage, env, memo, opts);
  try {
    for (let i = 0; i < rules.length; i++) {
      run.walk.faults = [];
      const tv = run.walk.eval(rules[i].cond);
      if (typeof tv !== 'string') return run.resume(i, tv);
      const verdict = run.decide(rules[i], tv);
      if (verdict) return verdict;
    }
    return run.finish({ action: 'continue', rule: 'default' });
  } catch (e) {
    return run.crashed(e);
  }
}

type VerdictCore = Omit<Verdict, 'headers' | 'evidence' | 'stage' | 'score' | 'wouldHave'>;

/** One walk's state across its rules: the score walk, test-mode findings, and how a verdict is made. */
class RuleWalk {
  readonly walk: Walk;
  private readonly wouldHave: NonNullable<Verdict['wouldHave']> = [];

  constructor(
    private readonly rules: CompiledRule[],
    private readonly stage: Stage,
    private readonly env: Envelope,
    private readonly memo: EvidenceMemo,
    private readonly opts: EvaluatorOptions,
  ) {
    this.walk = new Walk(memo, opts.checks, stage, env, opts);
  }

  /** Continue from rule `at`, whose value is still coming. */
  async resume(at: number, pending: Promise<TV>): Promise<Verdict> {
    try {
      // `await`, not the promise: the deadline must outlive a verdict still completing its header.
      let verdict = this.decide(this.rules[at], await pending);
      if (verdict) return await verdict;
      for (let i = at + 1; i < this.rules.length; i++) {
        this.walk.faults = [];
        const tv = this.walk.eval(this.rules[i].cond);
        verdict = this.decide(this.rules[i], typeof tv === 'string' ? tv : await tv);
        if (verdict) return await verdict;
      }
      return await this.finish({ action: 'continue', rule: 'default' });
    } catch (e) {
      return this.crashed(e);
    } finally {
      this.walk.stopDeadline();
    }
  }

  /** What rule `rule` does with its condition's value: a verdict, or undefined to go on to the next rule. */
  decide(rule: CompiledRule, v: TV): Verdict | Promise<Verdict> | undefined {
    const { memo, opts, wouldHave, walk } = this;
    const ruleStage = memo.seesMessage ? rule.stageSeen : rule.stageUnseen;
    const early = stageIndex(this.stage) < stageIndex(ruleStage);
    const test = rule.mode === 'test';
    if (v === 'false') return undefined;
    if (v === 'unknown' || early) {
      // Not decidable yet: decide at a later stage. A test rule never holds up the walk.
      if (test) return undefined;
      return this.finish({ action: 'continue', rule: rule.name });
    }
    if (v === 'fault') {
      if (!test && rule.score === undefined) opts.onRuleFault?.(rule, walk.faults);
      if (rule.score !== undefined) {
        if (!test) walk.addFaultedScore(rule.score);
        return undefined;
      }
      if (!REFUSING.has(rule.action)) return undefined;
      const fault = faultReply(walk.faults);
      if (test) {
        wouldHave.push({ rule: rule.name, action: opts.onFault === 'defer' ? 'defer' : 'continue', code: fault.code, text: fault.text });
        return undefined;
      }
      if (opts.onFault === 'continue') return this.finish({ action: 'continue', rule: rule.name });
      return this.finish({ action: 'defer', rule: rule.name, ...fault });
    }
    // TRUE
    if (rule.score !== undefined) {
      if (test) wouldHave.push({ rule: rule.name, action: 'continue', text: `score ${rule.score >= 0 ? '+' : ''}${rule.score}` });
      else walk.addScore(rule.score);
      return undefined;
    }
    if (rule.action === 'continue') return undefined;
    const r = this.reply(rule);
    if (test) {
      wouldHave.push({ rule: rule.name, action: rule.action, ...(r.code !== undefined ? { code: r.code } : {}), ...(r.text !== undefined ? { text: r.text } : {}) });
      return undefined;
    }
    return this.finish({ action: rule.action, rule: rule.name, ...r });
  }

  private reply(rule: CompiledRule): ReturnType<typeof buildReply> {
    const { memo, opts, env } = this;
    const evidenceOf = (check: string): Evidence | undefined => {
      const c = opts.checks.get(check);
      return c ? memo.peek(c, env) : undefined;
    };
    return buildReply(rule, templateValues(env, { rule: rule.name, stage: this.stage, score: this.walk.score, seesMessage: memo.seesMessage }, evidenceOf));
  }

  /**
   * The verdict, its header naming every method whose evidence is known or
   * cached for the message (issue 17: a cached MX match decided first and
   * Authentication-Results left out the spf=pass still being computed).
   * Evidence of a header check still coming is waited for, at most
   * HEADER_WAIT_MS and within the decision's deadline; evidence in the
   * shared cache is taken. Synchronous when there is nothing to wait for.
   */
  finish(v: VerdictCore): Verdict | Promise<Verdict> {
    const names = this.opts.headerChecks;
    if (!names || names.length === 0 || !(v.action === 'accept' || v.action === 'tag' || v.action === 'continue') || !this.opts.headers.authenticationResults) {
      return this.build(v);
    }
    let waiting: Array<Promise<unknown>> | undefined;
    for (let i = 0; i < names.length; i++) {
      const check = this.opts.checks.get(names[i]);
      if (!check || !this.walk.available(check)) continue;
      const pending = this.memo.coming(check, this.env);
      if (pending) (waiting ??= []).push(this.walk.untilDeadline(pending));
    }
    if (!waiting) return this.build(v);
    const all = waiting;
    return new Promise<Verdict>((resolve) => {
      let over = false;
      const done = (): void => {
        if (over) return;
        over = true;
        cancel();
        this.walk.stopDeadline();
        resolve(this.build(v));
      };
      // Neither fires synchronously: `cancel` is set before `done` can run.
      const cancel = afterOn(this.opts.clock, HEADER_WAIT_MS, done);
      Promise.all(all).then(done, done);
    });
  }

  private build(v: VerdictCore): Verdict {
    const evidence = this.memo.current(this.env);
    // What the deadline cut off is part of the decision: the log shows which check never answered.
    const timedOut = this.walk.timedOut;
    if (timedOut !== undefined) for (const t of timedOut) if (!evidence.some((e) => e.check === t.check)) evidence.push(t);
    const headers = v.action === 'accept' || v.action === 'tag' || v.action === 'continue' ? resultHeaders(this.opts.headers, this.env, evidence) : [];
    const verdict: Verdict = { ...v, headers, stage: this.stage, evidence };
    if (v.action === 'tag' && v.text !== undefined && this.opts.headers.tagHeader) headers.push([this.opts.headers.tagHeader, v.text]);
    if (this.wouldHave.length > 0) verdict.wouldHave = this.wouldHave;
    if (this.walk.score !== 0) verdict.score = this.walk.score;
    return verdict;
  }

  /** A bug in the walk: a 451 4.3.0 fault verdict, with the evidence gathered so far. */
  crashed(e: unknown): Verdict {
    this.opts.onError?.(e, this.stage);
    const msg = e instanceof Error ? e.message : String(e);
    let evidence: Evidence[] = [];
    try {
      evidence = this.memo.current(this.env);
    } catch {
      // the memo itself is broken: report the error alone
    }
    return {
      action: 'defer',
      ...FAULT_REPLY.internal,
      text: 'temporary failure: internal error, try again later',
      headers: [],
      rule: 'fault',
      stage: this.stage,
      evidence: [...evidence, { check: 'policy', result: 'temperror', detail: `internal error: ${safe(msg, 300)}`, ms: 0, data: { internal: true } }],
    };
  }
}

/** A decision's deadline: one timer on the policy's clock, stopped when the walk ends. */
class Deadline {
  passed = false;
  readonly promise: Promise<void>;
  private cancel: (() => void) | undefined;

  constructor(ms: number, clock: EvaluatorOptions['clock']) {
    this.promise = new Promise<void>((resolve) => {
      this.cancel = afterOn(clock, ms, () => {
        this.passed = true;
        resolve();
      });
    });
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }
}

function faultReply(faults: Evidence[]): { code: number; status: string; text: string } {
  const internal = faults.some((f) => f.data?.internal === true || f.data?.deadline === true || f.detail.startsWith('error: '));
  const first = faults[0];
  const detail = first ? `${first.check}: ${first.detail}` : 'evidence unavailable';
  return { ...(internal ? FAULT_REPLY.internal : FAULT_REPLY.dns), text: safe(`temporary failure: ${detail}`, 450) };
}
