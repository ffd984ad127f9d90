// The dashboard in a real browser: Debian's Chromium driven by
// playwright-core (no browser download) against a real `frontline serve`
// fed by the e2e world: swaks plays the fixture world's clients
// (test/fixtures/world.yaml) through a real Postfix, which asks serve
// (check_policy_service), so every decision the browser clicks through came
// from real traffic. It logs in, visits every page, releases a greylisted
// triplet and sees Postfix accept that sender's retry, bans the sender from
// Why? and sees Postfix refuse it for the ban, lifts the ban from Bans and
// sees Postfix accept it again (delivered), allow-lists, and checks that the
// chart script runs under the CSP. Screenshots go to $DASHBOARD_SCREENSHOTS
// (docs/dashboard/ for docs/dashboard.md) or a temporary directory.
//
// Run: npm run test:e2e  (needs chromium, root, postfix and swaks; skipped
// loudly without them, failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { startServe } from '../helpers/cli.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/ports.js';
import { cleanupStack, requirePostfixPeers, startPostfix } from '../helpers/postfix.js';
import { startSink } from '../helpers/smtp-sink.js';
import { sendWithSwaks, type SwaksResult, type SwaksSender } from '../helpers/swaks.js';
import { hashPassword } from '../../src/report/web/auth.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const PASSWORD = 'a long dashboard passphrase';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** The fixture world's clients, as swaks plays them to Postfix (XCLIENT). */
const CLIENTS = {
  provider: { ip: '198.51.100.10', name: 'mta10.outbound.bigprovider-mail.test', reverseName: 'mta10.outbound.bigprovider-mail.test', helo: 'out-of-sync.bigprovider.test', from: 'alice@bigprovider.test', to: 'user@dest.test' },
  forger: { ip: '192.0.2.77', reverseName: 'cpe-192-0-2-77.cable.homenet.test', helo: 'DESKTOP-4F2K9', from: 'bob@bigisp.test', to: 'user@dest.test' },
  listed: { ip: '192.0.2.200', helo: 'mail.bigprovider.test', from: 'alice@bigprovider.test', to: 'user@dest.test' },
  small: { ip: '203.0.113.5', name: 'mail.small.test', reverseName: 'mail.small.test', helo: 'mail.small.test', from: 'dave@small.test', to: 'user@dest.test' },
  // Script in the HELO (Postfix hands it on as ?img?src=x…) and in a quoted local part (handed on without the quotes).
  xss: { ip: '192.0.2.66', helo: '<img src=x onerror=alert(1)>', from: '"<script>alert(2)</script>"@bigisp.test', to: 'user@dest.test' },
} satisfies Record<string, SwaksSender>;

test('the dashboard in Chromium against frontline serve fed by Postfix and swaks: every page, a ban made and lifted from the UI as Postfix sees it', { timeout: 300_000 }, async (t) => {
  const chromiumBin = requireBinary('/usr/bin/chromium', t);
  if (!chromiumBin) return;
  const peers = requirePostfixPeers(t);
  if (!peers) return;
  const cleanup = cleanupStack(t);
  const dir = mkdtempSync(join(tmpdir(), 'fl-dash-e2e-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const shots = process.env.DASHBOARD_SCREENSHOTS ? resolve(process.env.DASHBOARD_SCREENSHOTS) : join(dir, 'shots');
  mkdirSync(shots, { recursive: true });

  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  const config = join(dir, 'frontline.yaml');
  writeFileSync(
    config,
    [
      'dns:',
      '  timeout_ms: 400',
      '  retries: 0',
      'headers:',
      '  authserv_id: mx.dest.test',
      'checks:',
      '  dnsbl:',
      '    zones: ["bl.test=127.0.0.[2..11]"]',
      '    timeout_ms: 1000',
      'greylist:',
      '  enabled: true',
      'postfix:',
      '  accept_reply: DUNNO',
      'web:',
      '  auth:',
      `    password_hash: "${await hashPassword(PASSWORD, 12)}"`,
      '',
    ].join('\n'),
  );
  const serve = await startServe(['-c', config, '--web-listen', '127.0.0.1:0', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data')], { timeoutMs: 60_000 });
  cleanup.push(() => serve.stop());
  const m = /web (http:\/\/127\.0\.0\.1:\d+)/.exec(serve.stderr());
  assert.ok(m, serve.stderr());
  const base = m[1];

  const smtpPort = await freePort();
  const postfix = await startPostfix({
    postfixBin: peers.postfix,
    smtpPort,
    relayDomains: ['dest.test'],
    sinkPort: sink.port,
    mainCf: {
      smtpd_recipient_restrictions: `reject_unauth_destination, check_policy_service inet:127.0.0.1:${serve.port}`,
      smtpd_policy_service_timeout: '30s',
      smtpd_policy_service_default_action: '451 4.3.5 policy service unavailable',
    },
  });
  cleanup.push(() => postfix.stop());
  const debug = (r: SwaksResult) => `swaks exit ${r.code}\n${r.transcript}\n--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${serve.stderr()}`;
  // Each message its own subject, to find it in the mailbox.
  let message = 0;
  const send = async (c: SwaksSender): Promise<SwaksResult & { subject: string }> => {
    const subject = `dashboard e2e ${++message}`;
    return { ...(await sendWithSwaks(peers.swaks, smtpPort, { ...c, subject })), subject };
  };
  const refusedAtRcpt = (r: SwaksResult, why: RegExp) => {
    // swaks exits 24 when the recipient is refused; the reply is Postfix's, from the policy server's answer.
    assert.equal(r.code, 24, debug(r));
    assert.match(r.transcript, why, debug(r));
  };
  const delivered = async (subject: string) => {
    for (let i = 0; i < 300 && !sink.messages.some((x) => x.data.toString().includes(`Subject: ${subject}`)); i++) await new Promise((r) => setTimeout(r, 100));
    return sink.messages.some((x) => x.data.toString().includes(`Subject: ${subject}`));
  };
  const accepted = async (c: SwaksSender, what: string) => {
    const r = await send(c);
    assert.equal(r.code, 0, `${what}: ${debug(r)}`);
    assert.match(r.transcript, /250 2\.0\.0 Ok: queued as/, debug(r));
    assert.ok(await delivered(r.subject), `${what}: delivered\n${debug(r)}`);
  };

  refusedAtRcpt(await send(CLIENTS.forger), /<\*\* +5\d\d /);
  refusedAtRcpt(await send(CLIENTS.listed), /<\*\* +5\d\d /);
  refusedAtRcpt(await send(CLIENTS.xss), /<\*\* +5\d\d /);
  refusedAtRcpt(await send(CLIENTS.small), /<\*\* +450 4\.7\.1 .*Greylisted/);
  await send(CLIENTS.provider);

  const browser = await chromium.launch({ executablePath: chromiumBin, args: CHROMIUM_ARGS });
  cleanup.push(() => browser.close());
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
  assert.match(whyXss, /HELO \?img\?src=x\?onerror=alert\?1\?\?/, 'the HELO as Postfix passed it on');
  assert.match(whyXss, /Sender<script>alert\(2\)<\/script>@bigisp\.test/, 'the sender shown as text');
  assert.equal(await page.locator('main script').count(), 0, 'no element made from the sender');
  assert.equal(await page.locator('main img').count(), 0, 'no element made from the HELO');
  await page.fill('input[name=q]', '192.0.2.77');
  await page.click('form[role=search] button');
  const why = (await page.textContent('main')) ?? '';
  assert.match(why, /refused 5\d\d/);
  assert.match(why, /Question[\s\S]*Answer/);
  await shot('why');

  // Greylist: the small server's triplet waits; release it, and Postfix accepts its next attempt.
  await page.click('nav >> text=Greylist');
  assert.match((await page.textContent('main')) ?? '', /dave@small\.test/);
  await shot('greylist');
  await page.click('tr:has-text("dave@small.test") >> button:has-text("Release")');
  await page.waitForSelector('.notice.ok');
  await accepted(CLIENTS.small, 'released from the greylist');

  // Ban the small server from Why?; Postfix refuses it for the ban at once.
  await page.click('nav >> text=Why?');
  await page.fill('input[name=q]', '203.0.113.5');
  await page.click('form[role=search] button');
  await page.click('button:has-text("Ban 203.0.113.5")');
  await page.waitForSelector('.notice.ok');
  assert.match((await page.textContent('.notice.ok')) ?? '', /banned 203\.0\.113\.5\/32/);
  refusedAtRcpt(await send(CLIENTS.small), /<\*\* +5\d\d .*banned/);

  // Bans: the ban, recorded as made by the admin; lift it; Postfix accepts the small server again (delivered).
  await page.click('nav >> text=Bans');
  const bans = (await page.textContent('main')) ?? '';
  assert.match(bans, /203\.0\.113\.5\/32[\s\S]*manual[\s\S]*web:admin/);
  await shot('bans');
  await page.click('button:has-text("Lift ban on 203.0.113.5/32")');
  await page.waitForSelector('.notice.ok');
  assert.match((await page.textContent('.notice.ok')) ?? '', /lifted the ban on 203\.0\.113\.5\/32/);
  await accepted(CLIENTS.small, 'the ban lifted');
  // The Why? page tells the story Postfix saw: greylisted, accepted, refused for the ban, accepted.
  await page.click('nav >> text=Why?');
  await page.fill('input[name=q]', '203.0.113.5');
  await page.click('form[role=search] button');
  assert.equal(await page.locator('main article.decision').count(), 4, (await page.textContent('main')) ?? '');

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
  const forged = await page.request.post(`${base}/bans/add`, { form: { cidr: '203.0.113.99', reason: 'forged', duration: '1d' } });
  assert.equal(forged.status(), 403);
  const notBanned = await send({ ...CLIENTS.small, ip: '203.0.113.99' });
  assert.doesNotMatch(notBanned.transcript, /banned/, `the forged ban was not made: ${debug(notBanned)}`);

  assert.deepEqual(scriptErrors, [], 'no script errors, no CSP violations, no dialogs');
});
