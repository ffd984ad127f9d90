// The daily report: what frontline did over a window and what an admin
// should look at — new bans and repeat offenders, the top refused, what
// test-mode rules would have done, zones that went out of use, and false
// positive candidates. Built from the query layer (counters) and a bounded
// number of decision-log and store questions; docs/report.md.

import { domainOf } from '../core/address.js';
import type { Ban, Store } from '../store/types.js';
import { emptyOutcomes, type ReportQueries, type TopRow, type VectorRow, type Window } from './queries.js';
import type { Outcome, RuleChecks } from './vectors.js';
import { vectorOf } from './vectors.js';

export interface FalsePositives {
  /** Refused sender domains (or addresses) our users wrote to: correspondents. */
  correspondents: Array<{ sender: string; refused: number; wroteTo: number; lastWrote: number }>;
  /** Clients refused, then accepted later in the window. */
  refusedThenAccepted: Array<{ client: string; refused: number; firstRefused: number; acceptedAt: number; rule: string }>;
  /** Sender domains an SPF/OR rule refused for a host that later passed their SPF. */
  spfPassedLater: Array<{ domain: string; client: string; rule: string; refusedAt: number; passedAt: number }>;
}

export interface DailyReport {
  window: Window;
  generatedAt: number;
  outcomes: Record<Outcome, number>;
  total: number;
  vectors: VectorRow[];
  topRules: TopRow[];
  topClients: TopRow[];
  topDomains: TopRow[];
  newBans: Ban[];
  repeatOffenders: Ban[];
  bansActive: number;
  wouldHave: TopRow[];
  /** Zones the dnsbl evidence says were not consulted (out of use after the probe, or not answering). */
  zonesNotConsulted: TopRow[];
  falsePositives: FalsePositives;
}

export interface DailyOptions {
  store: Store;
  queries: ReportQueries;
  ruleChecks?: RuleChecks;
  /** Rows per list (default 10). */
  limit?: number;
}

/** Candidates checked per kind of false positive (each costs a store question or two). */
const CANDIDATES = 50;

export async function buildDailyReport(w: Window, opts: DailyOptions): Promise<DailyReport> {
  const { store, queries: q } = opts;
  const limit = opts.limit ?? 10;
  const overview = await q.overview(w, { limit, stepMs: 3_600_000 });
  const bans = await store.listBans({ limit: 10_000 });
  const byStart = (a: Ban, b: Ban) => b.createdAt - a.createdAt;
  const newBans = bans.filter((b) => b.createdAt >= w.since && b.createdAt <= w.until).sort(byStart);
  const repeatOffenders = bans.filter((b) => b.offences > 1).sort((a, b) => b.offences - a.offences || byStart(a, b));
  const outcomes = emptyOutcomes();
  Object.assign(outcomes, overview.outcomes);
  return {
    window: w,
    generatedAt: w.until,
    outcomes,
    total: overview.total,
    vectors: overview.vectors,
    topRules: overview.topRules,
    topClients: overview.topClients,
    topDomains: overview.topDomains,
    newBans: newBans.slice(0, limit * 5),
    repeatOffenders: repeatOffenders.slice(0, limit * 5),
    bansActive: overview.bans.active,
    wouldHave: await q.wouldHave(w),
    zonesNotConsulted: await q.top(w, 'zone-skip', { limit }),
    falsePositives: await falsePositives(w, opts),
  };
}

async function falsePositives(w: Window, opts: DailyOptions): Promise<FalsePositives> {
  const { store, queries: q } = opts;
  const out: FalsePositives = { correspondents: [], refusedThenAccepted: [], spfPassedLater: [] };

  // 1. Refused senders our users write to: refused sender domains that are correspondents,
  //    and address correspondents (free-mail senders) that were refused.
  const refusedDomains = await q.top(w, 'domain', { actions: ['reject'], limit: 1000 });
  for (const d of refusedDomains) {
    if (d.key === '<>') continue;
    const c = await store.correspondentGet(d.key, w.until);
    if (c !== undefined) out.correspondents.push({ sender: d.key, refused: d.total, wroteTo: c.count, lastWrote: c.lastSeen });
  }
  const addresses = (await store.correspondentAll(w.until)).filter((c) => c.kind === 'address').sort((a, b) => b.lastSeen - a.lastSeen);
  for (const c of addresses.slice(0, CANDIDATES)) {
    const refused = await store.queryEvents({ from: c.key, action: 'reject', since: w.since, until: w.until, limit: 1000 });
    if (refused.length > 0) out.correspondents.push({ sender: c.key, refused: refused.length, wroteTo: c.count, lastWrote: c.lastSeen });
  }
  out.correspondents.sort((a, b) => b.refused - a.refused || (a.sender < b.sender ? -1 : 1));

  // 2. Clients refused and accepted later: the clients with both, checked in the log for the order.
  const clients = await q.top(w, 'client', { limit: 5000 });
  const both = clients.filter((c) => (c.byAction.reject ?? 0) > 0 && c.total - (c.byAction.reject ?? 0) - (c.byAction.defer ?? 0) > 0);
  for (const c of both.slice(0, CANDIDATES)) {
    const events = await store.queryEvents({ ip: c.key, since: w.since, until: w.until, limit: 1000 });
    const firstRefusal = events.filter((e) => e.action === 'reject').at(-1);
    const laterAccept = firstRefusal && events.find((e) => e.ts > firstRefusal.ts && e.action !== 'reject' && e.action !== 'defer');
    if (firstRefusal && laterAccept) {
      out.refusedThenAccepted.push({ client: c.key, refused: c.byAction.reject ?? 0, firstRefused: firstRefusal.ts, acceptedAt: laterAccept.ts, rule: firstRefusal.rule });
    }
  }

  // 3. The OR rule (rules whose vector is spf) refused a domain's mail from a host that later passed the domain's SPF.
  const rules = (await q.top(w, 'rule', { actions: ['reject'], limit: 1000 })).filter((r) => vectorOf(r.key, opts.ruleChecks) === 'spf');
  const seen = new Set<string>();
  for (const r of rules) {
    const refusals = await store.queryEvents({ rule: r.key, action: 'reject', since: w.since, until: w.until, limit: 1000 });
    for (const e of refusals) {
      const domain = domainOf(e.from);
      const pair = `${domain}\n${e.clientIp}`;
      if (domain === undefined || seen.has(pair) || seen.size >= CANDIDATES) continue;
      seen.add(pair);
      const later = await store.queryEvents({ ip: e.clientIp, since: e.ts + 1, until: w.until, limit: 1000 });
      const passed = later.filter((x) => domainOf(x.from) === domain && x.evidence.some((v) => v.check === 'spf' && v.result === 'pass')).at(-1);
      if (passed) out.spfPassedLater.push({ domain, client: e.clientIp, rule: e.rule, refusedAt: e.ts, passedAt: passed.ts });
    }
  }
  return out;
}
