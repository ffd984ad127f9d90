// Bans: browse and filter the bans in force, ban an address or network for
// a while with a reason, lift a ban. Every change records who made it (the
// ban's source is web:<user>; the log line names the user and client).

import type { FastifyRequest } from 'fastify';
import type { Ban } from '../../../../store/index.js';
import { canonicalCidr } from '../../../../store/ip.js';
import type { PageContext, PageResult } from '../context.js';
import { duration, field, FormError, required, storeInput } from '../form.js';
import { html, isoTime, query, relative } from '../html.js';
import { liftForm } from './why.js';
import { backTo } from './back.js';

const PAGE = 500;

export async function bansPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  const category = typeof p.category === 'string' ? p.category.slice(0, 50) : '';
  const text = typeof p.q === 'string' ? p.q.slice(0, 100).trim().toLowerCase() : '';
  const all = await ctx.opts.store.listBans({ limit: 100_000 });
  const categories = [...new Set(all.map((b) => b.category))].sort();
  const shown = all.filter((b) => (category === '' || b.category === category) && (text === '' || `${b.cidr} ${b.reason} ${b.source}`.toLowerCase().includes(text)));
  const body = req.body as Record<string, unknown> | undefined;
  const form = ctx.canChange
    ? html`<h2>Ban an address or network</h2>
<form method="post" action="/bans/add" class="row"><input type="hidden" name="_csrf" value="${ctx.csrf}">
<label>IP or CIDR <input type="text" name="cidr" required maxlength="60" value="${typeof body?.cidr === 'string' ? body.cidr : ''}" placeholder="192.0.2.7 or 192.0.2.0/24"></label>
<label>Reason <input type="text" name="reason" required maxlength="200" size="30" value="${typeof body?.reason === 'string' ? body.reason : ''}"></label>
<label>For <input type="text" name="duration" maxlength="8" size="6" value="${typeof body?.duration === 'string' ? body.duration : '7d'}" placeholder="7d"></label>
<button type="submit" class="danger">Ban</button></form>`
    : html`<p class="muted">Log in to ban or lift bans.</p>`;
  const filter = html`<form method="get" action="/bans" class="row">
<label>Category <select name="category"><option value="">all</option>${categories.map((c) => html`<option value="${c}"${c === category ? html` selected` : ''}>${c}</option>`)}</select></label>
<label>Containing <input type="search" name="q" value="${text}" maxlength="100"></label>
<button type="submit">Filter</button></form>`;
  const back = `/bans${query({ category, q: text })}`;
  const rows = shown.slice(0, PAGE).map(
    (b: Ban) => html`<tr><td><a href="/why${query({ q: b.cidr.endsWith('/32') || b.cidr.endsWith('/128') ? b.cidr.replace(/\/\d+$/, '') : b.cidr })}">${b.cidr}</a></td><td>${b.category}</td><td>${b.reason}</td><td>${b.source}</td><td class="num">${b.offences}</td><td>${isoTime(b.createdAt)}</td><td title="${isoTime(b.expiresAt)}">${relative(b.expiresAt, ctx.now)}</td><td>${ctx.canChange ? liftForm(ctx, b.cidr, back) : ''}</td></tr>`,
  );
  return {
    title: 'Bans',
    body: html`${form}<h2>In force</h2>${filter}
<p>${shown.length} ban${shown.length === 1 ? '' : 's'}${shown.length > PAGE ? ` (the first ${PAGE} shown, latest expiry first)` : ''}.</p>
<table><thead><tr><th>Network</th><th>Category</th><th>Reason</th><th>Source</th><th class="num">Offence</th><th>Since</th><th>Expires</th><th></th></tr></thead><tbody>${rows}</tbody></table>`,
  };
}

export async function banAdd(req: FastifyRequest, ctx: PageContext, who: string): Promise<{ redirect: string; message: string }> {
  const cidrText = required(req.body, 'cidr', 'IP or CIDR', 60);
  const reason = required(req.body, 'reason', 'Reason', 200);
  const seconds = duration(field(req.body, 'duration', 8), 'For') ?? 7 * 86400;
  const r = await storeInput(() => ctx.opts.store.ban({ cidr: cidrText, reason, category: 'manual', source: who, durationSeconds: seconds }));
  if (r.refused) throw new FormError(`${r.cidr} was not banned: ${r.why}`);
  return { redirect: backTo(req.body, '/bans'), message: `banned ${r.ban.cidr} until ${isoTime(r.ban.expiresAt)} (${reason})` };
}

export async function banLift(req: FastifyRequest, ctx: PageContext): Promise<{ redirect: string; message: string }> {
  const text = required(req.body, 'cidr', 'IP or CIDR', 60);
  let cidr: string;
  try {
    cidr = canonicalCidr(text);
  } catch (e) {
    throw new FormError((e as Error).message);
  }
  const lifted = await ctx.opts.store.unban(cidr);
  if (!lifted) throw new FormError(`${cidr} is not banned (nothing to lift)`);
  return { redirect: backTo(req.body, '/bans'), message: `lifted the ban on ${cidr}` };
}
