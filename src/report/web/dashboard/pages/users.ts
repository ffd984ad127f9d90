// Users: SASL users held by sasl_spread or `frontline user hold` (their mail
// is deferred until released), with who held them and why; release one,
// which also starts its spread afresh (docs/outbound.md).

import type { FastifyRequest } from 'fastify';
import { spreadUserKey } from '../../../../checks/sasl-spread.js';
import type { UserHold } from '../../../../store/index.js';
import type { PageContext, PageResult } from '../context.js';
import { FormError, required } from '../form.js';
import { html, isoTime, relative } from '../html.js';

export async function usersPage(_req: FastifyRequest, ctx: PageContext): Promise<PageResult> {
  const holds = await ctx.opts.store.userHolds();
  const row = (h: UserHold) => {
    const release = ctx.canChange
      ? html`<form method="post" action="/users/release" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="user" value="${h.user}"><button type="submit">Release</button></form>`
      : '';
    return html`<tr><td>${h.user}</td><td>${isoTime(h.createdAt)} <span class="muted">(${relative(h.createdAt, ctx.now)})</span></td><td>${h.by}</td><td>${h.reason}</td><td>${release}</td></tr>`;
  };
  return {
    title: 'Held users',
    body: html`${ctx.opts.spreadOn === false ? html`<p class="muted">sasl_spread.enabled is false: held users are listed here but their mail is not deferred.</p>` : ''}
<p>The mail of these SASL users is deferred (450 4.7.1) until released. A release forgets the client addresses counted for the user, so its next message passes; change the password first if the account was stolen.</p>
<table><thead><tr><th>User</th><th>Held since</th><th>By</th><th>Why</th><th></th></tr></thead>
<tbody>${holds.map(row)}</tbody></table>
${holds.length === 0 ? html`<p class="muted">No held users.</p>` : ''}`,
  };
}

export async function userRelease(req: FastifyRequest, ctx: PageContext, who: string): Promise<{ redirect: string; message: string }> {
  const user = spreadUserKey(required(req.body, 'user', 'User', 320));
  const lifted = await ctx.opts.store.userRelease(user);
  if (!lifted) throw new FormError(`${user} is not held (released already?)`);
  return { redirect: '/users', message: `released ${user} (held by ${lifted.by}: ${lifted.reason || 'no reason given'}), by ${who}` };
}
