// The dashboard in a real browser: Debian's Chromium driven by
// playwright-core (no browser download) against a real `frontline serve`
// whose decision log is filled by real policy requests from the fixture
// world (test/fixtures/world.yaml) through its Postfix policy server. It
// logs in, visits every page, bans a client from Why? and sees the policy
// server refuse it, lifts the ban from Bans and sees the policy server stop
// refusing it, allow-lists, releases a greylisted triplet, and checks that
// the chart script runs under the CSP. Screenshots go to
// $DASHBOARD_SCREENSHOTS (docs/dashboard/ for docs/dashboard.md) or a
// temporary directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { startServe } from '../helpers/cli.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { requireBinary } from '../helpers/binaries.js';
import { hashPassword } from '../../src/report/web/auth.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const PASSWORD = 'a long dashboard passphrase';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** The fixture world's clients, as Postfix would ask about them at RCPT. */
const CLIENTS = {
  provider: { client_address: '198.51.100.10', client_name: 'mta10.outbound.bigprovider-mail.test', reverse_client_name: 'mta10.outbound.bigprovider-mail.test', helo_name: 'out-of-sync.bigprovider.test', sender: 'alice@bigprovider.test' },
  forger: { client_address: '192.0.2.77', client_name: 'unknown', reverse_client_name: 'cpe-192-0-2-77.cable.homenet.test', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test' },
  listed: { client_address: '192.0.2.200', client_name: 'unknown', reverse_client_name: 'unknown', helo_name: 'mail.bigprovider.test', sender: 'alice@bigprovider.test' },
  small: { client_address: '203.0.113.5', client_name: 'mail.small.test', reverse_client_name: 'mail.small.test', helo_name: 'mail.small.test', sender: 'dave@small.test' },
  xss: { client_address: '192.0.2.66', client_name: 'unknown', reverse_client_name: 'unknown', helo_name: '<img src=x onerror=alert(1)>', sender: 'x"><script>alert(2)</script>@bigisp.test' },
} as const;

test('the dashboard in Chromium against frontline serve: every page, a ban made and lifted from the UI as the policy server sees it', { timeout: 300_000 }, async (t) => {
  const chromiumBin = requireBinary('/usr/bin/chromium', t);
  if (!chromiumBin) return;
  const dir = mkdtempSync(join(tmpdir(), 'fl-dash-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const shots = process.env.DASHBOARD_SCREENSHOTS ? resolve(process.env.DASHBOARD_SCREENSHOTS) : join(dir, 'shots');
  mkdirSync(shots, { recursive: true });

  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  t.after(() => dns.close());
  const config = join(dir, 'frontline.yaml');
  writeFileSync(
    config,
    [
      'dns:',
      '  timeout_ms: 400',
      '  retries: 0',
      'checks:',
      '  dnsbl:',
      '    zones: ["bl.test=127.0.0.[2..11]"]',
      '    timeout_ms: 1000',
      'greylist:',
      '  enabled: true',
      'web:',
      '  auth:',
      `    password_hash: "${await hashPassword(PASSWORD, 12)}"`,
      '',
    ].join('\n'),
  );
  const serve = await startServe(['-c', config, '--web-listen', '127.0.0.1:0', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data')], { timeoutMs: 60_000 });
  t.after(() => serve.stop());
  const m = /web (http:\/\/127\.0\.0\.1:\d+)/.exec(serve.stderr());
  assert.ok(m, serve.stderr());
  const base = m[1];

  const policy = await PolicyClient.connect({ host: '127.0.0.1', port: serve.port });
  t.after(() => policy.close());
  // Each request a new message (its own instance): Postfix sends one instance per transaction.
  let message = 0;
  const ask = (c: Record<string, string>, rcpt = 'user@dest.example') => policy.ask(rcptRequest({ ...c, recipient: rcpt, instance: `dash.${++message}` }));
  assert.match(await ask(CLIENTS.forger), /^5\d\d /, 'the forger is refused');
  assert.match(await ask(CLIENTS.listed), /^5\d\d /, 'the listed client is refused');
  assert.match(await ask(CLIENTS.xss), /^5\d\d /);
  const smallFirst = await ask(CLIENTS.small);
  assert.match(smallFirst, /^(DEFER_IF_PERMIT|4\d\d) /, `the small server is greylisted first: ${smallFirst}`);
  await ask(CLIENTS.provider);

  const browser = await chromium.launch({ executablePath: chromiumBin, args: CHROMIUM_ARGS });
  t.after(() => browser.close());
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const scriptErrors: string[] = [];
  page.on('pageerror', (e) => scriptErrors.push(e.message));
  page.on('console', (msg) => {
    // Answers with an error status (the wrong password's 401, a bad form's 400, the 404s) are meant; CSP violations and script errors are not.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) scriptErrors.push(msg.text());
  });
  page.on('dialog', (d) => {
    scriptErrors.push(`a dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  // Login: every page needs it; a wrong password is refused.
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login\?next=/);
  await page.fill('input[name=password]', 'wrong');
  await page.click('button[type=submit]');
  assert.match(await page.textContent('body') ?? '', /Wrong password or token/);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/`);

  // Overview: the numbers in the page, the chart drawn by the script (allowed by the CSP: it is served from here).
  const overview = (await page.textContent('main')) ?? '';
  assert.match(overview, /Decisions: \d+ in the last hour/);
  assert.match(overview, /192\.0\.2\.77|192\.0\.2\.200/);
  await page.waitForSelector('.chart canvas', { timeout: 15_000 });
  await shot('overview');

  // Why?: the forger's decision, its evidence and the rule's remedy; the script in its HELO and sender is text.
  await page.click('nav >> text=Why?');
  await page.fill('input[name=q]', '192.0.2.66');
  await page.click('form[role=search] button');
  const whyXss = (await page.textContent('main')) ?? '';
  assert.match(whyXss, /<img src=x onerror=alert\(1\)>/, 'shown as text');
  assert.equal(await page.locator('main img').count(), 0, 'no element made from the HELO');
  await page.fill('input[name=q]', '192.0.2.77');
  await page.click('form[role=search] button');
  const why = (await page.textContent('main')) ?? '';
  assert.match(why, /refused 5\d\d/);
  assert.match(why, /Question[\s\S]*Answer/);
  await shot('why');

  // Ban the small server from Why?; the policy server refuses it for the ban at once.
  await page.fill('input[name=q]', '203.0.113.5');
  await page.click('form[role=search] button');
  await page.click('button:has-text("Ban 203.0.113.5")');
  await page.waitForSelector('.notice.ok');
  assert.match((await page.textContent('.notice.ok')) ?? '', /banned 203\.0\.113\.5\/32/);
  const banned = await ask(CLIENTS.small);
  assert.match(banned, /^5\d\d .*banned/, `refused for the ban: ${banned}`);

  // Bans: the ban, recorded as made by the admin; lift it; the policy server no longer refuses it for the ban.
  await page.click('nav >> text=Bans');
  const bans = (await page.textContent('main')) ?? '';
  assert.match(bans, /203\.0\.113\.5\/32[\s\S]*manual[\s\S]*web:admin/);
  await shot('bans');
  await page.click('button:has-text("Lift ban on 203.0.113.5/32")');
  await page.waitForSelector('.notice.ok');
  assert.match((await page.textContent('.notice.ok')) ?? '', /lifted the ban on 203\.0\.113\.5\/32/);
  const lifted = await ask(CLIENTS.small);
  assert.doesNotMatch(lifted, /banned/, `no longer refused for the ban: ${lifted}`);

  // Greylist: the small server's triplet waits; release it, and its next attempt passes.
  await page.click('nav >> text=Greylist');
  assert.match((await page.textContent('main')) ?? '', /dave@small\.test/);
  await shot('greylist');
  await page.click('tr:has-text("dave@small.test") >> button:has-text("Release")');
  await page.waitForSelector('.notice.ok');
  const released = await ask(CLIENTS.small);
  assert.doesNotMatch(released, /^(DEFER_IF_PERMIT|4\d\d|5\d\d) /, `released: ${released}`);

  // Lists: allow-list a network with a reason and an expiry; a malformed one is refused and changes nothing.
  await page.click('nav >> text=Lists');
  await page.fill('input[name=list]', 'allow');
  await page.fill('input[name=entry]', '192.0.2.0/33');
  await page.click('form[action="/lists/add"] button');
  assert.match((await page.textContent('.notice.error')) ?? '', /prefix length|not a domain name/);
  await page.fill('input[name=list]', 'allow');
  await page.fill('input[name=entry]', '198.51.100.0/24');
  await page.fill('input[name=reason]', 'bigprovider outbound');
  await page.fill('input[name=expires]', '30d');
  await page.click('form[action="/lists/add"] button');
  await page.waitForURL(`${base}/lists/allow`);
  assert.match((await page.textContent('main')) ?? '', /198\.51\.100\.0\/24[\s\S]*web:admin: bigprovider outbound/);
  await page.click('text=All lists');
  await shot('lists');

  // Policy: the rules in force with their hits.
  await page.click('nav >> text=Policy');
  const policyPage = (await page.textContent('main')) ?? '';
  assert.match(policyPage, /rules, walked in this order/);
  assert.match(policyPage, /banned/);
  await shot('policy');

  // An unknown page; a forged change without the CSRF token.
  const nope = await page.goto(`${base}/no-such-page`);
  assert.equal(nope?.status(), 404);
  const forged = await page.request.post(`${base}/bans/add`, { form: { cidr: '192.0.2.99', reason: 'forged', duration: '1d' } });
  assert.equal(forged.status(), 403);
  assert.doesNotMatch(await ask({ ...CLIENTS.small, client_address: '192.0.2.99' }), /banned/, 'the forged ban was not made');

  assert.deepEqual(scriptErrors, [], 'no script errors, no CSP violations, no dialogs');
});
