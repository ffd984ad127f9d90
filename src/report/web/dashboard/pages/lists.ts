// Lists: the store's named lists (allow, deny, spamtraps, AS numbers,
// imported and SPF-walked lists — whatever `frontline list add`, the
// importers and the SPF walker filled), the config file's own lists (read
// only: edit the file), and the learned correspondents. Browse, filter,
// add with an expiry and a reason, delete.

import type { FastifyRequest } from 'fastify';
import { checkListKind, checkListName } from '../../../../store/entries.js';
import { InvalidEntryError } from '../../../../store/errors.js';
import { LIST_KINDS, type ListEntry, type ListKind } from '../../../../store/index.js';
import type { PageContext, PageResult } from '../context.js';
import { duration, field, FormError, required, storeInput } from '../form.js';
import { html, isoTime, query, relative, type Html } from '../html.js';
import { backTo } from './back.js';

const PAGE = 1000;

const KIND_WORDS: Record<ListKind, string> = {
  ip: 'IP addresses and networks',
  domain: 'domains (and their subdomains)',
  asn: 'AS numbers',
  address: 'e-mail addresses',
};

function addForm(ctx: PageContext, list: string | undefined, body: Record<string, unknown> | undefined, kind?: ListKind): Html {
  if (!ctx.canChange) return html`<p class="muted">Log in to add or delete entries.</p>`;
  const v = (k: string) => (typeof body?.[k] === 'string' ? (body[k] as string) : '');
  return html`<form method="post" action="${list === undefined ? '/lists/add' : `/lists/${list}/add`}" class="row"><input type="hidden" name="_csrf" value="${ctx.csrf}">
${list === undefined ? html`<label>List <input type="text" name="list" required maxlength="64" value="${v('list')}" placeholder="allow"></label>` : ''}
<label>Entry <input type="text" name="entry" required maxlength="300" value="${v('entry')}" placeholder="${kind === 'address' ? 'trap@example.com' : kind === 'domain' ? 'example.com' : kind === 'asn' ? 'AS64496' : '192.0.2.0/24'}"></label>
${list === undefined ? html`<label>Kind (new list) <select name="kind"><option value="">guess</option>${LIST_KINDS.map((k) => html`<option value="${k}"${v('kind') === k ? html` selected` : ''}>${k}</option>`)}</select></label>` : ''}
<label>Reason <input type="text" name="reason" maxlength="200" size="24" value="${v('reason')}"></label>
<label>Expires after <input type="text" name="expires" maxlength="8" size="6" value="${v('expires')}" placeholder="never"></label>
<button type="submit">Add</button></form>`;
}

export async function listsPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  if (p.show === 'correspondents') return correspondentsPage(req, ctx);
  const names = await ctx.opts.store.listNames();
  const config = ctx.opts.configLists ?? [];
  return {
    title: 'Lists',
    body: html`${addForm(ctx, undefined, req.body as Record<string, unknown> | undefined)}
<h2>In the store</h2>
<p class="muted">Filled by <code>frontline list add</code>, list imports, the SPF walker, spamtrap settings and this page. Rules use them as <code>list:NAME</code>.</p>
<table><thead><tr><th>List</th><th>Holds</th><th class="num">Entries</th></tr></thead><tbody>
${names.map((l) => html`<tr><td><a href="/lists/${l.name}">${l.name}</a></td><td>${KIND_WORDS[l.kind] ?? l.kind}</td><td class="num">${l.entries}</td></tr>`)}
</tbody></table>
${names.length === 0 ? html`<p class="muted">No store lists yet.</p>` : ''}
<h2>In the config file</h2>
<p class="muted">Read only here: edit <code>lists:</code> in the config and reload.</p>
<table><thead><tr><th>List</th><th>Type</th><th class="num">Entries</th><th>Files</th></tr></thead><tbody>
${config.map((l) => html`<tr><td>${l.name}</td><td>${l.type}</td><td class="num">${l.entries}</td><td>${l.files.join(', ')}</td></tr>`)}
</tbody></table>
<h2>Learned correspondents</h2>
<p><a href="/lists?show=correspondents">Domains and addresses our users write to</a> (learned from outgoing mail).</p>`,
  };
}

async function correspondentsPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  const text = typeof p.q === 'string' ? p.q.slice(0, 100).trim().toLowerCase() : '';
  const all = await ctx.opts.store.correspondentAll(ctx.now);
  const shown = all.filter((c) => text === '' || c.key.includes(text)).sort((a, b) => b.lastSeen - a.lastSeen);
  return {
    title: 'Learned correspondents',
    body: html`<p><a href="/lists">All lists</a></p>
<form method="get" action="/lists" class="row"><input type="hidden" name="show" value="correspondents"><label>Containing <input type="search" name="q" value="${text}" maxlength="100"></label><button type="submit">Filter</button></form>
<p>${shown.length} correspondent${shown.length === 1 ? '' : 's'}. They are learned, not typed: each expires on its own unless our users write there again.</p>
<table><thead><tr><th>Domain or address</th><th>Kind</th><th class="num">Messages</th><th>First seen</th><th>Last seen</th><th>Forgotten</th></tr></thead><tbody>
${shown.slice(0, PAGE).map((c) => html`<tr><td>${c.key}</td><td>${c.kind}</td><td class="num">${c.count}</td><td>${isoTime(c.firstSeen)}</td><td>${isoTime(c.lastSeen)}</td><td>${relative(c.expiresAt, ctx.now)}</td></tr>`)}
</tbody></table>`,
  };
}

function listParam(req: FastifyRequest): string {
  const name = (req.params as { name?: string }).name ?? '';
  try {
    return checkListName(name);
  } catch (e) {
    throw new FormError((e as Error).message);
  }
}

export async function listPage(req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const p = (req.query ?? {}) as Record<string, unknown>;
  let name: string;
  try {
    name = listParam(req);
  } catch (e) {
    return { title: 'No such list', status: 404, body: html`<p>${(e as Error).message}</p><p><a href="/lists">All lists</a></p>` };
  }
  const text = typeof p.q === 'string' ? p.q.slice(0, 100).trim().toLowerCase() : '';
  const entries = await ctx.opts.store.listShow(name);
  const kind = ctx.opts.store.lookup.listKind(name);
  const shown = entries.filter((e) => text === '' || `${e.entry} ${e.source}`.toLowerCase().includes(text));
  const back = `/lists/${name}${query({ q: text })}`;
  const row = (e: ListEntry) =>
    html`<tr><td>${e.entry}</td><td>${e.source}</td><td>${isoTime(e.addedAt)}</td><td>${e.expiresAt === undefined ? 'never' : html`<span title="${isoTime(e.expiresAt)}">${relative(e.expiresAt, ctx.now)}</span>`}</td><td>${
      ctx.canChange
        ? html`<form method="post" action="/lists/${name}/delete" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="entry" value="${e.entry}"><input type="hidden" name="back" value="${back}"><button type="submit" class="danger">Delete</button></form>`
        : ''
    }</td></tr>`;
  return {
    title: `List ${name}`,
    body: html`<p><a href="/lists">All lists</a> · ${kind ? `holds ${KIND_WORDS[kind]}` : 'empty (the first entry decides what it holds)'}</p>
${addForm(ctx, name, req.body as Record<string, unknown> | undefined, kind)}
<form method="get" action="/lists/${name}" class="row"><label>Containing <input type="search" name="q" value="${text}" maxlength="100"></label><button type="submit">Filter</button></form>
<p>${shown.length} entr${shown.length === 1 ? 'y' : 'ies'}${shown.length > PAGE ? ` (the first ${PAGE} shown)` : ''}.</p>
<table><thead><tr><th>Entry</th><th>Source and reason</th><th>Added</th><th>Expires</th><th></th></tr></thead><tbody>${shown.slice(0, PAGE).map(row)}</tbody></table>`,
  };
}

export async function listAdd(req: FastifyRequest, ctx: PageContext, who: string): Promise<{ redirect: string; message: string }> {
  let name: string;
  if ((req.params as { name?: string }).name !== undefined) name = listParam(req);
  else {
    try {
      name = checkListName(required(req.body, 'list', 'List', 64));
    } catch (e) {
      throw e instanceof InvalidEntryError ? new FormError(e.message) : e;
    }
  }
  const entry = required(req.body, 'entry', 'Entry', 300);
  const reason = field(req.body, 'reason', 200);
  const kindText = field(req.body, 'kind', 10);
  let kind: ListKind | undefined;
  try {
    kind = kindText === '' ? undefined : checkListKind(kindText);
  } catch (e) {
    throw new FormError((e as Error).message);
  }
  const seconds = duration(field(req.body, 'expires', 8), 'Expires after');
  const e = await storeInput(() =>
    ctx.opts.store.listAdd(name, entry, { source: reason === '' ? who : `${who}: ${reason}`, expiresAt: seconds === undefined ? undefined : ctx.now + seconds * 1000, kind }),
  );
  return { redirect: backTo(req.body, `/lists/${name}`), message: `added ${e.entry} to list ${name}${e.expiresAt !== undefined ? ` until ${isoTime(e.expiresAt)}` : ''}` };
}

export async function listDelete(req: FastifyRequest, ctx: PageContext): Promise<{ redirect: string; message: string }> {
  const name = listParam(req);
  const entry = required(req.body, 'entry', 'Entry', 300);
  const done = await storeInput(() => ctx.opts.store.listDel(name, entry));
  if (!done) throw new FormError(`${entry} is not in list ${name} (nothing deleted)`);
  return { redirect: backTo(req.body, `/lists/${name}`), message: `deleted ${entry} from list ${name}` };
}
