// The dashboard as a fastify plugin: register it on the web listener
// (src/report/web/server.ts) and it serves Overview, Why?, Bans, Lists,
// Greylist, Users and Policy as server-rendered HTML. See docs/dashboard.md.
//
// Defences, each with its attack in test/unit/dashboard-*.test.ts:
// - every value is escaped (html.ts), and the CSP forbids inline script and
//   style, so an escaped-but-missed value still cannot run;
// - changes are POSTs that need a logged-in session (cookie HttpOnly,
//   SameSite=Strict) and a CSRF token bound to that session; without
//   web.auth the dashboard is read-only;
// - wrong passwords are limited per client (auth.ts);
// - a bad form value is refused with the reason, before the store is asked.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import csrf from '@fastify/csrf-protection';
import { createHmac } from 'node:crypto';
import { LoginLimiter, Sessions, sessionKey, type Session } from './auth.js';
import { loadAssets } from './assets.js';
import type { DashboardOptions, PageContext, PageResult } from './context.js';
import { FormError, field } from './form.js';
import { html } from './html.js';
import { layout } from './layout.js';
import { overviewPage } from './pages/overview.js';
import { whyPage } from './pages/why.js';
import { bansPage, banAdd, banLift } from './pages/bans.js';
import { listsPage, listPage, listAdd, listDelete } from './pages/lists.js';
import { greylistPage, greyRelease } from './pages/greylist.js';
import { usersPage, userRelease } from './pages/users.js';
import { policyPage, policyReplay } from './pages/policy.js';
import { loginPage } from './pages/login.js';

const SESSION_COOKIE = 'fl_session';
const NOTICE_COOKIE = 'fl_notice';

/** Sent with every answer of the dashboard. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

type Handler = (req: FastifyRequest, ctx: PageContext) => Promise<PageResult>;
type Change = (req: FastifyRequest, ctx: PageContext, who: string) => Promise<{ redirect: string; message: string }>;

export async function dashboardPlugin(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const now = opts.now ?? Date.now;
  const key = opts.sessionKey ?? sessionKey();
  const sessions = new Sessions(key, now);
  const limiter = new LoginLimiter(now);
  // The notice of the last change travels to the page it redirects to in a signed cookie (any worker may answer that page).
  const noticeMac = (session: string, text: string) => createHmac('sha256', key).update(`notice\u0000${session}\u0000${text}`).digest('base64url');
  const assets = loadAssets();

  if (!app.hasDecorator('parseCookie')) await app.register(cookie);
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody, { bodyLimit: 256 * 1024 });
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: 'fl_csrf',
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'strict', secure: opts.secureCookies === true, signed: false },
    // The token is bound to the session: one stolen from another session (or made before login) is refused.
    csrfOpts: { userInfo: true, hmacKey: createHmac('sha256', key).update('csrf').digest('base64') },
    getUserInfo: (req: FastifyRequest) => req.cookies[SESSION_COOKIE] ?? '',
    getToken: (req: FastifyRequest) => field(req.body, '_csrf', 200) || undefined,
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    return payload;
  });

  const sessionOf = (req: FastifyRequest): Session | undefined => sessions.get(req.cookies[SESSION_COOKIE]);

  const contextOf = (req: FastifyRequest, reply: FastifyReply): PageContext => {
    const session = sessionOf(req);
    const ctx: PageContext = { opts, now: now(), session, canChange: session !== undefined };
    if (session) {
      ctx.csrf = reply.generateCsrf({ userInfo: session.id });
      const n = req.cookies[NOTICE_COOKIE];
      if (n !== undefined) {
        const dot = n.lastIndexOf('.');
        const text = dot > 0 ? Buffer.from(n.slice(0, dot), 'base64url').toString('utf8') : '';
        if (dot > 0 && n.slice(dot + 1) === noticeMac(session.id, text)) ctx.notice = { kind: 'ok', text };
        reply.clearCookie(NOTICE_COOKIE, { path: '/' });
      }
    }
    return ctx;
  };

  const send = (reply: FastifyReply, req: FastifyRequest, ctx: PageContext | undefined, page: PageResult): FastifyReply =>
    reply
      .code(page.status ?? 200)
      .type('text/html; charset=utf-8')
      .send(layout(ctx, req.url.split('?')[0], page));

  /** A page: with web.auth every page needs a login (the log shows who mails whom). */
  const page = (path: string, handler: Handler) => {
    app.get(path, async (req, reply) => {
      const ctx = contextOf(req, reply);
      if (opts.auth && !ctx.session) return reply.redirect(`/login?next=${encodeURIComponent(req.url.slice(0, 500))}`, 303);
      return send(reply, req, ctx, await handler(req, ctx));
    });
  };

  /**
   * A change: logged in, CSRF token checked (csrfProtection answers 403
   * first), then run; a FormError re-shows the page with the reason (400),
   * nothing changed.
   */
  const change = (path: string, run: Change, onError: Handler) => {
    app.post(path, { preHandler: app.csrfProtection }, async (req, reply) => {
      const ctx = contextOf(req, reply);
      if (!ctx.session) return send(reply.code(403), req, ctx, forbidden('Log in to make changes.'));
      try {
        const r = await run(req, ctx, `web:${ctx.session.user}`);
        opts.logger?.info({ user: ctx.session.user, change: path, detail: r.message, client: req.ip }, `dashboard: ${r.message}`);
        const text = r.message.slice(0, 500);
        reply.setCookie(NOTICE_COOKIE, `${Buffer.from(text).toString('base64url')}.${noticeMac(ctx.session.id, text)}`, {
          path: '/',
          httpOnly: true,
          sameSite: 'strict',
          secure: opts.secureCookies === true,
          maxAge: 60,
        });
        return reply.redirect(r.redirect, 303);
      } catch (e) {
        if (!(e instanceof FormError)) throw e;
        ctx.notice = { kind: 'error', text: e.message };
        const p = await onError(req, ctx);
        return send(reply, req, ctx, { ...p, status: 400 });
      }
    });
  };

  app.get('/assets/:name', async (req, reply) => {
    const a = assets.get((req.params as { name: string }).name);
    if (!a) return notFound(req, reply);
    return reply.type(a.type).header('cache-control', 'public, max-age=3600').send(a.body);
  });

  page('/', overviewPage);
  page('/why', whyPage);
  page('/bans', bansPage);
  page('/lists', listsPage);
  page('/lists/:name', listPage);
  page('/greylist', greylistPage);
  page('/users', usersPage);
  page('/policy', policyPage);

  change('/bans/add', banAdd, bansPage);
  change('/bans/lift', banLift, bansPage);
  change('/lists/add', listAdd, listsPage);
  change('/lists/:name/add', listAdd, listPage);
  change('/lists/:name/delete', listDelete, listPage);
  change('/greylist/release', greyRelease, greylistPage);
  change('/users/release', userRelease, usersPage);
  if (opts.replay) {
    app.post('/policy/replay', { preHandler: app.csrfProtection }, async (req, reply) => {
      const ctx = contextOf(req, reply);
      if (!ctx.session) return send(reply.code(403), req, ctx, forbidden('Log in to try a config.'));
      return send(reply, req, ctx, await policyReplay(req, ctx));
    });
  }

  app.get('/login', async (req, reply) => {
    if (!opts.auth) return reply.redirect('/', 303);
    return send(reply, req, undefined, loginPage(req, undefined));
  });

  app.post('/login', async (req, reply) => {
    if (!opts.auth) return reply.redirect('/', 303);
    const wait = limiter.waitSeconds(req.ip);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      return send(reply, req, undefined, { ...loginPage(req, `Too many wrong passwords from your address: try again in ${wait} seconds.`), status: 429 });
    }
    let password: string;
    try {
      password = field(req.body, 'password', 1024);
    } catch (e) {
      return send(reply, req, undefined, { ...loginPage(req, (e as Error).message), status: 400 });
    }
    const user = password === '' ? undefined : await opts.auth.check(password);
    if (user === undefined) {
      limiter.fail(req.ip);
      opts.logger?.warn({ client: req.ip }, 'dashboard: wrong password');
      return send(reply, req, undefined, { ...loginPage(req, 'Wrong password or token.'), status: 401 });
    }
    limiter.succeed(req.ip);
    const s = sessions.open(user);
    opts.logger?.info({ user, client: req.ip }, 'dashboard: logged in');
    reply.setCookie(SESSION_COOKIE, s.id, { path: '/', httpOnly: true, sameSite: 'strict', secure: opts.secureCookies === true });
    return reply.redirect(safeNext(field(req.body, 'next', 600)), 303);
  });

  app.post('/logout', { preHandler: app.csrfProtection }, async (req, reply) => {
    sessions.close(req.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect(opts.auth ? '/login' : '/', 303);
  });

  const notFound = (req: FastifyRequest, reply: FastifyReply) =>
    send(reply, req, contextOf(req, reply), {
      title: 'Not found',
      status: 404,
      body: html`<p>There is no page at <code>${req.url.slice(0, 300)}</code>.</p><p><a href="/">Back to the overview</a></p>`,
    });
  // A route, not setNotFoundHandler: the web listener's root keeps its own (plain) 404 for what is not a page.
  app.get('/*', notFound);

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 403 || err.code?.startsWith('FST_CSRF')) {
      opts.logger?.warn({ client: req.ip, url: req.url.slice(0, 300) }, 'dashboard: change refused: missing or wrong CSRF token');
      return send(reply, req, undefined, forbidden('The form was stale or did not come from this dashboard (missing or wrong CSRF token); nothing was changed. Reload the page and try again.'));
    }
    if (status >= 400 && status < 500) {
      return send(reply, req, undefined, { title: 'Bad request', status, body: html`<p>${err.message}</p>` });
    }
    opts.logger?.warn({ err: err.message, url: req.url.slice(0, 300) }, 'dashboard: page failed');
    return send(reply, req, undefined, { title: 'Not available', status: 503, body: html`<p>This page cannot be shown now: ${err.message}</p>` });
  });
}

function forbidden(text: string): PageResult {
  return { title: 'Forbidden', status: 403, body: html`<p>${text}</p>` };
}

/** Only a path on this site (never `//evil.example`, never a scheme). */
function safeNext(next: string): string {
  return /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/';
}
