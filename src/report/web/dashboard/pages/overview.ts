// Overview: decisions per minute over the last hour, day or week by outcome
// (accepted, refused, deferred, greylisted), refusals by vector, the top
// refusing rules, refused clients, sender domains and countries (with an
// ASN table), DNS list zones (listings and probe state), bans by category
// and source, and the store's state — all from the one query layer
// (src/report/queries.ts) that `frontline stats` and the daily report use.
// Every number is in the HTML; the chart script only draws the same numbers.

import type { FastifyRequest } from 'fastify';
import { OUTCOMES } from '../../../vectors.js';
import { VECTOR_TITLES } from '../../../vectors.js';
import type { Timeline, TopRow } from '../../../queries.js';
import type { PageContext, PageResult } from '../context.js';
import { html, isoTime, query, relative, type Html } from '../html.js';

export const RANGES = {
  hour: { label: 'last hour', ms: 3600_000, bucketMin: 1 },
  day: { label: 'last 24 hours', ms: 86400_000, bucketMin: 10 },
  week: { label: 'last 7 days', ms: 7 * 86400_000, bucketMin: 60 },
} as const;
export type Range = keyof typeof RANGES;

/** The timeline as the chart draws it: bucket starts (unix seconds) and decisions per minute (the bucket's average). */
export function perMinute(t: Timeline): { xs: number[]; series: Record<string, number[]> } {
  const minutes = t.stepMs / 60_000;
  const xs = Array.from({ length: t.buckets }, (_, i) => (t.from + i * t.stepMs) / 1000);
  const series: Record<string, number[]> = {};
  for (const o of OUTCOMES) series[o] = t.series[o].map((v) => Math.round((v / minutes) * 100) / 100);
  return { xs, series };
}

function topTable(title: string, what: string, rows: ReadonlyArray<{ key: string; n: number; label?: string }>, link: (k: string) => string | undefined): Html {
  return html`<section><h2>${title}</h2>${
    rows.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<table><thead><tr><th>${what}</th><th class="num">Count</th></tr></thead><tbody>${rows.map((r) => {
          const href = link(r.key);
          return html`<tr><td>${href ? html`<a href="${href}">${r.key}</a>` : r.key}${r.label ? html` <span class="muted">${r.label}</span>` : ''}</td><td class="num">${r.n}</td></tr>`;
        })}</tbody></table>`
  }</section>`;
}

/** intel.self_check: our own outgoing addresses on the DNSBLs (absent when off). */
function selfCheckSection(ctx: PageContext): Html | string {
  if (!ctx.opts.selfCheck) return '';
  const r = ctx.opts.selfCheck();
  if (!r) return html`<section><h2>Our addresses on DNSBLs</h2><p class="muted">Not checked yet.</p></section>`;
  return html`<section><h2>Our addresses on DNSBLs</h2><p>${r.listed > 0 ? html`<strong class="action-reject">${r.listed} listing${r.listed === 1 ? '' : 's'}</strong>` : 'Not listed'} <span class="muted">(checked ${relative(r.checkedAt, ctx.now)} against ${r.zones.join(', ')})</span></p>
<table><thead><tr><th>Address</th><th>Listed by</th><th>No answer</th></tr></thead><tbody>${r.addresses.map(
    (a) =>
      html`<tr><td>${a.address}</td><td>${a.listedBy.length === 0 ? 'none' : a.listedBy.map((l) => `${l.zone} (${l.codes.join(', ')})`).join(', ')}</td><td>${a.unanswered.map((u) => `${u.zone}: ${u.reason}`).join(', ')}</td></tr>`,
  )}</tbody></table></section>`;
}

const rowsOf = (t: readonly TopRow[]) => t.map((r) => ({ key: r.key, n: r.total, label: r.label }));

export async function overviewPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  const range: Range = p.range === 'day' || p.range === 'week' ? p.range : 'hour';
  const r = RANGES[range];
  const report = ctx.opts.report;
  const w = { since: ctx.now - r.ms, until: ctx.now };
  const [o, zones] = await Promise.all([report.overview(w, { stepMs: r.bucketMin * 60_000 }), report.top(w, 'zone', { limit: 20 })]);
  const chart = perMinute(o.timeline);
  const tabs = (Object.keys(RANGES) as Range[]).map((k) => html`<a href="/${query({ range: k === 'hour' ? undefined : k })}"${k === range ? html` aria-current="page"` : ''}>${RANGES[k].label}</a>`);

  const zoneStates = ctx.opts.zones?.() ?? [];
  const zoneHits = new Map(zones.map((z) => [z.key, z.total]));
  const zoneNames = [...new Set([...zoneStates.map((z) => z.state.zone), ...zoneHits.keys()])].sort();

  const chartLabel = r.bucketMin === 1 ? 'decisions per minute' : `decisions per minute (average over ${r.bucketMin} minutes)`;
  const outcomeClass = (k: string) => (k === 'refused' ? 'reject' : k === 'deferred' ? 'defer' : k === 'greylisted' ? 'greylist' : 'accept');
  const body = html`<p class="tabs">${tabs}</p>
<section>
<h2>Decisions: ${o.total} in the ${r.label}</h2>
<table><thead><tr>${OUTCOMES.map((k) => html`<th class="num">${k}</th>`)}</tr></thead><tbody><tr>${OUTCOMES.map((k) => html`<td class="num action-${outcomeClass(k)}">${o.outcomes[k]}</td>`)}</tr></tbody></table>
<div class="chart" data-x="${JSON.stringify(chart.xs)}" data-series="${JSON.stringify(chart.series)}" data-unit="${chartLabel}" aria-label="${chartLabel} by outcome"></div>
<details><summary>${chartLabel}, as a table</summary>
<table><thead><tr><th>From (UTC)</th>${OUTCOMES.map((k) => html`<th class="num">${k}</th>`)}</tr></thead><tbody>
${chart.xs
  .map((x, i) => ({ x, i }))
  .filter(({ i }) => OUTCOMES.some((k) => chart.series[k][i] > 0))
  .map(({ x, i }) => html`<tr><td>${isoTime(x * 1000)}</td>${OUTCOMES.map((k) => html`<td class="num">${chart.series[k][i]}</td>`)}</tr>`)}
</tbody></table></details>
</section>
<div class="grid">
${topTable('Refusals by vector', 'Vector', o.vectors.map((v) => ({ key: VECTOR_TITLES[v.vector], n: v.total, label: v.rules.slice(0, 3).map((x) => x.rule).join(', ') })), () => undefined)}
${topTable('Top refusing rules', 'Rule', rowsOf(o.topRules), (k) => `/policy#rule-${k}`)}
${topTable('Top refused clients', 'Client', rowsOf(o.topClients), (k) => `/why${query({ q: k, kind: 'ip' })}`)}
${topTable('Top refused sender domains', 'Sender domain', rowsOf(o.topDomains), (k) => (k === '<>' ? `/why${query({ q: '<>', kind: 'from' })}` : `/why${query({ q: k, kind: 'domain' })}`))}
${o.topCountries.length > 0 ? topTable('Top refused countries', 'Country', rowsOf(o.topCountries), () => undefined) : ''}
<section><h2>DNS lists</h2>${
    zoneNames.length === 0
      ? html`<p class="muted">No DNSBL or DNSWL zones configured.</p>`
      : html`<table><thead><tr><th>Zone</th><th>State</th><th class="num">Listings</th></tr></thead><tbody>${zoneNames.map((z) => {
          const s = zoneStates.find((x) => x.state.zone === z)?.state;
          const state = !s ? 'not probed yet' : s.usable ? (s.usableV6 ? 'in use' : `in use for IPv4 only: ${s.reasonV6 ?? ''}`) : `out of use: ${s.reason ?? ''}`;
          return html`<tr><td>${z}</td><td>${state}${s ? html` <span class="muted">(probed ${relative(s.checkedAt, ctx.now)})</span>` : ''}</td><td class="num">${zoneHits.get(z) ?? 0}</td></tr>`;
        })}</tbody></table>`
  }</section>
${selfCheckSection(ctx)}
${topTable(`Bans in force by category (${o.bans.active}${o.bans.truncated ? '+' : ''})`, 'Category', o.bans.byCategory, (k) => `/bans${query({ category: k })}`)}
${topTable('Bans in force by source', 'Source', o.bans.bySource, () => undefined)}
<section><h2>Store</h2><p>${o.store.ok ? 'healthy' : 'NOT healthy'}: ${o.store.backend}, ${o.store.detail}${o.store.latencyMs !== undefined ? ` (${o.store.latencyMs.toFixed(1)} ms)` : ''}</p>
<p>${o.bans.newInWindow} new bans in the ${r.label}; ${o.bans.repeatOffenders} repeat offenders in force.</p></section>
</div>`;
  return { title: 'Overview', body, scripts: ['/assets/uplot.js', '/assets/charts.js'] };
}
