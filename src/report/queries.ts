// The one query layer behind `frontline stats`, the dashboard's Overview and
// the daily report: every number they show comes from here, so they agree.
// It reads the decision log's counters (store.countEvents, kept per minute
// and per hour as events are written: docs/report.md), the bans and the
// store's health; it never scans the log itself.
//
// Windows cover whole buckets: "since 24h" at 14:37 counts the hourly
// counters from 14:00 yesterday and the minute counters from 14:37.

import type { Clock } from '../core/types.js';
import type { Ban, RollupDim, RollupRow, Store, StoreHealth } from '../store/types.js';
import { outcomeOf, REFUSING_ACTIONS, vectorOf, VECTORS, type Outcome, type RuleChecks, type Vector } from './vectors.js';

export interface Window {
  since: number;
  until: number;
}

/** Where a client comes from, when an IP-to-AS table is configured. */
export interface AsnLookup {
  lookup(ip: string): { asn: number; country: string; description: string } | undefined;
}

export interface ReportDeps {
  store: Store;
  clock?: Clock;
  /** The checks each rule reads (from the policy config), to name refusal vectors. */
  ruleChecks?: RuleChecks;
  /** Countries and AS numbers of clients; without it those tables are empty. */
  asn?: AsnLookup;
}

export type Counts = Record<string, number>;

/** One row of a top list: a key and its decisions by action. */
export interface TopRow {
  key: string;
  total: number;
  byAction: Counts;
  /** For countries and AS numbers: the AS's name; for zones nothing. */
  label?: string;
}

/** Decisions per bucket by outcome: `series[outcome][i]` counts the bucket starting at `from + i × stepMs`. */
export interface Timeline {
  from: number;
  stepMs: number;
  buckets: number;
  series: Record<Outcome, number[]>;
}

export interface VectorRow {
  vector: Vector;
  total: number;
  byAction: Counts;
  /** The rules that counted under it, most first. */
  rules: Array<{ rule: string; n: number }>;
}

export interface BanSummary {
  active: number;
  byCategory: Array<{ key: string; n: number }>;
  /** log watching, spamtraps, manual, feeds, the gate's trap, policy rules… (banSourceKind) */
  bySource: Array<{ key: string; n: number }>;
  /** Bans in force that started inside the window. */
  newInWindow: number;
  /** Bans in force whose offence number is above 1. */
  repeatOffenders: number;
  /** Set when there were more bans than were read (MAX_BANS_READ). */
  truncated?: boolean;
}

export type TopBy = 'rule' | 'client' | 'domain' | 'zone' | 'zone-skip' | 'country' | 'asn';

export interface TopOptions {
  /** Only these actions (default: all). */
  actions?: readonly string[];
  limit?: number;
}

export interface Overview {
  window: Window;
  /** Decisions by outcome over the window. */
  outcomes: Record<Outcome, number>;
  total: number;
  timeline: Timeline;
  vectors: VectorRow[];
  topRules: TopRow[];
  topClients: TopRow[];
  topDomains: TopRow[];
  /** Empty without an ASN table. */
  topCountries: TopRow[];
  bans: BanSummary;
  store: StoreHealth;
}

/** Most bans read for a summary; beyond, it is marked truncated. */
export const MAX_BANS_READ = 200_000;
/** Client rows read to make country and AS tables (the most active clients). */
const GEO_CLIENTS = 20_000;

/** Which kind of source made a ban: 'log watching', 'spamtraps', 'manual', 'feeds', 'gate trap', 'rules'. */
export function banSourceKind(ban: Pick<Ban, 'source' | 'category'>): string {
  const s = ban.source;
  if (s.startsWith('log:')) return 'log watching';
  if (s === 'spamtrap' || ban.category === 'spamtrap') return 'spamtraps';
  if (s.startsWith('cli:') || s.startsWith('web:') || ban.category === 'manual') return 'manual';
  if (s.startsWith('feed:') || s.startsWith('import:')) return 'feeds';
  if (s.startsWith('gate:')) return 'gate trap';
  return 'rules';
}

export function emptyOutcomes(): Record<Outcome, number> {
  return { accepted: 0, refused: 0, deferred: 0, greylisted: 0 };
}

export class ReportQueries {
  private readonly store: Store;
  private readonly clock: Clock;

  constructor(private readonly deps: ReportDeps) {
    this.store = deps.store;
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  /** Is an IP-to-AS table configured (countries and AS numbers)? */
  get hasAsn(): boolean {
    return this.deps.asn !== undefined;
  }

  /** The window from `seconds` ago to now. */
  last(seconds: number): Window {
    const now = this.clock.now();
    return { since: now - seconds * 1000, until: now };
  }

  private count(dim: RollupDim, w: Window, extra: { actions?: readonly string[]; limit?: number; maxBucketMs?: number } = {}): Promise<RollupRow[]> {
    return this.store.countEvents({ dim, since: w.since, until: w.until, ...extra });
  }

  /** Decisions by outcome, per bucket of `stepMs` (a multiple of a minute; default one minute). */
  async timeline(w: Window, stepMs = 60_000): Promise<Timeline> {
    const step = Math.max(60_000, Math.round(stepMs / 60_000) * 60_000);
    const from = Math.floor(w.since / step) * step;
    const buckets = Math.max(1, Math.floor(w.until / step) - Math.floor(w.since / step) + 1);
    const series = { accepted: new Array<number>(buckets).fill(0), refused: new Array<number>(buckets).fill(0), deferred: new Array<number>(buckets).fill(0), greylisted: new Array<number>(buckets).fill(0) };
    // Coarser counters (an hour's) where the step holds them whole: a week in hours reads 168 rows a key, not 10,080.
    for (const r of await this.count('minute', w, { maxBucketMs: step })) {
      const i = Math.floor(((r.bucket as number) - from) / step);
      if (i >= 0 && i < buckets) series[outcomeOf(r.action, r.key, this.deps.ruleChecks)][i] += r.n;
    }
    return { from, stepMs: step, buckets, series };
  }

  /** Decisions by outcome over the window (from the minute counters). */
  async outcomes(w: Window): Promise<Record<Outcome, number>> {
    const out = emptyOutcomes();
    for (const r of await this.count('minute', w, { maxBucketMs: 86_400_000 })) out[outcomeOf(r.action, r.key, this.deps.ruleChecks)] += r.n;
    return out;
  }

  /** Refusals and deferrals by vector (reject and defer), from the rule counters. */
  async vectors(w: Window): Promise<VectorRow[]> {
    const rows = await this.count('rule', w, { actions: REFUSING_ACTIONS, limit: 10_000 });
    const by = new Map<Vector, VectorRow>();
    const rules = new Map<Vector, Map<string, number>>();
    for (const r of rows) {
      const v = vectorOf(r.key, this.deps.ruleChecks);
      let row = by.get(v);
      if (row === undefined) by.set(v, (row = { vector: v, total: 0, byAction: {}, rules: [] }));
      row.total += r.n;
      row.byAction[r.action] = (row.byAction[r.action] ?? 0) + r.n;
      let m = rules.get(v);
      if (m === undefined) rules.set(v, (m = new Map()));
      m.set(r.key, (m.get(r.key) ?? 0) + r.n);
    }
    for (const [v, m] of rules) (by.get(v) as VectorRow).rules = [...m].map(([rule, n]) => ({ rule, n })).sort((a, b) => b.n - a.n || cmp(a.rule, b.rule));
    return [...by.values()].sort((a, b) => b.total - a.total || VECTORS.indexOf(a.vector) - VECTORS.indexOf(b.vector));
  }

  /** The top keys of a dimension, with their decisions by action. */
  async top(w: Window, by: TopBy, opts: TopOptions = {}): Promise<TopRow[]> {
    const limit = opts.limit ?? 10;
    if (by === 'country' || by === 'asn') return this.topGeo(w, by, opts.actions, limit);
    return toTop(await this.count(by, w, { actions: opts.actions, limit }));
  }

  /** Countries or AS numbers of the most active clients (GEO_CLIENTS of them), through the ASN table. */
  private async topGeo(w: Window, by: 'country' | 'asn', actions: readonly string[] | undefined, limit: number): Promise<TopRow[]> {
    const asn = this.deps.asn;
    if (asn === undefined) return [];
    const rows = await this.count('client', w, { actions, limit: GEO_CLIENTS });
    const mapped: RollupRow[] = [];
    const labels = new Map<string, string>();
    for (const r of rows) {
      const info = asn.lookup(r.key);
      const key = info === undefined ? 'unknown' : by === 'country' ? info.country || 'unknown' : `AS${info.asn}`;
      if (info !== undefined && by === 'asn') labels.set(key, info.description);
      mapped.push({ key, action: r.action, n: r.n });
    }
    return toTop(mapped)
      .slice(0, limit)
      .map((t) => (labels.has(t.key) ? { ...t, label: labels.get(t.key) } : t));
  }

  /** What rules in test mode would have done: rule → would-have action → count. */
  async wouldHave(w: Window, limit = 50): Promise<TopRow[]> {
    return toTop(await this.count('would-have', w, { limit }));
  }

  /** Bans in force by category and by kind of source; new ones in the window and repeat offenders. */
  async bans(w?: Window): Promise<BanSummary> {
    const cats = new Map<string, number>();
    const srcs = new Map<string, number>();
    let active = 0;
    let newInWindow = 0;
    let repeat = 0;
    let truncated = false;
    await this.store.scanBanRecords((page) => {
      for (const b of page) {
        if (active === MAX_BANS_READ) {
          truncated = true;
          return false;
        }
        active++;
        cats.set(b.category, (cats.get(b.category) ?? 0) + 1);
        const kind = banSourceKind(b);
        srcs.set(kind, (srcs.get(kind) ?? 0) + 1);
        if (w !== undefined && b.createdAt >= w.since && b.createdAt <= w.until) newInWindow++;
        if (b.offences > 1) repeat++;
      }
    });
    const sorted = (m: Map<string, number>) => [...m].map(([key, n]) => ({ key, n })).sort((a, b) => b.n - a.n || cmp(a.key, b.key));
    const out: BanSummary = { active, byCategory: sorted(cats), bySource: sorted(srcs), newInWindow, repeatOffenders: repeat };
    if (truncated) out.truncated = true;
    return out;
  }

  /** Everything the dashboard's Overview shows, in one call (the store questions run together). */
  async overview(w: Window, opts: { stepMs?: number; limit?: number } = {}): Promise<Overview> {
    const limit = opts.limit ?? 10;
    const refused = ['reject'];
    const [timeline, vectors, topRules, topClients, topDomains, topCountries, bans, store] = await Promise.all([
      this.timeline(w, opts.stepMs),
      this.vectors(w),
      this.top(w, 'rule', { actions: refused, limit }),
      this.top(w, 'client', { actions: refused, limit }),
      this.top(w, 'domain', { actions: refused, limit }),
      this.top(w, 'country', { actions: refused, limit }),
      this.bans(w),
      this.store.health(),
    ]);
    const outcomes = emptyOutcomes();
    for (const o of Object.keys(outcomes) as Outcome[]) outcomes[o] = timeline.series[o].reduce((a, b) => a + b, 0);
    const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
    return { window: w, outcomes, total, timeline, vectors, topRules, topClients, topDomains, topCountries, bans, store };
  }
}

/** Rollup rows (summed over a window, by key and action) as top rows, in the order the store gave the keys. */
export function toTop(rows: readonly RollupRow[]): TopRow[] {
  const by = new Map<string, TopRow>();
  for (const r of rows) {
    let t = by.get(r.key);
    if (t === undefined) by.set(r.key, (t = { key: r.key, total: 0, byAction: {} }));
    t.total += r.n;
    t.byAction[r.action] = (t.byAction[r.action] ?? 0) + r.n;
  }
  return [...by.values()].sort((a, b) => b.total - a.total || cmp(a.key, b.key));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
