// The dashboard's pages through fastify's inject: what each page shows, the
// changes it makes (and records who made them), and the attacks: script in
// HELO names and addresses, forged changes without a CSRF token, password
// guessing, malformed form values, unknown pages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { openStore, type DecisionEvent, type Store } from '../../src/store/index.js';
import { dashboardPlugin } from '../../src/report/web/dashboard/plugin.js';
import { ReportQueries } from '../../src/report/queries.js';
import { parseReplayConfig } from '../../src/report/replay.js';
import { webReplay } from '../../src/report/web/dashboard/index.js';
import { checksOf, parseCondition } from '../../src/policy/condition.js';
import type { SelfCheckResult } from '../../src/intel/self-check.js';
import type { DashboardOptions, RuleInfo } from '../../src/report/web/dashboard/context.js';
import { ManualClock } from '../helpers/fake-clock.js';

const PASSWORD = 'correct horse battery staple';

const RULES: RuleInfo[] = [
  { name: 'allowlist', if: 'list:allow=listed', action: 'accept', mode: 'enforce' },
  { name: 'banned', if: 'banned=listed', action: 'reject', code: 554, mode: 'enforce', text: 'rejected: {ip} is banned' },
  {
    name: 'spf-fail',
    if: 'spf=fail',
    action: 'reject',
    code: 550,
    mode: 'enforce',
    text: '{from_domain} does not authorise {ip}',
    remedy: 'To fix: list {ip} in the SPF record of {from_domain}.',
  },
  { name: 'no-ptr', if: 'fcrdns=fail', action: 'reject', code: 550, mode: 'test' },
  { name: 'greylist', if: 'greylist=fail', action: 'defer', code: 450, mode: 'enforce' },
];

interface World {
  app: FastifyInstance;
  store: Store;
  clock: ManualClock;
  logs: Array<{ obj: object; msg: string }>;
}

function event(clock: ManualClock, over: Partial<DecisionEvent>): DecisionEvent {
  return {
    ts: clock.now() - 60_000,
    clientIp: '192.0.2.7',
    helo: 'mail.example.net',
    from: 'bob@example.net',
    rcpts: ['alice@example.org'],
    stage: 'rcpt',
    action: 'reject',
    code: 550,
    rule: 'spf-fail',
    text: 'example.net does not authorise 192.0.2.7',
    evidence: [{ check: 'spf', result: 'fail', detail: 'example.net: -all matched 192.0.2.7' }],
    ...over,
  };
}

async function world(t: { after(fn: () => Promise<void>): void }, withAuth = true, extra: Partial<DashboardOptions> = {}): Promise<World> {
  const clock = new ManualClock(Date.UTC(2026, 11, 7, 12, 0, 0));
  const store = await openStore({ backend: 'sqlite', path: ':memory:' }, { clock, ownAddresses: [], purgeIntervalSeconds: 0 });
  const logs: World['logs'] = [];
  const logger = { info: (obj: object, msg: string) => logs.push({ obj, msg }), warn: (obj: object, msg: string) => logs.push({ obj, msg }) };
  const app = Fastify();
  await app.register(dashboardPlugin, {
    store,
    rules: RULES,
    report: new ReportQueries({ store, clock, ruleChecks: new Map(RULES.map((r) => [r.name, checksOf(parseCondition(r.if))])) }),
    auth: withAuth ? { check: async (p: string) => (p === PASSWORD ? 'admin' : undefined) } : undefined,
    logger,
    now: () => clock.now(),
    configLists: [{ name: 'partners', type: 'ip', entries: 3, files: [] }],
    ...extra,
  });
  await app.ready();
  t.after(async () => {
    await app.close();
    await store.close();
  });
  return { app, store, clock, logs };
}

/** A browser's cookies, enough for inject. */
class Jar {
  private cookies = new Map<string, string>();
  take(res: LightMyRequestResponse): void {
    for (const c of res.cookies as Array<{ name: string; value: string; maxAge?: number; expires?: Date }>) {
      if (c.value === '' || (c.expires && c.expires.getTime() < Date.now())) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }
  get header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function get(w: World, url: string, jar?: Jar): Promise<LightMyRequestResponse> {
  const res = await w.app.inject({ method: 'GET', url, headers: jar ? { cookie: jar.header } : {} });
  jar?.take(res);
  return res;
}

async function post(w: World, url: string, form: Record<string, string>, jar?: Jar, ip = '203.0.113.9'): Promise<LightMyRequestResponse> {
  const res = await w.app.inject({
    method: 'POST',
    url,
    remoteAddress: ip,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(jar ? { cookie: jar.header } : {}) },
    payload: new URLSearchParams(form).toString(),
  });
  jar?.take(res);
  return res;
}

function csrfOf(body: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(body);
  assert.ok(m, 'the page carries a CSRF token');
  return m[1];
}

async function login(w: World): Promise<{ jar: Jar; csrf: string }> {
  const jar = new Jar();
  const res = await post(w, '/login', { password: PASSWORD, next: '/bans' }, jar);
  assert.equal(res.statusCode, 303);
  assert.equal(res.headers.location, '/bans');
  const page = await get(w, '/bans', jar);
  assert.equal(page.statusCode, 200);
  return { jar, csrf: csrfOf(page.body) };
}

test('read-only without web.auth: every page answers with its data and the security headers, and offers no change', async (t) => {
  const w = await world(t, false);
  await w.store.logEvent(event(w.clock, {}));
  await w.store.ban({ cidr: '198.51.100.0/24', reason: 'brute force on sshd', category: 'brute-force', source: 'log:/var/log/auth.log' });
  for (const url of ['/', '/?range=day', '/?range=week', '/why', '/why?q=192.0.2.7', '/bans', '/lists', '/lists?show=correspondents', '/greylist', '/greylist?state=passed', '/users', '/policy']) {
    const res = await get(w, url);
    assert.equal(res.statusCode, 200, url);
    assert.match(String(res.headers['content-type']), /^text\/html/, url);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/, url);
    assert.match(csp, /script-src 'self'/, url);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, url);
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.doesNotMatch(res.body, /<script>|<script [^>]*>[^<]|\son[a-z]+=|style="/, `${url}: no inline script, handler or style`);
    assert.doesNotMatch(res.body, /name="_csrf"/, `${url}: no change forms when read-only`);
  }
  const why = await get(w, '/why?q=192.0.2.7');
  assert.match(why.body, /spf-fail/);
  assert.match(why.body, /To fix: list 192\.0\.2\.7 in the SPF record of example\.net\./, 'the remedy, filled in');
  assert.match(why.body, /Does the sender domain’s SPF record allow the client\?/, 'evidence in plain words');
  assert.match((await get(w, '/bans')).body, /198\.51\.100\.0\/24[\s\S]*brute force on sshd/);
  const forged = await post(w, '/bans/add', { cidr: '192.0.2.99', reason: 'x', duration: '1d' });
  assert.equal(forged.statusCode, 403);
  assert.equal(await w.store.getBan('192.0.2.99'), undefined);
});

test('overview: decisions by outcome, top refusing rules, clients and domains, bans by category and source, store state', async (t) => {
  const w = await world(t, false);
  await w.store.logEvent(event(w.clock, {}));
  await w.store.logEvent(event(w.clock, { clientIp: '192.0.2.8' }));
  await w.store.logEvent(event(w.clock, { action: 'defer', code: 450, rule: 'greylist', clientIp: '192.0.2.20' }));
  await w.store.logEvent(event(w.clock, { action: 'continue', code: undefined, rule: 'default', clientIp: '192.0.2.30', ts: w.clock.now() - 7200_000 }));
  await w.store.ban({ cidr: '198.51.100.9', reason: 'trap', category: 'spamtrap', source: 'rule:spamtrap' });
  const hour = await get(w, '/');
  assert.equal(hour.statusCode, 200);
  assert.match(hour.body, /Decisions: 3 in the last hour/);
  assert.match(hour.body, /<td class="num action-reject">2<\/td><td class="num action-defer">0<\/td><td class="num action-greylist">1<\/td>/);
  assert.match(hour.body, /href="\/policy#rule-spf-fail">spf-fail<\/a><\/td><td class="num">2</);
  assert.match(hour.body, /192\.0\.2\.8/);
  assert.match(hour.body, /example\.net/);
  assert.match(hour.body, /spamtrap<\/a><\/td><td class="num">1</);
  assert.match(hour.body, /healthy: sqlite/);
  assert.match(hour.body, /class="chart" data-x="\[/);
  assert.match(hour.body, /src="\/assets\/uplot\.js"/);
  assert.match((await get(w, '/?range=day')).body, /Decisions: 4 in the last 24 hours/);
  for (const a of ['uplot.js', 'uplot.css', 'charts.js', 'dashboard.css']) assert.equal((await get(w, `/assets/${a}`)).statusCode, 200, a);
});

test('script in a HELO name, sender, recipient or reply is shown as text, never run', async (t) => {
  const w = await world(t);
  const { jar } = await login(w);
  const evil = {
    helo: '<script>alert(1)</script>',
    from: '"><img src=x onerror=alert(2)>@evil.example',
    rcpts: ["x'onmouseover='alert(3)@example.org"],
    text: '</code><svg onload=alert(4)>',
    evidence: [{ check: 'helo', result: 'fail', detail: '<iframe src=javascript:alert(5)>' }],
  };
  await w.store.logEvent(event(w.clock, evil));
  await w.store.ban({ cidr: '192.0.2.7', reason: '<script>alert(6)</script>', category: '<b>x</b>', source: 'manual' });
  for (const url of ['/why?q=192.0.2.7', '/bans', '/', '/?range=day', '/why?q=%3Cscript%3Ealert(7)%3C/script%3E']) {
    const res = await get(w, url, jar);
    assert.doesNotMatch(res.body, /<script>alert|<img src=x|<svg onload|<iframe|<b>x<\/b>|'onmouseover='/, url);
  }
  const why = await get(w, '/why?q=192.0.2.7', jar);
  assert.match(why.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(why.body, /&quot;&gt;&lt;img src=x onerror=alert\(2\)&gt;@evil\.example/);
  assert.match(why.body, /&lt;iframe src=javascript:alert\(5\)&gt;/);
});

test('login: every page needs it with web.auth; the cookie is HttpOnly and SameSite=Strict; logout ends the session', async (t) => {
  const w = await world(t);
  const res = await get(w, '/why?q=192.0.2.7');
  assert.equal(res.statusCode, 303);
  assert.equal(res.headers.location, '/login?next=%2Fwhy%3Fq%3D192.0.2.7');
  const form = await get(w, '/login');
  assert.equal(form.statusCode, 200);
  assert.match(form.body, /type="password"/);
  const jar = new Jar();
  const ok = await post(w, '/login', { password: PASSWORD, next: '/why?q=192.0.2.7' }, jar);
  assert.equal(ok.statusCode, 303);
  assert.equal(ok.headers.location, '/why?q=192.0.2.7');
  const cookie = String(ok.headers['set-cookie']);
  assert.match(cookie, /fl_session=/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.ok(w.logs.some((l) => l.msg === 'dashboard: logged in'));
  const page = await get(w, '/', jar);
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /class="who">admin</);
  // An offsite "next" is never followed.
  const offsite = await post(w, '/login', { password: PASSWORD, next: '//evil.example/' }, new Jar());
  assert.equal(offsite.headers.location, '/');
  const out = await post(w, '/logout', { _csrf: csrfOf(page.body) }, jar);
  assert.equal(out.statusCode, 303);
  assert.equal((await get(w, '/', jar)).statusCode, 303, 'logged out');
});

test('wrong passwords are rate-limited per client: the fifth wrong one locks out even the right password', async (t) => {
  const w = await world(t);
  for (let i = 0; i < 5; i++) {
    const res = await post(w, '/login', { password: `guess${i}` }, new Jar(), '203.0.113.50');
    assert.equal(res.statusCode, 401);
    assert.match(res.body, /Wrong password or token/);
  }
  const locked = await post(w, '/login', { password: PASSWORD }, new Jar(), '203.0.113.50');
  assert.equal(locked.statusCode, 429);
  assert.ok(Number(locked.headers['retry-after']) > 0);
  assert.doesNotMatch(String(locked.headers['set-cookie'] ?? ''), /fl_session/);
  // Another client is not locked out; and the window passes.
  assert.equal((await post(w, '/login', { password: PASSWORD }, new Jar(), '203.0.113.51')).statusCode, 303);
  w.clock.advance(16 * 60);
  assert.equal((await post(w, '/login', { password: PASSWORD }, new Jar(), '203.0.113.50')).statusCode, 303);
});

test('a change without the CSRF token, or with another session’s, is refused (403) and changes nothing', async (t) => {
  const w = await world(t);
  const a = await login(w);
  const b = await login(w);
  const none = await post(w, '/bans/add', { cidr: '192.0.2.99', reason: 'forged', duration: '1d' }, a.jar);
  assert.equal(none.statusCode, 403);
  assert.match(none.body, /CSRF/);
  const other = await post(w, '/bans/add', { _csrf: b.csrf, cidr: '192.0.2.99', reason: 'forged', duration: '1d' }, a.jar);
  assert.equal(other.statusCode, 403);
  const wrong = await post(w, '/lists/allow/add', { _csrf: 'x'.repeat(40), entry: '192.0.2.99' }, a.jar);
  assert.equal(wrong.statusCode, 403);
  assert.equal(await w.store.getBan('192.0.2.99'), undefined);
  assert.deepEqual(await w.store.listShow('allow'), []);
  // The right token works.
  const ok = await post(w, '/bans/add', { _csrf: a.csrf, cidr: '192.0.2.99', reason: 'real', duration: '1d' }, a.jar);
  assert.equal(ok.statusCode, 303);
  assert.ok(await w.store.getBan('192.0.2.99'));
});

test('bans: ban with a reason and duration (recorded as web:admin), filter, lift; a malformed CIDR is refused with the reason', async (t) => {
  const w = await world(t);
  const { jar, csrf } = await login(w);
  for (const [cidr, why] of [
    ['192.0.2.300', /not an IP address|0–255/],
    ['192.0.2.7/24', /host bits set: the network is 192\.0\.2\.0\/24/],
    ['10.0.0.0/8', /shortest|prefix|wider/i],
    ['', /IP or CIDR: required/],
  ] as const) {
    const res = await post(w, '/bans/add', { _csrf: csrf, cidr, reason: 'test', duration: '1d' }, jar);
    assert.equal(res.statusCode, 400, cidr);
    assert.match(res.body, why, cidr);
    assert.match(res.body, /role="alert"/);
  }
  const badDuration = await post(w, '/bans/add', { _csrf: csrf, cidr: '192.0.2.7', reason: 'x', duration: 'forever' }, jar);
  assert.equal(badDuration.statusCode, 400);
  assert.match(badDuration.body, /expected a duration/);
  assert.deepEqual(await w.store.listBans(), [], 'nothing banned by a bad form');

  const ok = await post(w, '/bans/add', { _csrf: csrf, cidr: '192.0.2.0/24', reason: 'snowshoe range', duration: '2d' }, jar);
  assert.equal(ok.statusCode, 303);
  const ban = await w.store.showBan('192.0.2.0/24');
  assert.equal(ban?.source, 'web:admin');
  assert.equal(ban?.category, 'manual');
  assert.equal(ban?.expiresAt, w.clock.now() + 2 * 86400_000);
  assert.ok(w.logs.some((l) => /banned 192\.0\.2\.0\/24/.test(l.msg) && (l.obj as { user?: string }).user === 'admin'));
  const page = await get(w, '/bans?category=manual&q=snowshoe', jar);
  assert.match(page.body, /banned 192\.0\.2\.0\/24 until/, 'the notice of the change');
  assert.match(page.body, /snowshoe range/);
  assert.doesNotMatch((await get(w, '/bans?category=spamtrap', jar)).body, /snowshoe range/);

  const lift = await post(w, '/bans/lift', { _csrf: csrf, cidr: '192.0.2.0/24', back: '/why?q=192.0.2.7' }, jar);
  assert.equal(lift.statusCode, 303);
  assert.equal(lift.headers.location, '/why?q=192.0.2.7');
  assert.equal(await w.store.getBan('192.0.2.7'), undefined);
  const again = await post(w, '/bans/lift', { _csrf: csrf, cidr: '192.0.2.0/24' }, jar);
  assert.equal(again.statusCode, 400);
  assert.match(again.body, /not banned/);
  const offsite = await post(w, '/bans/add', { _csrf: csrf, cidr: '192.0.2.5', reason: 'x', back: 'https://evil.example/' }, jar);
  assert.equal(offsite.headers.location, '/bans');
});

test('why: search by IP, CIDR, sender, recipient, domain; allow-list and ban in one click; a malformed search says why', async (t) => {
  const w = await world(t);
  const { jar, csrf } = await login(w);
  await w.store.logEvent(event(w.clock, {}));
  await w.store.logEvent(event(w.clock, { clientIp: '192.0.2.200', from: 'carol@other.example', rcpts: ['dave@example.org'] }));
  await w.store.logEvent(event(w.clock, { clientIp: '198.51.100.1', from: '', rcpts: ['postmaster@example.org'], action: 'accept', code: undefined, rule: 'default', text: undefined }));
  const count = async (url: string) => ((await get(w, url, jar)).body.match(/<article class="decision">/g) ?? []).length;
  assert.equal(await count('/why?q=192.0.2.7'), 1);
  assert.equal(await count('/why?q=192.0.2.0/24'), 2);
  assert.equal(await count('/why?q=192.0.2.128/25&kind=cidr'), 1);
  assert.equal(await count('/why?q=BOB@example.net&kind=from'), 1);
  assert.equal(await count('/why?q=%3C%3E&kind=from'), 1, 'the null sender');
  assert.equal(await count('/why?q=dave@example.org&kind=rcpt'), 1);
  assert.equal(await count('/why?q=example.org'), 3);
  assert.equal(await count('/why?q=other.example'), 1);
  for (const [q, why] of [
    ['192.0.2.0/33&kind=cidr', /not an IP network/],
    ['not an ip&kind=ip', /not an IP address/],
    ['nobody&kind=rcpt', /not an e-mail address/],
  ] as const) {
    const res = await get(w, `/why?q=${q}`, jar);
    assert.equal(res.statusCode, 400, q);
    assert.match(res.body, why, q);
  }
  const page = await get(w, '/why?q=192.0.2.7', jar);
  assert.match(page.body, /192\.0\.2\.7 is not banned/);
  assert.match(page.body, /Allow 192\.0\.2\.7/);
  const allow = await post(w, '/lists/allow/add', { _csrf: csrf, entry: '192.0.2.7', reason: 'allowed from Why?', back: '/why?q=192.0.2.7' }, jar);
  assert.equal(allow.statusCode, 303);
  assert.equal(allow.headers.location, '/why?q=192.0.2.7');
  const entries = await w.store.listShow('allow');
  assert.deepEqual(
    entries.map((e) => [e.entry, e.source]),
    [['192.0.2.7/32', 'web:admin: allowed from Why?']],
  );
  const ban = await post(w, '/bans/add', { _csrf: csrf, cidr: '192.0.2.200', reason: 'from why', duration: '1h', back: '/why?q=192.0.2.200' }, jar);
  assert.equal(ban.statusCode, 303);
  const after = await get(w, '/why?q=192.0.2.200', jar);
  assert.match(after.body, /Banned: 192\.0\.2\.200\/32/);
  assert.match(after.body, /Lift ban on 192\.0\.2\.200\/32/);
});

test('lists: add with expiry and reason, filter, delete; a malformed entry or list name is refused and changes nothing', async (t) => {
  const w = await world(t);
  const { jar, csrf } = await login(w);
  const add = await post(w, '/lists/add', { _csrf: csrf, list: 'traps', entry: 'Trap@Example.COM', kind: 'address', reason: 'honeypot', expires: '30d' }, jar);
  assert.equal(add.statusCode, 303);
  assert.equal(add.headers.location, '/lists/traps');
  const [e] = await w.store.listShow('traps');
  assert.equal(e.entry, 'trap@example.com');
  assert.equal(e.source, 'web:admin: honeypot');
  assert.equal(e.expiresAt, w.clock.now() + 30 * 86400_000);
  for (const [url, form, why] of [
    ['/lists/traps/add', { entry: 'not-an-address' }, /not an e-mail address/],
    ['/lists/traps/add', { entry: '192.0.2.1' }, /not an e-mail address|holds address/],
    ['/lists/add', { list: '../etc', entry: '192.0.2.1' }, /bad list name/],
    ['/lists/add', { list: 'blocks', entry: '192.0.2.1/24', kind: 'ip' }, /host bits set/],
    ['/lists/traps/add', { entry: 'x@y.example', expires: '-1d' }, /expected a duration/],
    ['/lists/traps/delete', { entry: 'nobody@example.com' }, /not in list traps/],
  ] as const) {
    const res = await post(w, url, { _csrf: csrf, ...form }, jar);
    assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(form)}`);
    assert.match(res.body, why, `${url} ${JSON.stringify(form)}`);
  }
  assert.equal((await w.store.listShow('traps')).length, 1);
  assert.deepEqual(await w.store.listShow('blocks'), []);
  const lists = await get(w, '/lists', jar);
  assert.match(lists.body, /href="\/lists\/traps">traps<\/a><\/td><td>e-mail addresses<\/td><td class="num">1</);
  assert.match(lists.body, /partners/);
  assert.match((await get(w, '/lists/traps?q=trap', jar)).body, /trap@example\.com/);
  const del = await post(w, '/lists/traps/delete', { _csrf: csrf, entry: 'trap@example.com' }, jar);
  assert.equal(del.statusCode, 303);
  assert.deepEqual(await w.store.listShow('traps'), []);
});

test('greylist: waiting and passed triplets; release one so its next attempt passes', async (t) => {
  const w = await world(t);
  const { jar, csrf } = await login(w);
  const timing = { delaySeconds: 300, retryWindowSeconds: 86400, passedTtlSeconds: 86400 * 36 };
  const key = 'net:192.0.2.0/24|bob@example.net|alice@example.org';
  assert.equal((await w.store.greyAttempt(key, '192.0.2.7', w.clock.now(), timing)).outcome, 'first');
  await w.store.greyAttempt('net:198.51.100.0/24|a@b.example|c@d.example', '198.51.100.1', w.clock.now() - 600_000, timing);
  await w.store.greyAttempt('net:198.51.100.0/24|a@b.example|c@d.example', '198.51.100.1', w.clock.now(), timing);
  const waiting = await get(w, '/greylist', jar);
  assert.match(waiting.body, /Waiting \(1\)[\s\S]*Passed \(1\)/);
  assert.match(waiting.body, /bob@example\.net/);
  const res = await post(w, '/greylist/release', { _csrf: csrf, key }, jar);
  assert.equal(res.statusCode, 303);
  assert.equal((await w.store.greyAttempt(key, '192.0.2.7', w.clock.now() + 1000, timing)).outcome, 'known');
  const missing = await post(w, '/greylist/release', { _csrf: csrf, key: 'net:203.0.113.0/24|x|y' }, jar);
  assert.equal(missing.statusCode, 400);
  assert.match(missing.body, /no longer in the greylist/);
});

test('users: held users with who and why; release (CSRF token bound to the session) lets the user through and forgets its addresses', async (t) => {
  const w = await world(t, true, { spreadOn: true });
  const { jar, csrf } = await login(w);
  const now = w.clock.now();
  await w.store.spreadRecord({ user: 'joe', values: [{ kind: 'ip', value: '192.0.2.1' }], now, windowMs: 3600_000, newWindowMs: 3600_000, knownMs: 86400_000, maxValues: 10 });
  await w.store.userHold({ user: 'joe', by: 'sasl_spread', reason: '5 client addresses in 3600 s (hold at 5)', createdAt: now });
  await w.store.userHold({ user: '<b>x</b>', by: 'cli:root', reason: '<script>alert(1)</script>', createdAt: now });
  const page = await get(w, '/users', jar);
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<td>joe<\/td>[\s\S]*?<td>sasl_spread<\/td><td>5 client addresses in 3600 s \(hold at 5\)<\/td>/);
  assert.doesNotMatch(page.body, /<script>alert|<b>x<\/b>/, 'values are escaped');
  // No token, a token of another session: refused, nothing changed.
  const bare = await post(w, '/users/release', { user: 'joe' }, jar);
  assert.equal(bare.statusCode, 403);
  const other = await login(w);
  const stolen = await post(w, '/users/release', { _csrf: other.csrf, user: 'joe' }, jar);
  assert.equal(stolen.statusCode, 403);
  assert.ok(await w.store.userHoldGet('joe'), 'still held');
  const res = await post(w, '/users/release', { _csrf: csrf, user: 'JOE' }, jar);
  assert.equal(res.statusCode, 303);
  assert.equal(res.headers.location, '/users');
  assert.equal(await w.store.userHoldGet('joe'), undefined);
  const after = await get(w, '/users', jar);
  assert.match(after.body, /released joe \(held by sasl_spread: 5 client addresses/);
  assert.deepEqual(
    await w.store.spreadRecord({ user: 'joe', values: [{ kind: 'ip', value: '192.0.2.9' }], now, windowMs: 3600_000, newWindowMs: 3600_000, knownMs: 86400_000, maxValues: 10 }),
    { ips: 1, asns: 0, countries: 0, newRcpts: 0 },
  );
  const again = await post(w, '/users/release', { _csrf: csrf, user: 'joe' }, jar);
  assert.equal(again.statusCode, 400);
  assert.match(again.body, /joe is not held/);
  const long = await post(w, '/users/release', { _csrf: csrf, user: 'x'.repeat(400) }, jar);
  assert.equal(long.statusCode, 400);
});

test('overview: our own addresses on DNSBLs (intel.self_check), listed and not', async (t) => {
  const state: { last?: SelfCheckResult } = {};
  const w = await world(t, false, { selfCheck: () => state.last });
  assert.match((await get(w, '/')).body, /Our addresses on DNSBLs<\/h2><p class="muted">Not checked yet/);
  state.last = {
    checkedAt: w.clock.now(),
    zones: ['bl.test', 'other.test'],
    listed: 1,
    addresses: [
      { address: '198.51.100.25', listedBy: [{ zone: 'bl.test', codes: ['127.0.0.2'] }], unanswered: [{ zone: 'other.test', reason: 'timeout after 3000 ms' }] },
      { address: '198.51.100.26', listedBy: [], unanswered: [] },
    ],
  };
  const body = (await get(w, '/')).body;
  assert.match(body, /<strong class="action-reject">1 listing<\/strong>/);
  assert.match(body, /<td>198\.51\.100\.25<\/td><td>bl\.test \(127\.0\.0\.2\)<\/td><td>other\.test: timeout after 3000 ms<\/td>/);
  assert.match(body, /<td>198\.51\.100\.26<\/td><td>none<\/td>/);
});

test('policy: rules in force with 24 h hits; what test-mode rules would have refused', async (t) => {
  const w = await world(t);
  const { jar } = await login(w);
  await w.store.logEvent(event(w.clock, { action: 'accept', code: undefined, rule: 'default', wouldHave: [{ rule: 'no-ptr', action: 'reject', code: 550 }] }));
  await w.store.logEvent(event(w.clock, {}));
  const res = await get(w, '/policy', jar);
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /id="rule-spf-fail"[\s\S]*?<td class="num">1<\/td>/);
  assert.match(res.body, /no-ptr<\/strong> <em>\(test mode\)/);
  assert.match(res.body, /<td>no-ptr<\/td><td>refused<\/td><td class="num">1<\/td>/);
  assert.doesNotMatch(res.body, /Try a new policy/, 'no replay offered without it');
});

test('policy replay: a pasted config with errors names them (file:line:key) and replays nothing; a good one shows what would change', async (t) => {
  const box: { store?: Store } = {};
  const replay = (yaml: string, since: number) => webReplay(box.store!, parseReplayConfig('{}'))(yaml, since);
  const w = await world(t, true, { replay });
  box.store = w.store;
  const { jar, csrf } = await login(w);
  await w.store.logEvent(event(w.clock, { action: 'continue', code: undefined, rule: 'default', text: undefined, evidence: [{ check: 'auth', result: 'none' }] }));
  assert.match((await get(w, '/policy', jar)).body, /Try a new policy/);
  const bad = await post(w, '/policy/replay', { _csrf: csrf, config: 'policy:\n  rules:\n    - name: x\n      if: auth=none\n      action: refuse\n' }, jar);
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /pasted config:5:\d+: policy\.rules\[0\]\.action: expected one of/);
  assert.doesNotMatch(bad.body, /What would change/);
  const good = await post(w, '/policy/replay', { _csrf: csrf, config: 'policy:\n  rules:\n    - name: everyone-out\n      if: auth=none\n      action: reject\n      code: 550\n' }, jar);
  assert.equal(good.statusCode, 200);
  assert.match(good.body, /What would change/);
  assert.match(good.body, /<strong>1<\/strong> would change action/);
  assert.match(good.body, /continue \(default\)<\/td><td>reject 550 \(everyone-out\)/);
  const forged = await post(w, '/policy/replay', { config: 'policy: {}' }, jar);
  assert.equal(forged.statusCode, 403);
});

test('an unknown page is a 404 page; an unknown asset too', async (t) => {
  const w = await world(t, false);
  for (const url of ['/nope', '/lists/x/y/z', '/assets/../../etc/passwd', '/assets/evil.js', '/%3Cscript%3E']) {
    const res = await get(w, url);
    assert.equal(res.statusCode, 404, url);
    assert.match(String(res.headers['content-type']), /text\/html/, url);
    assert.doesNotMatch(res.body, /<script>/, url);
  }
  assert.match((await get(w, '/nope')).body, /There is no page at/);
});

test('sessions are signed cookies: another worker with the same key accepts them; a forged or altered one is refused', async () => {
  const { Sessions } = await import('../../src/report/web/dashboard/auth.js');
  const key = Buffer.alloc(32, 7);
  let t = 1_000_000;
  const a = new Sessions(key, () => t);
  const b = new Sessions(key, () => t);
  const s = a.open('admin');
  assert.equal(b.get(s.id)?.user, 'admin', 'a second worker with the same key');
  assert.equal(new Sessions(Buffer.alloc(32, 8), () => t).get(s.id), undefined, 'another key');
  const [payload, mac] = s.id.split('.');
  const forged = Buffer.from(JSON.stringify({ u: 'root', c: t, n: 'x' })).toString('base64url');
  assert.equal(a.get(`${forged}.${mac}`), undefined, 'an altered payload');
  assert.equal(a.get(`${payload}.${mac.slice(0, -2)}AA`), undefined, 'an altered signature');
  assert.equal(a.get('garbage'), undefined);
  a.close(s.id);
  assert.equal(a.get(s.id), undefined, 'logged out here');
  t += a.maxAgeMs + 1;
  assert.equal(b.get(s.id), undefined, 'expired everywhere');
});
