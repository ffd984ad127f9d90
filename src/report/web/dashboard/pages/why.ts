// Why? — every decision about a client, network, sender, domain or
// recipient: when, at which stage, which rule, the reply, each piece of
// evidence, and the rule's remedy; with one click to allow-list, ban or
// lift a ban (recorded with who did it).

import type { FastifyRequest } from 'fastify';
import { parseNetwork } from '../../../../core/cidr.js';
import { InvalidEntryError } from '../../../../store/errors.js';
import type { Ban, DecisionEvent, EventQuery } from '../../../../store/index.js';
import type { PageContext, PageResult, RuleInfo } from '../context.js';
import { html, isoTime, query, relative, type Html } from '../html.js';
import { actionWords, checkQuestion, remedyOf, resultWords } from './explain.js';

export const WHY_KINDS = ['auto', 'ip', 'cidr', 'from', 'rcpt', 'domain'] as const;
export type WhyKind = (typeof WHY_KINDS)[number];

const KIND_LABELS: Record<WhyKind, string> = {
  auto: 'guess from the text',
  ip: 'client IP',
  cidr: 'client network (CIDR)',
  from: 'sender address',
  rcpt: 'recipient address',
  domain: 'sender or recipient domain',
};

const SINCE: ReadonlyArray<[string, string, number]> = [
  ['1h', 'last hour', 3600],
  ['24h', 'last 24 hours', 86400],
  ['7d', 'last 7 days', 7 * 86400],
  ['30d', 'last 30 days', 30 * 86400],
  ['all', 'everything kept', 0],
];

export interface WhySearch {
  text: string;
  kind: WhyKind;
  since: string;
}

/** The store query for a search, or why the text does not fit the kind. */
export function whyQuery(s: WhySearch, now: number, limit = 100): { q: EventQuery; kind: WhyKind } | { error: string } {
  const t = s.text.trim();
  let kind = s.kind;
  const net = parseNetwork(t);
  if (kind === 'auto') kind = net ? (t.includes('/') ? 'cidr' : 'ip') : t.includes('@') ? 'from' : 'domain';
  const q: EventQuery = { limit };
  const since = SINCE.find((x) => x[0] === s.since);
  if (since && since[2] > 0) q.since = now - since[2] * 1000;
  switch (kind) {
    case 'ip':
      if (!net || t.includes('/')) return { error: `${JSON.stringify(t)} is not an IP address` };
      q.ip = t;
      break;
    case 'cidr':
      if (!net) return { error: `${JSON.stringify(t)} is not an IP network (write it like 192.0.2.0/24 or 2001:db8::/32)` };
      q.cidr = t;
      break;
    case 'from':
      if (t !== '' && t !== '<>' && !/^[^@\s]+@[^@\s]+$/.test(t)) return { error: `${JSON.stringify(t)} is not an e-mail address (write <> for the null sender)` };
      q.from = t === '<>' ? '' : t;
      break;
    case 'rcpt':
      if (!/^[^@\s]+@[^@\s]+$/.test(t)) return { error: `${JSON.stringify(t)} is not an e-mail address` };
      q.rcpt = t;
      break;
    case 'domain':
      if (!/^[^@\s/]+\.[^@\s/]+$/.test(t)) return { error: `${JSON.stringify(t)} is not a domain name` };
      q.domain = t.toLowerCase().replace(/\.$/, '');
      break;
  }
  return { q, kind };
}

function searchOf(req: FastifyRequest): WhySearch {
  const p = (req.query ?? {}) as Record<string, unknown>;
  const str = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : '');
  const kind = str(p.kind, 10) as WhyKind;
  return { text: str(p.q, 300), kind: WHY_KINDS.includes(kind) ? kind : 'auto', since: str(p.since, 5) || '7d' };
}

export async function whyPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const s = searchOf(req);
  const form = html`<form method="get" action="/why" class="row" role="search">
<label>Search <input type="search" name="q" value="${s.text}" size="40" placeholder="192.0.2.7, 192.0.2.0/24, bob@example.com, example.com" required></label>
<label>as <select name="kind">${WHY_KINDS.map((k) => html`<option value="${k}"${k === s.kind ? html` selected` : ''}>${KIND_LABELS[k]}</option>`)}</select></label>
<label>when <select name="since">${SINCE.map(([v, l]) => html`<option value="${v}"${v === s.since ? html` selected` : ''}>${l}</option>`)}</select></label>
<button type="submit">Search</button>
</form>`;
  if (s.text.trim() === '') {
    return { title: 'Why?', body: html`${form}<p class="muted">Search the decision log by client IP or network, sender, recipient or domain: each decision with its reasons, and what the sender can do.</p>` };
  }
  const r = whyQuery(s, ctx.now);
  if ('error' in r) {
    return { title: 'Why?', status: 400, body: html`${form}<p class="notice error" role="alert">${r.error}</p>` };
  }
  let events: DecisionEvent[];
  try {
    events = await ctx.opts.store.queryEvents(r.q);
  } catch (e) {
    if (e instanceof InvalidEntryError) return { title: 'Why?', status: 400, body: html`${form}<p class="notice error" role="alert">${e.message}</p>` };
    throw e;
  }
  const rules = new Map(ctx.opts.rules.map((x) => [x.name, x]));
  const banBox = r.kind === 'ip' || r.kind === 'cidr' ? await banState(ctx, s.text.trim(), r.kind, req.url) : '';
  const summary = html`<p>${events.length === 0 ? 'No decisions match.' : `${events.length}${events.length >= 100 ? ' (the newest 100)' : ''} decision${events.length === 1 ? '' : 's'}, newest first.`}</p>`;
  return { title: `Why? ${s.text.trim()}`, body: html`${form}${banBox}${summary}${events.map((e) => decision(e, rules.get(e.rule), ctx, req.url))}` };
}

/** The searched client's ban, with Lift or Ban buttons. */
async function banState(ctx: PageContext, text: string, kind: WhyKind, back: string): Promise<Html> {
  const store = ctx.opts.store;
  let ban: Ban | undefined;
  try {
    ban = kind === 'ip' ? await store.getBan(text) : await store.showBan(text);
  } catch (e) {
    if (e instanceof InvalidEntryError) return html``;
    throw e;
  }
  if (ban) {
    return html`<section class="decision"><h3>Banned: ${ban.cidr}</h3><p>${ban.category}: ${ban.reason} — by ${ban.source}, until ${isoTime(ban.expiresAt)} (${relative(ban.expiresAt, ctx.now)}), offence ${ban.offences}</p>${
      ctx.canChange ? liftForm(ctx, ban.cidr, back) : ''
    }</section>`;
  }
  return html`<section class="decision"><h3>${text} is not banned</h3>${ctx.canChange ? banForm(ctx, text, back) : ''}</section>`;
}

export function liftForm(ctx: PageContext, cidr: string, back: string): Html {
  return html`<form method="post" action="/bans/lift" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="cidr" value="${cidr}"><input type="hidden" name="back" value="${back}"><button type="submit">Lift ban on ${cidr}</button></form>`;
}

function banForm(ctx: PageContext, cidr: string, back: string): Html {
  return html`<form method="post" action="/bans/add" class="row"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="cidr" value="${cidr}"><input type="hidden" name="back" value="${back}">
<label>Reason <input type="text" name="reason" value="banned from the dashboard" size="30" maxlength="200"></label>
<label>For <input type="text" name="duration" value="7d" size="5" maxlength="8"></label>
<button type="submit" class="danger">Ban ${cidr}</button></form>`;
}

function allowForm(ctx: PageContext, list: string, entry: string, label: string, back: string): Html {
  return html`<form method="post" action="/lists/${list}/add" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="entry" value="${entry}"><input type="hidden" name="reason" value="allowed from Why?"><input type="hidden" name="back" value="${back}"><button type="submit">${label}</button></form>`;
}

/** Is `list` consulted by a rule in force (so adding to it changes something)? */
function listInUse(rules: readonly RuleInfo[], list: string): boolean {
  return rules.some((r) => JSON.stringify(r.if ?? '').includes(`list:${list}`));
}

function decision(e: DecisionEvent, rule: RuleInfo | undefined, ctx: PageContext, back: string): Html {
  const refused = e.action === 'reject' || e.action === 'defer' || e.action === 'tarpit';
  const remedy = refused ? remedyOf(rule, e) : undefined;
  const allow = ctx.opts.allowLists ?? { ip: 'allow', sender: 'allow-senders' };
  const senderListUsed = listInUse(ctx.opts.rules, allow.sender);
  const actions: Html[] = [];
  if (ctx.canChange && refused) {
    actions.push(allowForm(ctx, allow.ip, e.clientIp, `Allow ${e.clientIp}`, back));
    if (e.from && senderListUsed) actions.push(allowForm(ctx, allow.sender, e.from, `Allow sender ${e.from}`, back));
  }
  const searchIp = `/why${query({ q: e.clientIp, kind: 'ip' })}`;
  return html`<article class="decision">
<h3><span class="action-${e.rule === 'greylist' && e.action === 'defer' ? 'greylist' : e.action}">${actionWords(e)}</span> at ${e.stage} by rule <a href="/policy#rule-${e.rule}">${e.rule}</a></h3>
<dl>
<dt>Time</dt><dd>${isoTime(e.ts)} (${relative(e.ts, ctx.now)})</dd>
<dt>Client</dt><dd><a href="${searchIp}">${e.clientIp}</a>${e.helo !== undefined ? html` — HELO <code>${e.helo}</code>` : ''}</dd>
<dt>Sender</dt><dd>${e.from === undefined ? html`<span class="muted">(not yet given)</span>` : e.from === '' ? '<> (a bounce)' : e.from}</dd>
<dt>Recipients</dt><dd>${e.rcpts.length === 0 ? html`<span class="muted">(none yet)</span>` : e.rcpts.join(', ')}</dd>
${e.text !== undefined ? html`<dt>Reply</dt><dd><code>${e.code !== undefined ? `${e.code} ` : ''}${e.text}</code></dd>` : ''}
${e.score !== undefined ? html`<dt>Score</dt><dd>${e.score}</dd>` : ''}
${(e.wouldHave ?? []).length > 0 ? html`<dt>Test-mode rules</dt><dd>${(e.wouldHave ?? []).map((w) => html`<div>${w.rule} would have ${w.action}${w.code !== undefined ? ` ${w.code}` : ''}${w.text ? html`: <code>${w.text}</code>` : ''}</div>`)}</dd>` : ''}
</dl>
${
  e.evidence.length > 0
    ? html`<table><thead><tr><th>Question</th><th>Answer</th><th>Details</th></tr></thead><tbody>${e.evidence.map(
        (ev) => html`<tr><td>${checkQuestion(ev.check)} <span class="muted">(${ev.check})</span></td><td>${resultWords(ev.result)}</td><td>${ev.detail ?? ''}</td></tr>`,
      )}</tbody></table>`
    : ''
}
${remedy ? html`<p class="remedy"><strong>What the sender can do:</strong> ${remedy}</p>` : ''}
${actions.length > 0 ? html`<p>${actions}</p>` : ''}
</article>`;
}
