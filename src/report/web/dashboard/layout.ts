// The frame around every page: navigation, who is logged in, the notice of
// the last change. No inline script or style anywhere (the CSP forbids them).

import { html, type Html } from './html.js';
import type { PageContext, PageResult } from './context.js';

export const NAV: ReadonlyArray<[string, string]> = [
  ['/', 'Overview'],
  ['/why', 'Why?'],
  ['/bans', 'Bans'],
  ['/lists', 'Lists'],
  ['/greylist', 'Greylist'],
  ['/users', 'Users'],
  ['/policy', 'Policy'],
];

export function layout(ctx: PageContext | undefined, path: string, page: PageResult): string {
  const nav = NAV.map(([href, label]) => html`<a href="${href}"${href === path || (href !== '/' && path.startsWith(href)) ? html` aria-current="page"` : ''}>${label}</a>`);
  let who: Html | string = '';
  if (ctx?.session) {
    who = html`<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><span class="who">${ctx.session.user}</span> <button type="submit">Log out</button></form>`;
  } else if (ctx?.opts.auth) {
    who = html`<a href="/login">Log in</a>`;
  } else if (ctx) {
    who = html`<span class="who" title="web.auth is not set">read-only</span>`;
  }
  const notice = ctx?.notice ? html`<p class="notice ${ctx.notice.kind}" role="${ctx.notice.kind === 'error' ? 'alert' : 'status'}">${ctx.notice.text}</p>` : '';
  const scripts = (page.scripts ?? []).map((s) => html`<script src="${s}" defer></script>`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · frontline</title>
<link rel="stylesheet" href="/assets/dashboard.css">
${(page.scripts ?? []).length > 0 ? html`<link rel="stylesheet" href="/assets/uplot.css">` : ''}
${scripts}
</head>
<body>
<header><strong class="brand">frontline</strong><nav>${nav}</nav><div class="session">${who}</div></header>
<main>
<h1>${page.title}</h1>
${notice}
${page.body}
</main>
</body>
</html>
`.text;
}
