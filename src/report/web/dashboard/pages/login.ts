// The login form: a password (checked against web.auth's scrypt hash) or the token.

import type { FastifyRequest } from 'fastify';
import { html } from '../html.js';
import type { PageResult } from '../context.js';

export function loginPage(req: FastifyRequest, error: string | undefined): PageResult {
  const q = req.query as Record<string, unknown> | undefined;
  const body = req.body as Record<string, unknown> | undefined;
  const nextRaw = typeof q?.next === 'string' ? q.next : typeof body?.next === 'string' ? body.next : '/';
  const next = nextRaw.slice(0, 500);
  return {
    title: 'Log in',
    body: html`<form method="post" action="/login" class="login">
${error ? html`<p class="notice error" role="alert">${error}</p>` : ''}
<input type="hidden" name="next" value="${next}">
<label>Password or token <input type="password" name="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>`,
  };
}
