// Policy: the rules in force, in order, each with how many decisions it
// made in the last 24 hours; for rules in `mode: test`, what they would
// have done (counts and the latest examples); and, when replay is
// available, a pasted config tried against the stored decisions.

import type { FastifyRequest } from 'fastify';
import type { PageContext, PageResult, RuleInfo } from '../context.js';
import { field, FormError } from '../form.js';
import { html, isoTime, query } from '../html.js';

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
  const since = ctx.now - DAY;
  const [hits, would, examples] = await Promise.all([
    ctx.opts.countEvents({ dim: 'rule', since, until: ctx.now, limit: 10_000 }),
    ctx.opts.countEvents({ dim: 'would-have', since, until: ctx.now, limit: 10_000 }),
    ctx.opts.store.queryEvents({ wouldHave: true, since, limit: 20 }),
  ]);
  const hitsOf = new Map<string, number>();
  for (const h of hits) hitsOf.set(h.key, (hitsOf.get(h.key) ?? 0) + h.n);
  const wouldOf = new Map<string, Map<string, number>>();
  for (const w of would) {
    const m = wouldOf.get(w.key) ?? new Map<string, number>();
    m.set(w.action, (m.get(w.action) ?? 0) + w.n);
    wouldOf.set(w.key, m);
  }
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
  if (r.errors && r.errors.length > 0) {
    return {
      title: 'Policy',
      status: 400,
      body: await policyBody(ctx, yaml, html`<div class="notice error" role="alert"><p>The config has errors; nothing was replayed:</p><ul>${r.errors.map((e) => html`<li><code>${e}</code></li>`)}</ul></div>`),
    };
  }
  return { title: 'Policy', body: await policyBody(ctx, yaml, html`<h2>What would change</h2><pre>${r.text ?? ''}</pre>`) };
}
