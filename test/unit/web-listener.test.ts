// The web listener of `frontline serve`: on by flag, off by `off`, refused
// off loopback without web.auth, limits on what a client sends, the
// password hash and token credentials, and plugins registered through it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadZoneYaml, startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe } from '../helpers/cli.js';
import { parseConfig } from '../../src/config/load.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createLogger } from '../../src/log.js';
import { startWebServer, type WebPlugin } from '../../src/report/web/server.js';
import { hashPassword, isLoopbackHost, loadWebAuth, verifyPassword } from '../../src/report/web/auth.js';

const quiet = createLogger({ level: 'silent' });
const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;

let dns: FixtureDns;
let dir: string;
let store: Store;

before(async () => {
  dns = await startFixtureDns(loadZoneYaml(WORLD));
  dir = mkdtempSync(join(os.tmpdir(), 'fl-web-'));
  store = await openStore({ backend: 'sqlite', path: ':memory:' });
});
after(async () => {
  await store.close();
  await dns.close();
  rmSync(dir, { recursive: true, force: true });
});

const echo: WebPlugin = async (app, ctx) => {
  app.post('/echo', async (req) => ({ got: typeof req.body === 'string' ? req.body.length : JSON.stringify(req.body).length }));
  app.get('/private', async (req, reply) => {
    if (!(await ctx.authorized(req))) return reply.code(401).header('www-authenticate', 'Basic realm="frontline"').send('who are you?\n');
    return 'secret\n';
  });
};

describe('frontline serve --web-listen', () => {
  test('serves on the given address, says where, 404s an unknown page with the security headers', { timeout: 180_000 }, async (t) => {
    const s = await startServe(['--web-listen', '127.0.0.1:0', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'd1')], { timeoutMs: 120_000 });
    t.after(() => s.stop());
    const m = /web (http:\/\/127\.0\.0\.1:\d+)/.exec(s.stderr());
    assert.ok(m, s.stderr());
    const res = await fetch(`${m[1]}/no-such-page`);
    assert.equal(res.status, 404);
    // The dashboard's 404 page (src/report/web/dashboard) answers unknown GETs.
    assert.match(await res.text(), /There is no page at <code>\/no-such-page<\/code>/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src '(self|none)'/);
  });

  test('off: no web listener, nothing said about it', { timeout: 180_000 }, async (t) => {
    const s = await startServe(['--web-listen', 'off', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'd2')], { timeoutMs: 120_000 });
    t.after(() => s.stop());
    assert.doesNotMatch(s.stderr(), /web http/);
  });

  test('a non-loopback address without web.auth: serve refuses to start and says why', { timeout: 180_000 }, async () => {
    const r = await runCli(['serve', '--web-listen', '0.0.0.0:0', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'd3')], { timeoutMs: 120_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /web\.listen 0\.0\.0\.0:0 is not a loopback address: set web\.auth/);
  });

  test('a malformed --web-listen is a clear error', { timeout: 180_000 }, async () => {
    const r = await runCli(['serve', '--web-listen', 'everywhere', '--dns', dns.server, '--data-dir', join(dir, 'd4')], { timeoutMs: 120_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--web-listen: expected host:port \(e\.g\. 127\.0\.0\.1:8025\) or off, got "everywhere"/);
  });
});

describe('web config', () => {
  test('defaults: 127.0.0.1:8025, no auth, metrics on', () => {
    const c = parseConfig('', 'x.yaml');
    assert.equal(c.web.listen, '127.0.0.1:8025');
    assert.equal(c.web.auth, null);
    assert.equal(c.web.metrics, true);
  });
  test('errors name file:line:key', () => {
    assert.throws(() => parseConfig('web:\n  listen: nowhere\n', 'x.yaml'), /x\.yaml:2:\d+: web\.listen: expected host:port/);
    assert.throws(() => parseConfig('web:\n  auth:\n    password_hash: hunter2\n', 'x.yaml'), /x\.yaml:\d+:\d+: web\.auth/);
    assert.throws(() => parseConfig('web:\n  limits:\n    body_bytes: -1\n', 'x.yaml'), /web\.limits\.body_bytes/);
  });
  test('loopback or not', () => {
    for (const h of ['127.0.0.1', '127.8.9.1', '::1', 'localhost']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '192.0.2.1', 'mx.example', '::ffff:192.0.2.1']) assert.equal(isLoopbackHost(h), false, h);
  });
  test('a token file off loopback is loaded; a short one is refused', () => {
    const file = join(dir, 'token');
    writeFileSync(file, `${'a1'.repeat(16)}\n`);
    chmodSync(file, 0o600);
    const c = parseConfig(`web:\n  listen: 192.0.2.1:8025\n  auth:\n    token_file: ${file}\n`, 'x.yaml');
    assert.deepEqual(loadWebAuth(c.web), { kind: 'token', token: 'a1'.repeat(16) });
    writeFileSync(file, 'short\n');
    assert.throws(() => loadWebAuth(c.web), /at least 24 characters/);
    const missing = parseConfig(`web:\n  listen: 192.0.2.1:8025\n  auth:\n    token_file: ${join(dir, 'nope')}\n`, 'x.yaml');
    assert.throws(() => loadWebAuth(missing.web), /web\.auth\.token_file: cannot read/);
  });
});

describe('web credentials', () => {
  test('frontline web hash-password prints a hash that verifies the password and no other', { timeout: 180_000 }, async () => {
    const r = await runCli(['web', 'hash-password'], { input: 'correct horse battery\n' });
    assert.equal(r.code, 0, r.stderr);
    const hash = r.stdout.trim();
    assert.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$/);
    assert.equal(await verifyPassword('correct horse battery', hash), true);
    assert.equal(await verifyPassword('correct horse batterY', hash), false);
    const short = await runCli(['web', 'hash-password'], { input: 'abc\n' });
    assert.equal(short.code, 1);
    assert.match(short.stderr, /at least 8 characters/);
  });

  test('plugins: body limit (413), Basic password and Bearer token checks, 429 after repeated failures', { timeout: 180_000 }, async (t) => {
    const base = parseConfig('web:\n  limits:\n    body_bytes: 1024\n', 'x.yaml');
    const hash = await hashPassword('s3cret-pass', 10);
    const web = await startWebServer({ config: base, store, logger: quiet, auth: { kind: 'password', hash }, listen: '127.0.0.1:0', plugins: [echo] });
    t.after(() => web.close());
    const small = await fetch(`${web.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(100) }) });
    assert.equal(small.status, 200);
    const big = await fetch(`${web.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(5000) }) });
    assert.equal(big.status, 413);
    const basic = (p: string) => `Basic ${Buffer.from(`admin:${p}`).toString('base64')}`;
    assert.equal((await fetch(`${web.url}/private`)).status, 401);
    assert.equal((await fetch(`${web.url}/private`, { headers: { authorization: basic('s3cret-pass') } })).status, 200);
    assert.equal((await fetch(`${web.url}/private`, { headers: { authorization: basic('wrong') } })).status, 401);
    let last = 0;
    for (let i = 0; i < 25; i++) last = (await fetch(`${web.url}/private`, { headers: { authorization: basic(`wrong${i}`) } })).status;
    assert.equal(last, 429);

    const tokenWeb = await startWebServer({ config: base, store, logger: quiet, auth: { kind: 'token', token: 't'.repeat(32) }, listen: '127.0.0.1:0', plugins: [echo] });
    t.after(() => tokenWeb.close());
    assert.equal((await fetch(`${tokenWeb.url}/private`, { headers: { authorization: `Bearer ${'t'.repeat(32)}` } })).status, 200);
    assert.equal((await fetch(`${tokenWeb.url}/private`, { headers: { authorization: `Bearer ${'t'.repeat(31)}x` } })).status, 401);
  });
});
