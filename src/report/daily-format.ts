// The daily report as text (a mail body or a terminal), HTML (every value
// escaped: senders and rule texts come from clients) or JSON.

import { printable } from '../core/printable.js';
import type { Ban } from '../store/types.js';
import type { DailyReport } from './daily.js';
import type { TopRow } from './queries.js';
import { percent, textTable } from './text-table.js';
import { OUTCOMES, VECTOR_TITLES } from './vectors.js';

export const REPORT_FORMATS = ['text', 'html', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

interface Section {
  title: string;
  /** Empty: the section says "none". */
  head: string[];
  rows: Array<Array<string | number>>;
  note?: string;
}

function topRows(rows: TopRow[]): Array<Array<string | number>> {
  return rows.map((r) => [r.key, r.total, r.byAction.reject ?? 0, r.byAction.defer ?? 0]);
}

const banRow = (b: Ban) => [b.cidr, b.category, b.source, b.offences, iso(b.createdAt), iso(b.expiresAt), b.reason];

export function reportSections(r: DailyReport): Section[] {
  const fp = r.falsePositives;
  return [
    { title: 'Decisions by outcome', head: ['outcome', 'decisions', 'share'], rows: OUTCOMES.map((o) => [o, r.outcomes[o], percent(r.outcomes[o], r.total)]) },
    {
      title: 'Refusals and deferrals by vector',
      head: ['vector', 'refused', 'deferred', 'what'],
      rows: r.vectors.map((v) => [v.vector, v.byAction.reject ?? 0, v.byAction.defer ?? 0, VECTOR_TITLES[v.vector]]),
    },
    {
      title: 'False positive candidates: refused senders our users write to',
      head: ['sender', 'refused', 'messages to it', 'last written to'],
      rows: fp.correspondents.map((c) => [c.sender, c.refused, c.wroteTo, iso(c.lastWrote)]),
      note: 'learned from outbound mail (docs/correspondents.md): consider an allow-list entry',
    },
    {
      title: 'False positive candidates: clients refused, then accepted',
      head: ['client', 'refused', 'first refused', 'accepted at', 'rule'],
      rows: fp.refusedThenAccepted.map((c) => [c.client, c.refused, iso(c.firstRefused), iso(c.acceptedAt), c.rule]),
    },
    {
      title: 'False positive candidates: refused by an SPF/OR rule, SPF passed later',
      head: ['domain', 'client', 'rule', 'refused at', 'SPF passed at'],
      rows: fp.spfPassedLater.map((c) => [c.domain, c.client, c.rule, iso(c.refusedAt), iso(c.passedAt)]),
    },
    { title: 'New bans', head: ['network', 'category', 'source', 'offence', 'since', 'until', 'reason'], rows: r.newBans.map(banRow) },
    { title: 'Repeat offenders (bans in force)', head: ['network', 'category', 'source', 'offence', 'since', 'until', 'reason'], rows: r.repeatOffenders.map(banRow) },
    { title: 'Top refusing rules', head: ['rule', 'total', 'refused', 'deferred'], rows: topRows(r.topRules) },
    { title: 'Top refused clients', head: ['client', 'total', 'refused', 'deferred'], rows: topRows(r.topClients) },
    { title: 'Top refused sender domains', head: ['domain', 'total', 'refused', 'deferred'], rows: topRows(r.topDomains) },
    {
      title: 'Test-mode rules: what they would have done',
      head: ['rule', 'would have', 'decisions'],
      rows: r.wouldHave.flatMap((w) => Object.entries(w.byAction).map(([a, n]) => [w.key, a, n])),
    },
    {
      title: 'DNS list zones not consulted (out of use after the health probe, or not answering)',
      head: ['zone', 'decisions without it'],
      rows: r.zonesNotConsulted.map((z) => [z.key, z.total]),
    },
  ];
}

export function reportSubject(r: DailyReport, host: string): string {
  return `frontline report for ${host}: ${r.outcomes.refused} refused, ${r.outcomes.accepted} accepted, ${r.newBans.length} new bans (${iso(r.window.since)} to ${iso(r.window.until)})`;
}

export function reportText(r: DailyReport, host: string): string {
  const parts = [`frontline on ${host}: decisions from ${iso(r.window.since)} to ${iso(r.window.until)} (${r.total} in all, ${r.bansActive} bans in force)\n`];
  for (const s of reportSections(r)) {
    parts.push(s.rows.length === 0 ? `${s.title}: none\n` : `${s.title}\n${textTable(s.head, s.rows)}${s.note ? `(${s.note})\n` : ''}`);
  }
  return parts.join('\n');
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text for HTML: escaped, and every non-printable character shown as an escape. */
export function html(text: string | number): string {
  return printable(String(text)).replace(/[&<>"']/g, (c) => ESC[c]);
}

export function reportHtml(r: DailyReport, host: string): string {
  const body = reportSections(r)
    .map((s) => {
      if (s.rows.length === 0) return `<h2>${html(s.title)}</h2>\n<p>none</p>`;
      const head = `<tr>${s.head.map((h) => `<th>${html(h)}</th>`).join('')}</tr>`;
      const rows = s.rows.map((row) => `<tr>${row.map((c) => `<td${typeof c === 'number' ? ' class="n"' : ''}>${html(c)}</td>`).join('')}</tr>`).join('\n');
      return `<h2>${html(s.title)}</h2>\n<table>\n${head}\n${rows}\n</table>${s.note ? `\n<p>${html(s.note)}</p>` : ''}`;
    })
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${html(reportSubject(r, host))}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}td.n{text-align:right}</style>
</head><body>
<h1>frontline on ${html(host)}</h1>
<p>Decisions from ${html(iso(r.window.since))} to ${html(iso(r.window.until))}: ${html(r.total)} in all, ${html(r.bansActive)} bans in force.</p>
${body}
</body></html>
`;
}

export function formatReport(r: DailyReport, format: ReportFormat, host: string): string {
  if (format === 'json') return `${JSON.stringify(r)}\n`;
  if (format === 'html') return reportHtml(r, host);
  return reportText(r, host);
}
