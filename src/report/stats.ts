// `frontline stats`: the query layer's answers as tables (or JSON). Without
// `--by` a summary of every table; with it, one table in full.

import { OUTCOMES, VECTOR_TITLES, type Outcome } from './vectors.js';
import type { ReportQueries, TopRow, Window } from './queries.js';
import { percent, textTable } from './text-table.js';

export const STATS_BY = ['action', 'rule', 'category', 'zone', 'domain', 'client', 'country', 'hour'] as const;
export type StatsBy = (typeof STATS_BY)[number];

export interface StatsOptions {
  by?: StatsBy;
  limit?: number;
}

/** The numbers `stats` shows, as JSON. */
export async function statsData(q: ReportQueries, w: Window, opts: StatsOptions = {}): Promise<Record<string, unknown>> {
  const limit = opts.limit ?? 10;
  const window = { since: new Date(w.since).toISOString(), until: new Date(w.until).toISOString() };
  switch (opts.by) {
    case undefined: {
      // The timeline is not shown: a day's step reads the coarsest counters (the totals are the same at any step).
      const o = await q.overview(w, { limit, stepMs: 86_400_000 });
      const { timeline: _t, store: _s, window: _w, ...rest } = o;
      return { window, ...rest, asnTable: q.hasAsn };
    }
    case 'action': {
      return { window, outcomes: await q.outcomes(w) };
    }
    case 'hour': {
      const t = await q.timeline(w, 3_600_000);
      const hours = Array.from({ length: t.buckets }, (_, i) => ({
        hour: new Date(t.from + i * t.stepMs).toISOString(),
        ...Object.fromEntries(OUTCOMES.map((o) => [o, t.series[o][i]])),
      }));
      return { window, hours };
    }
    case 'category':
      return { window, vectors: await q.vectors(w), bans: await q.bans(w) };
    case 'rule':
      return { window, rules: await q.top(w, 'rule', { limit: Math.max(limit, 100) }), wouldHave: await q.wouldHave(w) };
    case 'zone':
      return { window, zones: await q.top(w, 'zone', { limit }), notConsulted: await q.top(w, 'zone-skip', { limit }) };
    case 'domain':
    case 'client':
    case 'country':
      return { window, [opts.by]: await q.top(w, opts.by, { limit }) };
  }
}

const byOutcome = (t: TopRow) => {
  const a = t.byAction;
  const refused = a.reject ?? 0;
  const deferred = a.defer ?? 0;
  return [t.total, refused, deferred, t.total - refused - deferred];
};

function topTable(title: string, rows: TopRow[], keyHead: string): string {
  if (rows.length === 0) return `${title}: none\n`;
  const hasLabel = rows.some((r) => r.label !== undefined);
  const head = [keyHead, 'total', 'refused', 'deferred', 'accepted', ...(hasLabel ? ['name'] : [])];
  return `${title}\n${textTable(head, rows.map((r) => [r.key, ...byOutcome(r), ...(hasLabel ? [r.label ?? ''] : [])]))}`;
}

/** The tables, as text. */
export function statsText(data: Record<string, unknown>, opts: StatsOptions = {}): string {
  const w = data.window as { since: string; until: string };
  const out: string[] = [`Decisions from ${w.since} to ${w.until} (whole minutes and hours: docs/report.md)\n`];
  const outcomesTable = (o: Record<Outcome, number>) => {
    const total = OUTCOMES.reduce((s, k) => s + o[k], 0);
    return `Decisions by outcome\n${textTable(['outcome', 'decisions', 'share'], [...OUTCOMES.map((k) => [k, o[k], percent(o[k], total)]), ['total', total, '']])}`;
  };
  const vectorsTable = (v: Array<{ vector: keyof typeof VECTOR_TITLES; total: number; byAction: Record<string, number>; rules: Array<{ rule: string }> }>) =>
    v.length === 0
      ? 'Refusals by vector: none\n'
      : `Refusals and deferrals by vector\n${textTable(
          ['vector', 'refused', 'deferred', 'rules', 'what'],
          v.map((r) => [r.vector, r.byAction.reject ?? 0, r.byAction.defer ?? 0, r.rules.map((x) => x.rule).join(', '), VECTOR_TITLES[r.vector]]),
        )}`;
  const bansTable = (b: { active: number; byCategory: Array<{ key: string; n: number }>; bySource: Array<{ key: string; n: number }>; newInWindow: number; repeatOffenders: number }) =>
    `Bans in force: ${b.active} (${b.newInWindow} new in the window, ${b.repeatOffenders} repeat offenders)\n` +
    (b.active === 0
      ? ''
      : `${textTable(['category', 'bans'], b.byCategory.map((r) => [r.key, r.n]))}${textTable(['source', 'bans'], b.bySource.map((r) => [r.key, r.n]))}`);
  switch (opts.by) {
    case undefined:
      out.push(outcomesTable(data.outcomes as Record<Outcome, number>));
      out.push(vectorsTable(data.vectors as never));
      out.push(topTable('Top refusing rules', data.topRules as TopRow[], 'rule'));
      out.push(topTable('Top refused clients', data.topClients as TopRow[], 'client'));
      out.push(topTable('Top refused sender domains', data.topDomains as TopRow[], 'domain'));
      if (data.asnTable) out.push(topTable('Top refused countries', data.topCountries as TopRow[], 'country'));
      out.push(bansTable(data.bans as never));
      break;
    case 'action':
      out.push(outcomesTable(data.outcomes as Record<Outcome, number>));
      break;
    case 'hour': {
      const hours = data.hours as Array<Record<string, string | number>>;
      out.push(`Decisions by hour\n${textTable(['hour', ...OUTCOMES], hours.map((h) => [String(h.hour).slice(0, 13).replace('T', ' ') + ':00', ...OUTCOMES.map((o) => h[o])]))}`);
      break;
    }
    case 'category':
      out.push(vectorsTable(data.vectors as never));
      out.push(bansTable(data.bans as never));
      break;
    case 'rule': {
      out.push(topTable('Decisions by rule', data.rules as TopRow[], 'rule'));
      const wh = data.wouldHave as TopRow[];
      if (wh.length > 0) out.push(`Test-mode rules: what they would have done\n${textTable(['rule', 'would have', 'decisions'], wh.flatMap((r) => Object.entries(r.byAction).map(([a, n]) => [r.key, a, n])))}`);
      break;
    }
    case 'zone':
      out.push(topTable('DNS list zones that listed clients', data.zones as TopRow[], 'zone'));
      out.push(topTable('Zones not consulted (out of use or not answering)', data.notConsulted as TopRow[], 'zone'));
      break;
    case 'country':
      if (!(data.country as TopRow[]).length) out.push('No countries: set asn.table (an iptoasn.com file) to see where clients come from.\n');
      else out.push(topTable('Decisions by country', data.country as TopRow[], 'country'));
      break;
    case 'domain':
      out.push(topTable('Decisions by sender domain', data.domain as TopRow[], 'domain'));
      break;
    case 'client':
      out.push(topTable('Decisions by client', data.client as TopRow[], 'client'));
      break;
  }
  return out.join('\n');
}
