// Overview: decisions per minute over the last hour, day or week by outcome
// (accepted, refused, deferred, greylisted), the top refusing rules,
// refused clients and sender domains, DNS list zones (listings and
// health), bans by category and source, and the store's state. Every number
// is in the HTML; the chart script only draws the same numbers.

import type { FastifyRequest } from 'fastify';
import type { CountRow, PageContext, PageResult } from '../context.js';
import { html, isoTime, query, relative, type Html } from '../html.js';

const MINUTE = 60_000;

export const RANGES = {
  hour: { label: 'last hour', ms: 3600_000, bucketMin: 1 },
  day: { label: 'last 24 hours', ms: 86400_000, bucketMin: 10 },
  week: { label: 'last 7 days', ms: 7 * 86400_000, bucketMin: 60 },
} as const;
export type Range = keyof typeof RANGES;

/** The outcome a counter row counts as on the Overview. */
export function outcomeOf(action: string, key: string): string {
  if (action === 'defer' && key === 'greylist') return 'greylisted';
  switch (action) {
    case 'accept':
    case 'continue':
    case 'tag':
      return 'accepted';
    case 'reject':
      return 'refused';
    case 'defer':
      return 'deferred';
    default:
      return action;
  }
}

export const OUTCOMES = ['accepted', 'refused', 'deferred', 'greylisted'] as const;

export interface Timeline {
  /** Start of each bucket, unix seconds. */
  xs: number[];
  /** Decisions per minute (average over the bucket), by outcome. */
  series: Record<string, number[]>;
  totals: Record<string, number>;
}

export function timeline(rows: readonly CountRow[], since: number, until: number, bucketMin: number): Timeline {
  const width = bucketMin * MINUTE;
  const first = Math.floor(since / width) * width;
  const n = Math.max(1, Math.ceil((until - first) / width));
  const xs = Array.from({ length: n }, (_, i) => (first + i * width) / 1000);
  const series: Record<string, number[]> = {};
  const totals: Record<string, number> = {};
  for (const o of OUTCOMES) {
    series[o] = new Array<number>(n).fill(0);
    totals[o] = 0;
  }
  for (const r of rows) {
    if (r.bucket === undefined || r.bucket < first) continue;
    const i = Math.floor((r.bucket - first) / width);
    if (i >= n) continue;
    const o = outcomeOf(r.action, r.key);
    series[o] ??= new Array<number>(n).fill(0);
    series[o][i] += r.n;
    totals[o] = (totals[o] ?? 0) + r.n;
  }
  for (const o of Object.keys(series)) series[o] = series[o].map((v) => Math.round((v / bucketMin) * 100) / 100);
  return { xs, series, totals };
}

/** Rows by key summed over actions, highest first. */
export function topOf(rows: readonly CountRow[], limit = 10): Array<{ key: string; n: number }> {
  const by = new Map<string, number>();
  for (const r of rows) by.set(r.key, (by.get(r.key) ?? 0) + r.n);
  return [...by.entries()]
    .map(([key, n]) => ({ key, n }))
    .sort((a, b) => b.n - a.n || a.key.localeCompare(b.key))
    .slice(0, limit);
}

function topTable(title: string, what: string, rows: Array<{ key: string; n: number }>, link: (k: string) => string | undefined): Html {
  return html`<section><h2>${title}</h2>${
    rows.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<table><thead><tr><th>${what}</th><th class="num">Decisions</th></tr></thead><tbody>${rows.map((r) => {
          const href = link(r.key);
          return html`<tr><td>${href ? html`<a href="${href}">${r.key}</a>` : r.key}</td><td class="num">${r.n}</td></tr>`;
        })}</tbody></table>`
  }</section>`;
}

export async function overviewPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  const range: Range = p.range === 'day' || p.range === 'week' ? p.range : 'hour';
  const r = RANGES[range];
  const until = ctx.now;
  const since = until - r.ms;
  const count = ctx.opts.countEvents;
  const refusing = ['reject', 'defer'];
  const [minutes, rules, clients, domains, zones, bans, health] = await Promise.all([
    count({ dim: 'minute', since, until }),
    count({ dim: 'rule', since, until, actions: refusing, limit: 10 }),
    count({ dim: 'client', since, until, actions: ['reject'], limit: 10 }),
    count({ dim: 'domain', since, until, actions: ['reject'], limit: 10 }),
    count({ dim: 'zone', since, until, limit: 20 }),
    ctx.opts.store.listBans({ limit: 100_000 }),
    ctx.opts.store.health(),
  ]);
  const t = timeline(minutes, since, until, r.bucketMin);
  const total = Object.values(t.totals).reduce((a, b) => a + b, 0);
  const tabs = (Object.keys(RANGES) as Range[]).map((k) => html`<a href="/${query({ range: k === 'hour' ? undefined : k })}"${k === range ? html` aria-current="page"` : ''}>${RANGES[k].label}</a>`);

  const byCategory = new Map<string, number>();
  const bySource = new Map<string, number>();
  for (const b of bans) {
    byCategory.set(b.category, (byCategory.get(b.category) ?? 0) + 1);
    const source = b.source.replace(/:.*$/, '');
    bySource.set(source, (bySource.get(source) ?? 0) + 1);
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].map(([key, n]) => ({ key, n })).sort((a, b) => b.n - a.n);

  const zoneStates = ctx.opts.zones?.() ?? [];
  const zoneHits = new Map(topOf(zones, 100).map((z) => [z.key, z.n]));
  const zoneNames = [...new Set([...zoneStates.map((z) => z.state.zone), ...zoneHits.keys()])].sort();

  const chartLabel = r.bucketMin === 1 ? 'decisions per minute' : `decisions per minute (average over ${r.bucketMin} minutes)`;
  const body = html`<p class="tabs">${tabs}</p>
<section>
<h2>Decisions: ${total} in the ${r.label}</h2>
<table><thead><tr>${OUTCOMES.map((o) => html`<th class="num">${o}</th>`)}</tr></thead><tbody><tr>${OUTCOMES.map((o) => html`<td class="num action-${o === 'refused' ? 'reject' : o === 'deferred' ? 'defer' : o === 'greylisted' ? 'greylist' : 'accept'}">${t.totals[o] ?? 0}</td>`)}</tr></tbody></table>
<div class="chart" data-x="${JSON.stringify(t.xs)}" data-series="${JSON.stringify(t.series)}" data-unit="${chartLabel}" aria-label="${chartLabel} by outcome"></div>
<details><summary>${chartLabel}, as a table</summary>
<table><thead><tr><th>From (UTC)</th>${OUTCOMES.map((o) => html`<th class="num">${o}</th>`)}</tr></thead><tbody>
${t.xs
  .map((x, i) => ({ x, i }))
  .filter(({ i }) => OUTCOMES.some((o) => t.series[o][i] > 0))
  .map(({ x, i }) => html`<tr><td>${isoTime(x * 1000)}</td>${OUTCOMES.map((o) => html`<td class="num">${t.series[o][i]}</td>`)}</tr>`)}
</tbody></table></details>
</section>
<div class="grid">
${topTable('Top refusing rules', 'Rule', topOf(rules), (k) => `/policy#rule-${k}`)}
${topTable('Top refused clients', 'Client', topOf(clients), (k) => `/why${query({ q: k, kind: 'ip' })}`)}
${topTable('Top refused sender domains', 'Sender domain', topOf(domains), (k) => (k === '<>' ? `/why${query({ q: '<>', kind: 'from' })}` : `/why${query({ q: k, kind: 'domain' })}`))}
<section><h2>DNS lists</h2>${
    zoneNames.length === 0
      ? html`<p class="muted">No DNSBL or DNSWL zones configured.</p>`
      : html`<table><thead><tr><th>Zone</th><th>State</th><th class="num">Listings</th></tr></thead><tbody>${zoneNames.map((z) => {
          const s = zoneStates.find((x) => x.state.zone === z)?.state;
          const state = !s ? 'not probed yet' : s.usable ? (s.usableV6 ? 'in use' : `in use for IPv4 only: ${s.reasonV6 ?? ''}`) : `out of use: ${s.reason ?? ''}`;
          return html`<tr><td>${z}</td><td>${state}${s ? html` <span class="muted">(probed ${relative(s.checkedAt, ctx.now)})</span>` : ''}</td><td class="num">${zoneHits.get(z) ?? 0}</td></tr>`;
        })}</tbody></table>`
  }</section>
${topTable(`Bans in force by category (${bans.length})`, 'Category', sorted(byCategory), (k) => `/bans${query({ category: k })}`)}
${topTable('Bans in force by source', 'Source', sorted(bySource), () => undefined)}
<section><h2>Store</h2><p>${health.ok ? 'healthy' : 'NOT healthy'}: ${health.backend}, ${health.detail}${health.latencyMs !== undefined ? ` (${health.latencyMs.toFixed(1)} ms)` : ''}</p></section>
</div>`;
  return { title: 'Overview', body, scripts: ['/assets/uplot.js', '/assets/charts.js'] };
}
