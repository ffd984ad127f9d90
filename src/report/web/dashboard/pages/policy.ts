// Policy: the rules in force, in order, each with how many decisions it
// made in the last 24 hours; for rules in `mode: test`, what they would
// have done (counts and the latest examples); and, when replay is
// available, a pasted config tried against the stored decisions.

import type { FastifyRequest } from 'fastify';
import type { PageContext, PageResult, RuleInfo } from '../context.js';
import { field, FormError } from '../form.js';
import { html, isoTime, query, type Html } from '../html.js';
import type { ReplayExample, ReplayOutcome, ReplayReport } from '../../../replay.js';

const DAY = 86400_000;

function condition(c: unknown): string {
  return typeof c === 'string' ? c : JSON.stringify(c);
}

function replayForm(ctx: PageContext, yaml: string): ReturnType<typeof html> {
  if (!ctx.opts.replay) return html``;
  if (!ctx.canChange) return html`<h2>Try a new policy</h2><p class="muted">Log in to try a pasted config against the stored decisions.</p>`;
  return html`<h2>Try a new policy</h2>
<p>Paste a whole config file: its rules re-judge the stored decisions of the last 7 days (with their recorded evidence, no new DNS queries), and the page shows what would change. Nothing is changed.</p>
<form method="post" action="/policy/replay"><input type="hidden" name="_csrf" value="${ctx.csrf}">
<textarea name="config" spellcheck="false" required maxlength="200000">${yaml}</textarea>
<p><button type="submit">Replay</button></p></form>`;
}

export async function policyPage(_req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  return { title: 'Policy', body: await policyBody(ctx, '') };
}

async function policyBody(ctx: PageContext, yaml: string, result?: ReturnType<typeof html>) {
  const w = { since: ctx.now - DAY, until: ctx.now };
  const [hits, would, examples] = await Promise.all([
    ctx.opts.report.top(w, 'rule', { limit: 10_000 }),
    ctx.opts.report.wouldHave(w, 10_000),
    ctx.opts.store.queryEvents({ wouldHave: true, since: w.since, limit: 20 }),
  ]);
  const hitsOf = new Map(hits.map((h) => [h.key, h.total]));
  const wouldOf = new Map(would.map((r) => [r.key, new Map(Object.entries(r.byAction))]));
  const testRules = ctx.opts.rules.filter((r) => r.mode === 'test');
  const row = (r: RuleInfo, i: number) =>
    html`<tr id="rule-${r.name}"><td class="num">${i + 1}</td><td><strong>${r.name}</strong>${r.mode === 'test' ? html` <em>(test mode)</em>` : ''}</td><td>${r.stage ?? 'auto'}</td><td><code>${condition(r.if)}</code></td><td>${
      r.action ?? (r.score !== undefined ? `score ${r.score}` : '')
    }${r.code !== undefined ? ` ${r.code}` : ''}${r.text ? html`<div class="muted"><code>${r.text}</code></div>` : ''}${r.remedy ? html`<div class="muted">remedy: ${r.remedy}</div>` : ''}</td><td class="num">${hitsOf.get(r.name) ?? 0}</td></tr>`;
  return html`<p>${ctx.opts.rules.length} rules, walked in this order; the first that decides wins. Hits: decisions each rule made in the last 24 hours.</p>
<table><thead><tr><th class="num">#</th><th>Rule</th><th>Stage</th><th>If</th><th>Then</th><th class="num">Hits (24 h)</th></tr></thead><tbody>${ctx.opts.rules.map(row)}</tbody></table>
<h2>Rules in test mode: what they would have done (24 h)</h2>
${
  testRules.length === 0 && wouldOf.size === 0
    ? html`<p class="muted">No rule runs in test mode.</p>`
    : html`<table><thead><tr><th>Rule</th><th>Would have</th><th class="num">Decisions</th></tr></thead><tbody>${[...new Set([...testRules.map((r) => r.name), ...wouldOf.keys()])].map((name) => {
        const m = wouldOf.get(name);
        if (!m || m.size === 0) return html`<tr><td>${name}</td><td class="muted">nothing</td><td class="num">0</td></tr>`;
        return [...m.entries()].map(([action, n]) => html`<tr><td>${name}</td><td>${action === 'reject' ? 'refused' : action}</td><td class="num">${n}</td></tr>`);
      })}</tbody></table>`
}
${
  examples.length > 0
    ? html`<h3>Latest examples</h3><table><thead><tr><th>Time</th><th>Client</th><th>Sender</th><th>Decided</th><th>Would have</th></tr></thead><tbody>${examples.map(
        (e) =>
          html`<tr><td>${isoTime(e.ts)}</td><td><a href="/why${query({ q: e.clientIp, kind: 'ip' })}">${e.clientIp}</a></td><td>${e.from === '' ? '<>' : (e.from ?? '')}</td><td>${e.action} by ${e.rule}</td><td>${(e.wouldHave ?? []).map(
            (w) => html`<div>${w.rule}: ${w.action}${w.code !== undefined ? ` ${w.code}` : ''}</div>`,
          )}</td></tr>`,
      )}</tbody></table>`
    : ''
}
${replayForm(ctx, yaml)}
${result ?? ''}`;
}

/** POST /policy/replay: the pasted config's errors (file:line:key), or what would change. Changes nothing. */
export async function policyReplay(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  let yaml: string;
  try {
    yaml = field(req.body, 'config', 200_000);
  } catch (e) {
    if (!(e instanceof FormError)) throw e;
    return { title: 'Policy', status: 400, body: await policyBody(ctx, '', html`<p class="notice error" role="alert">${e.message}</p>`) };
  }
  if (yaml === '' || !ctx.opts.replay) {
    return { title: 'Policy', status: 400, body: await policyBody(ctx, yaml, html`<p class="notice error" role="alert">Paste a config to try.</p>`) };
  }
  const r = await ctx.opts.replay(yaml, ctx.now - 7 * DAY);
  if ('errors' in r) {
    return {
      title: 'Policy',
      status: 400,
      body: await policyBody(ctx, yaml, html`<div class="notice error" role="alert"><p>The config has errors; nothing was replayed:</p><ul>${r.errors.map((e) => html`<li><code>${e}</code></li>`)}</ul></div>`),
    };
  }
  return { title: 'Policy', body: await policyBody(ctx, yaml, replayResult(r.report, r.limit)) };
}

function outcome(o: ReplayOutcome): string {
  return `${o.action}${o.code !== undefined ? ` ${o.code}` : ''} (${o.rule})`;
}

function example(e: ReplayExample): Html {
  return html`<div><a href="/why${query({ q: e.clientIp, kind: 'ip' })}">${e.clientIp}</a> ${e.from === undefined ? '' : e.from === '' ? '<>' : e.from} → ${e.rcpts.join(', ')} <span class="muted">${isoTime(e.ts)}</span></div>`;
}

/** The replay report as the page shows it (every text in it came from clients: escaped like the rest). */
export function replayResult(r: ReplayReport, limit: number): Html {
  return html`<h2 id="replay">What would change</h2>
<p>${r.replayed} decisions replayed${r.limited ? ` (the newest ${limit} of the last 7 days; \`frontline replay\` reads more)` : ' (the last 7 days)'}: <strong>${r.changed}</strong> would change action, ${r.otherRule} would keep their action under another rule or code, ${r.unchanged} unchanged, ${r.notReproducible} cannot be reproduced from the log.</p>
${r.warnings.map((w) => html`<p class="muted">${w}</p>`)}
${r.skippedRules.length > 0 ? html`<p class="notice error">Rules left out of the proposed policy: ${r.skippedRules.map((x) => `${x.rule} (${x.reason})`).join('; ')}</p>` : ''}
${
  r.changes.length > 0
    ? html`<table><thead><tr><th>From</th><th>To</th><th class="num">Decisions</th><th>Examples</th></tr></thead><tbody>${r.changes.map(
        (c) => html`<tr><td>${outcome(c.from)}</td><td>${outcome(c.to)}</td><td class="num">${c.count}</td><td>${c.examples.map(example)}</td></tr>`,
      )}</tbody></table>`
    : html`<p>No decision would change action.</p>`
}
${r.byRule.length > 0 ? html`<h3>By the rule that made the difference</h3><table><tbody>${r.byRule.map((b) => html`<tr><td>${b.rule}</td><td class="num">${b.count}</td></tr>`)}</tbody></table>` : ''}
${
  r.unreproducible.length > 0
    ? html`<h3>Not reproducible from the log</h3><table><tbody>${r.unreproducible.map((u) => html`<tr><td>${u.reason}</td><td class="num">${u.count}</td></tr>`)}</tbody></table>`
    : ''
}`;
}
