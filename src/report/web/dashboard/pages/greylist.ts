// Greylist: the triplets (origin, sender, recipient) still waiting for a
// retry and those that passed; release a waiting one, so its next attempt
// passes at once (kept as long as a passed triplet is).

import type { FastifyRequest } from 'fastify';
import { DEFAULT_GREYLIST } from '../../../../store/greylist.js';
import type { GreyEntry } from '../../../../store/index.js';
import type { PageContext, PageResult } from '../context.js';
import { FormError, required } from '../form.js';
import { html, isoTime, query, relative } from '../html.js';
import { backTo } from './back.js';

const SCAN = 20_000;
const PAGE = 1000;

/** origin|sender|recipient → its parts ("net:192.0.2.0/24" → client network 192.0.2.0/24). */
function parts(key: string): { origin: string; sender: string; rcpt: string } {
  const [origin = '', sender = '', rcpt = ''] = key.split('|');
  const o = origin.startsWith('net:') ? origin.slice(4) : origin.startsWith('spf:') ? `${origin.slice(4)} (SPF pass)` : origin;
  return { origin: o, sender: sender === '' ? '<>' : sender, rcpt };
}

export async function greylistPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  const state = p.state === 'passed' ? 'passed' : 'waiting';
  const text = typeof p.q === 'string' ? p.q.slice(0, 100).trim().toLowerCase() : '';
  const all = await ctx.opts.store.greyList({ limit: SCAN });
  const waiting = all.filter((x) => x.entry.passedAt === undefined);
  const passed = all.filter((x) => x.entry.passedAt !== undefined);
  const shown = (state === 'passed' ? passed : waiting).filter((x) => text === '' || x.key.toLowerCase().includes(text)).sort((a, b) => b.entry.lastSeen - a.entry.lastSeen);
  const delay = (ctx.opts.greyTiming ?? DEFAULT_GREYLIST).delaySeconds * 1000;
  const back = `/greylist${query({ state, q: text })}`;
  const row = ({ key, entry }: { key: string; entry: GreyEntry }) => {
    const k = parts(key);
    const when =
      entry.passedAt !== undefined
        ? html`<td>${isoTime(entry.passedAt)}</td><td class="num">${entry.passes}</td>`
        : html`<td>${entry.firstSeen + delay > ctx.now ? `retry ${relative(entry.firstSeen + delay, ctx.now)}` : 'may retry now'}</td><td class="num">${entry.attempts}</td>`;
    const release =
      ctx.canChange && entry.passedAt === undefined
        ? html`<form method="post" action="/greylist/release" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="key" value="${key}"><input type="hidden" name="back" value="${back}"><button type="submit">Release</button></form>`
        : '';
    return html`<tr><td>${k.origin}</td><td>${entry.clientIp}</td><td>${k.sender}</td><td>${k.rcpt}</td><td>${isoTime(entry.firstSeen)}</td>${when}<td>${release}</td></tr>`;
  };
  return {
    title: 'Greylist',
    body: html`<p class="tabs"><a href="/greylist?state=waiting"${state === 'waiting' ? html` aria-current="page"` : ''}>Waiting (${waiting.length})</a> <a href="/greylist?state=passed"${state === 'passed' ? html` aria-current="page"` : ''}>Passed (${passed.length})</a></p>
<form method="get" action="/greylist" class="row"><input type="hidden" name="state" value="${state}"><label>Containing <input type="search" name="q" value="${text}" maxlength="100"></label><button type="submit">Filter</button></form>
${all.length >= SCAN ? html`<p class="muted">Showing the first ${SCAN} triplets of the store only.</p>` : ''}
<table><thead><tr><th>Origin</th><th>Last client</th><th>Sender</th><th>Recipient</th><th>First seen</th><th>${state === 'passed' ? 'Passed' : 'Retry'}</th><th class="num">${state === 'passed' ? 'Deliveries' : 'Attempts'}</th><th></th></tr></thead>
<tbody>${shown.slice(0, PAGE).map(row)}</tbody></table>
${shown.length === 0 ? html`<p class="muted">No ${state} triplets.</p>` : ''}`,
  };
}

export async function greyRelease(req: FastifyRequest, ctx: PageContext): Promise<{ redirect: string; message: string }> {
  const key = required(req.body, 'key', 'Triplet', 1500);
  const store = ctx.opts.store;
  const entry = await store.greyGet(key);
  if (!entry) throw new FormError('that triplet is no longer in the greylist (it expired or passed)');
  if (entry.passedAt !== undefined) throw new FormError('that triplet has already passed');
  const timing = ctx.opts.greyTiming ?? DEFAULT_GREYLIST;
  await store.greyPut(key, { ...entry, passedAt: ctx.now, expiresAt: ctx.now + timing.passedTtlSeconds * 1000 });
  const k = parts(key);
  return { redirect: backTo(req.body, '/greylist'), message: `released ${k.sender} → ${k.rcpt} from ${k.origin}: its next attempt passes` };
}
