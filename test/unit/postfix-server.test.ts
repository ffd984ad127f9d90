import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { PolicyServer, type PolicyDecider, type PolicyServerOptions } from '../../src/postfix/policy-server.js';
import type { Envelope, Stage, Verdict } from '../../src/core/types.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/index.js';

/** A logger whose JSON lines land in `lines`. */
function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A stand-in policy: the sender's local part says what to do. */
class StubPolicy implements PolicyDecider {
  transactions = 0;
  calls: Array<{ tx: number; stage: Stage; env: Envelope }> = [];
  transaction() {
    const tx = ++this.transactions;
    return {
      evaluate: async (stage: Stage, env: Envelope): Promise<Verdict> => {
        this.calls.push({ tx, stage, env });
        const local = (env.from ?? '').split('@')[0];
        const base: Verdict = { action: 'continue', headers: [], rule: 'default', stage, evidence: [{ check: 'spf', result: 'pass', detail: 'stub', ms: 0 }] };
        if (local.startsWith('slow')) await new Promise((r) => setTimeout(r, Number(local.slice(4)) || 50));
        if (local === 'hang') await new Promise(() => undefined);
        if (local === 'boom') throw new Error('bug in a check');
        if (local === 'reject') return { ...base, action: 'reject', code: 554, status: '5.7.1', text: `no from ${env.clientIp}`, rule: 'sender-authorised' };
        if (local === 'defer') return { ...base, action: 'defer', code: 451, status: '4.4.3', text: 'temporary failure: DNS', rule: 'sender-authorised' };
        return {
          ...base,
          action: local === 'accept' ? 'accept' : 'continue',
          rule: local === 'accept' ? 'authenticated' : 'default',
          headers: [
            ['X-Frontline-SPF', 'pass (stub)'],
            ['Authentication-Results', 'mx.test; spf=pass smtp.mailfrom=example.com'],
          ],
        };
      },
    };
  }
}

async function startServer(over: Partial<PolicyServerOptions> = {}) {
  const policy = new StubPolicy();
  const { logger, lines } = captureLogger();
  const server = new PolicyServer({ policy, logger, acceptReply: 'DUNNO', onFault: 'defer', ...over });
  const addr = await server.listenTcp('127.0.0.1', 0);
  return { server, policy, lines, target: { host: '127.0.0.1', port: addr.port } };
}

describe('PolicyServer over TCP (stub policy)', () => {
  let ctx: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    ctx = await startServer({ decisionTimeoutMs: 300 });
  });
  after(async () => {
    await ctx.server.close();
  });

  test('reject, defer and continue verdicts become Postfix actions', async () => {
    const c = await PolicyClient.connect(ctx.target);
    assert.equal(await c.ask(rcptRequest({ sender: 'reject@example.com', instance: 'r1' })), '554 5.7.1 no from 192.0.2.1');
    assert.equal(await c.ask(rcptRequest({ sender: 'defer@example.com', instance: 'r2' })), '451 4.4.3 temporary failure: DNS');
    assert.match(await c.ask(rcptRequest({ sender: 'x@example.com', instance: 'r3' })), /^PREPEND Authentication-Results: /);
    await c.close();
  });

  test('each header of a message is prepended once: Authentication-Results first, then the others, then DUNNO', async () => {
    const c = await PolicyClient.connect(ctx.target);
    const ask = (rcpt: string, instance = 'm1') => c.ask(rcptRequest({ sender: 'x@example.com', recipient: rcpt, instance }));
    assert.equal(await ask('a@dest.example'), 'PREPEND Authentication-Results: mx.test; spf=pass smtp.mailfrom=example.com');
    assert.equal(await ask('b@dest.example'), 'PREPEND X-Frontline-SPF: pass (stub)');
    assert.equal(await ask('c@dest.example'), 'DUNNO');
    assert.equal(await ask('d@dest.example', 'm2'), 'PREPEND Authentication-Results: mx.test; spf=pass smtp.mailfrom=example.com');
    await c.close();
  });

  test('one policy transaction per message; recipients accumulate', async () => {
    const c = await PolicyClient.connect(ctx.target);
    const before = ctx.policy.transactions;
    await c.ask(rcptRequest({ sender: 'x@example.com', recipient: 'a@d.example', instance: 't1' }));
    await c.ask(rcptRequest({ sender: 'x@example.com', recipient: 'b@d.example', instance: 't1' }));
    await c.ask(rcptRequest({ sender: 'x@example.com', recipient: '', protocol_state: 'DATA', recipient_count: '2', instance: 't1' }));
    await c.ask(rcptRequest({ sender: 'x@example.com', recipient: 'c@d.example', instance: 't2' }));
    assert.equal(ctx.policy.transactions - before, 2);
    const last = ctx.policy.calls.slice(-4);
    assert.deepEqual(last.map((k) => k.env.rcpts), [['a@d.example'], ['a@d.example', 'b@d.example'], ['a@d.example', 'b@d.example'], ['c@d.example']]);
    assert.deepEqual(last.map((k) => k.stage), ['rcpt', 'rcpt', 'data', 'rcpt']);
    assert.equal(last[0].tx, last[2].tx);
    assert.notEqual(last[0].tx, last[3].tx);
    await c.close();
  });

  test('a transaction survives a reconnect (same instance on a new connection)', async () => {
    const a = await PolicyClient.connect(ctx.target);
    await a.ask(rcptRequest({ sender: 'x@example.com', recipient: 'a@d.example', instance: 'rc1' }));
    await a.close();
    const b = await PolicyClient.connect(ctx.target);
    assert.equal(await b.ask(rcptRequest({ sender: 'x@example.com', recipient: 'b@d.example', instance: 'rc1' })), 'PREPEND X-Frontline-SPF: pass (stub)');
    assert.deepEqual(ctx.policy.calls.at(-1)?.env.rcpts, ['a@d.example', 'b@d.example']);
    await b.close();
  });

  test('a reconnect takes up the transaction of a connection not yet seen to close; each connection holds one transaction', async () => {
    const before = ctx.server.stats.openTransactions;
    const a = await PolicyClient.connect(ctx.target);
    await a.ask(rcptRequest({ sender: 'x@example.com', recipient: 'a@d.example', instance: 'rc2' }));
    assert.equal(ctx.server.stats.openTransactions, before + 1);
    // The same message's next request on a new connection while the first is still open.
    const b = await PolicyClient.connect(ctx.target);
    await b.ask(rcptRequest({ sender: 'x@example.com', recipient: 'b@d.example', instance: 'rc2' }));
    assert.deepEqual(ctx.policy.calls.at(-1)?.env.rcpts, ['a@d.example', 'b@d.example']);
    assert.equal(ctx.server.stats.openTransactions, before + 1, 'moved, not copied');
    // A new instance on a connection ends its message: still one transaction per connection.
    await b.ask(rcptRequest({ sender: 'x@example.com', recipient: 'c@d.example', instance: 'rc3' }));
    assert.deepEqual(ctx.policy.calls.at(-1)?.env.rcpts, ['c@d.example']);
    assert.equal(ctx.server.stats.openTransactions, before + 1);
    await a.close();
    await b.close();
    // b's transaction is parked for a reconnect; a had none left.
    for (let i = 0; i < 50 && ctx.server.stats.openTransactions !== before + 1; i++) await new Promise((r) => setTimeout(r, 10));
    const c = await PolicyClient.connect(ctx.target);
    await c.ask(rcptRequest({ sender: 'x@example.com', recipient: 'd@d.example', instance: 'rc3' }));
    assert.deepEqual(ctx.policy.calls.at(-1)?.env.rcpts, ['c@d.example', 'd@d.example']);
    await c.close();
  });

  test('pipelined requests are answered in order even when the first is slow', async () => {
    const c = await PolicyClient.connect(ctx.target);
    const answers = await Promise.all([
      c.ask(rcptRequest({ sender: 'slow80@example.com', instance: 'p1' })),
      c.ask(rcptRequest({ sender: 'reject@example.com', instance: 'p2' })),
      c.ask(rcptRequest({ sender: 'defer@example.com', instance: 'p3' })),
    ]);
    assert.match(answers[0], /^PREPEND/);
    assert.match(answers[1], /^554 /);
    assert.match(answers[2], /^451 /);
    await c.close();
  });

  test('a failing policy answers 451 4.3.0, never 5xx; a hung one times out the same way', async () => {
    const c = await PolicyClient.connect(ctx.target);
    assert.equal(await c.ask(rcptRequest({ sender: 'boom@example.com' })), '451 4.3.0 Temporary policy service failure, try again later');
    assert.equal(await c.ask(rcptRequest({ sender: 'hang@example.com' })), '451 4.3.0 Temporary policy service failure, try again later');
    assert.ok(ctx.lines.some((l) => l.msg === 'policy fault' && l.level === 50));
    await c.close();
  });

  test('malformed and oversized requests get DEFER_IF_PERMIT; the connection stays usable', async () => {
    const c = await PolicyClient.connect(ctx.target);
    assert.equal(await c.askRaw('this is not a policy request\n\n'), 'DEFER_IF_PERMIT Service temporarily unavailable');
    assert.equal(await c.askRaw(`request=smtpd_access_policy\nsender=${'x'.repeat(20000)}\n\n`), 'DEFER_IF_PERMIT Service temporarily unavailable');
    const big = Array.from({ length: 5 }, (_, i) => `a${i}=${'y'.repeat(4000)}\n`).join('');
    assert.equal(await c.askRaw(`request=smtpd_access_policy\n${big}\n`), 'DEFER_IF_PERMIT Service temporarily unavailable');
    assert.equal(await c.ask(rcptRequest({ client_address: 'not-an-ip' })), 'DEFER_IF_PERMIT Service temporarily unavailable');
    assert.equal(await c.ask(rcptRequest({ request: 'something_else' })), 'DEFER_IF_PERMIT Service temporarily unavailable');
    assert.equal(await c.ask(rcptRequest({ sender: 'reject@example.com' })), '554 5.7.1 no from 192.0.2.1');
    assert.ok(ctx.lines.some((l) => l.problem === 'line-too-long'));
    assert.ok(ctx.lines.some((l) => l.problem === 'request-too-large'));
    await c.close();
  });

  test('client_address=unknown and unhandled states are DUNNO; ::ffff: addresses are IPv4', async () => {
    const c = await PolicyClient.connect(ctx.target);
    assert.equal(await c.ask(rcptRequest({ client_address: 'unknown' })), 'DUNNO');
    assert.equal(await c.ask(rcptRequest({ protocol_state: 'NOOP' })), 'DUNNO');
    assert.equal(await c.ask(rcptRequest({ sender: 'reject@example.com', client_address: '::ffff:198.51.100.4' })), '554 5.7.1 no from 198.51.100.4');
    await c.close();
  });

  test('every decision is one structured log line', async () => {
    const c = await PolicyClient.connect(ctx.target);
    await c.ask(rcptRequest({ sender: 'reject@example.com', helo_name: 'logged.example', recipient: 'who@d.example', instance: 'log1' }));
    const line = ctx.lines.find((l) => l.msg === 'decision' && l.helo === 'logged.example');
    assert.ok(line);
    assert.equal(line.client, '192.0.2.1');
    assert.equal(line.sender, 'reject@example.com');
    assert.equal(line.rcpt, 'who@d.example');
    assert.equal(line.stage, 'rcpt');
    assert.equal(line.action, '554 5.7.1 no from 192.0.2.1');
    assert.equal(line.rule, 'sender-authorised');
    assert.deepEqual(line.evidence, { spf: 'pass' });
    assert.deepEqual(line.details, ['spf: stub']);
    assert.equal(typeof line.ms, 'number');
    await c.close();
  });

  test('a request sent before a half-close is still answered', async () => {
    const s = net.connect(ctx.target);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (got += d));
    s.end('request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nsender=reject@example.com\n\n');
    await new Promise((r) => s.on('close', r));
    assert.equal(got, 'action=554 5.7.1 no from 192.0.2.1\n\n');
  });
});

describe('PolicyServer limits and lifecycle', () => {
  test('accept_reply OK answers OK (the header waits for a reply that can carry it)', async () => {
    const ctx = await startServer({ acceptReply: 'OK' });
    const c = await PolicyClient.connect(ctx.target);
    assert.equal(await c.ask(rcptRequest({ sender: 'accept@example.com', instance: 'ok1' })), 'OK');
    assert.match(await c.ask(rcptRequest({ sender: 'accept@example.com', protocol_state: 'DATA', recipient: '', instance: 'ok1' })), /^OK$/);
    await c.close();
    await ctx.server.close();
  });

  test('on_fault dunno answers DUNNO to faults and bad requests', async () => {
    const ctx = await startServer({ onFault: 'dunno' });
    const c = await PolicyClient.connect(ctx.target);
    assert.equal(await c.ask(rcptRequest({ sender: 'boom@example.com' })), 'DUNNO');
    assert.equal(await c.askRaw('junk\n\n'), 'DUNNO');
    await c.close();
    await ctx.server.close();
  });

  test('a request that never ends is cut off', async () => {
    const ctx = await startServer({ maxRequestBytes: 1024 });
    const c = await PolicyClient.connect(ctx.target);
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 20 && !c.socket.destroyed; i++) c.socket.write(chunk);
    await c.closed;
    assert.ok(ctx.lines.some((l) => l.msg === 'policy connection closed: request never ended'));
    await ctx.server.close();
  });

  test('idle connections are closed', async () => {
    const ctx = await startServer({ idleTimeoutS: 0.1 });
    const c = await PolicyClient.connect(ctx.target);
    const t0 = Date.now();
    await c.closed;
    assert.ok(Date.now() - t0 < 2000);
    await ctx.server.close();
  });

  test('open transactions are bounded', async () => {
    const ctx = await startServer({ maxTransactions: 3 });
    const c = await PolicyClient.connect(ctx.target);
    for (let i = 0; i < 10; i++) await c.ask(rcptRequest({ instance: `b${i}` }));
    assert.ok(ctx.server.stats.openTransactions <= 3);
    await c.close();
    await ctx.server.close();
  });

  test('expired transactions are forgotten', async () => {
    let now = 1_000_000;
    const ctx = await startServer({ clock: { now: () => now }, transactionTtlMs: 1000 });
    const a = await PolicyClient.connect(ctx.target);
    assert.match(await a.ask(rcptRequest({ instance: 'e1' })), /^PREPEND Authentication-Results/);
    await a.close();
    now += 5000;
    const b = await PolicyClient.connect(ctx.target);
    assert.match(await b.ask(rcptRequest({ instance: 'e1' })), /^PREPEND Authentication-Results/, 'a fresh transaction');
    await b.close();
    await ctx.server.close();
  });

  test('close() answers the request in flight, then closes', async () => {
    const ctx = await startServer();
    const c = await PolicyClient.connect(ctx.target);
    const answer = c.ask(rcptRequest({ sender: 'slow150@example.com' }));
    await new Promise((r) => setTimeout(r, 30));
    const closing = ctx.server.close();
    assert.match(await answer, /^PREPEND/);
    await closing;
    await c.closed;
    await assert.rejects(PolicyClient.connect(ctx.target));
  });
});

describe('PolicyServer on a unix socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-sock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('answers over a unix socket and replaces a stale socket file', async () => {
    const path = join(dir, 'policy.sock');
    // A stale socket: bound by a server that is gone.
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(path, r));
    await new Promise<void>((r) => {
      // Closing normally unlinks; simulate a crash by keeping the file.
      (stale as unknown as { _handle: { close(): void } })._handle.close();
      r();
    });
    const { logger } = captureLogger();
    const server = new PolicyServer({ policy: new StubPolicy(), logger, acceptReply: 'DUNNO', onFault: 'defer' });
    await server.listenUnix(path);
    const c = await PolicyClient.connect({ path });
    assert.equal(await c.ask(rcptRequest({ sender: 'reject@example.com' })), '554 5.7.1 no from 192.0.2.1');
    await c.close();
    // A second server must not steal a live socket.
    const other = new PolicyServer({ policy: new StubPolicy(), logger, acceptReply: 'DUNNO', onFault: 'defer' });
    await assert.rejects(other.listenUnix(path), /another process is listening/);
    await server.close();
  });

  test('refuses to replace a file that is not a socket', async () => {
    const path = join(dir, 'not-a-socket');
    writeFileSync(path, 'data');
    const { logger } = captureLogger();
    const server = new PolicyServer({ policy: new StubPolicy(), logger, acceptReply: 'DUNNO', onFault: 'defer' });
    await assert.rejects(server.listenUnix(path), /not a socket/);
  });
});

describe('PolicyServer with the real policy on the fixture world (in-memory DNS)', () => {
  const world = loadZoneYaml(new URL('../fixtures/world.yaml', import.meta.url).pathname);
  let server: PolicyServer;
  let target: { host: string; port: number };
  let lines: Array<Record<string, unknown>>;
  before(async () => {
    const config = parseConfig('headers:\n  authserv_id: mx.dest.test\nchecks:\n  dnsbl:\n    zones: ["bl.test=127.0.0.[2..11]"]\n', 'test.yaml');
    const cap = captureLogger();
    lines = cap.lines;
    const policy = Policy.fromConfig(config, { resolver: new ZoneResolver(world), logger: cap.logger });
    server = new PolicyServer({ policy, logger: cap.logger, acceptReply: 'DUNNO', onFault: 'defer' });
    const addr = await server.listenTcp('127.0.0.1', 0);
    target = { host: '127.0.0.1', port: addr.port };
  });
  after(() => server.close());

  test('the OR rule over the protocol: provider accepted with headers once, forger refused, faults 4xx, listed refused, auth passed', async () => {
    const c = await PolicyClient.connect(target);
    const provider = { client_address: '198.51.100.10', helo_name: 'out-of-sync.bigprovider.test', sender: 'alice@bigprovider.test', instance: 'w1' };
    assert.match(await c.ask(rcptRequest({ ...provider, recipient: 'a@dest.test' })), /^PREPEND Authentication-Results: mx\.dest\.test; spf=pass smtp\.mailfrom=bigprovider\.test/);
    assert.match(await c.ask(rcptRequest({ ...provider, recipient: 'b@dest.test' })), /^PREPEND X-Frontline-SPF: pass /);
    assert.match(await c.ask(rcptRequest({ ...provider, recipient: '', protocol_state: 'DATA', recipient_count: '2' })), /^(PREPEND X-Frontline-|DUNNO$)/);

    const forger = await c.ask(rcptRequest({ client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test', instance: 'w2' }));
    assert.match(forger, /^554 5\.7\.1 rejected by policy: bigisp\.test did not authorise 192\.0\.2\.77/);

    const slow = await c.ask(rcptRequest({ client_address: '192.0.2.88', helo_name: 'mail.slowdns.test', sender: 'carol@slowdns.test', instance: 'w3' }));
    assert.match(slow, /^4\d\d 4\./);

    const listed = await c.ask(rcptRequest({ client_address: '192.0.2.200', helo_name: 'mail.legit.test', sender: 'd@legit.test', instance: 'w4' }));
    assert.match(listed, /^554 5\.7\.1 .*bl\.test/);

    const auth = await c.ask(rcptRequest({ client_address: '192.0.2.99', helo_name: 'laptop', sender: 'joe@bigisp.test', sasl_method: 'PLAIN', sasl_username: 'joe', instance: 'w5' }));
    assert.match(auth, /^(DUNNO|PREPEND )/);
    const d = lines.find((l) => l.msg === 'decision' && l.client === '192.0.2.99');
    assert.equal(d?.rule, 'authenticated');

    const v6 = await c.ask(rcptRequest({ client_address: '2001:db8:25::25', helo_name: 'mx6.bigprovider.test', sender: 'alice@bigprovider.test', instance: 'w6' }));
    assert.match(v6, /spf=pass/);

    const bounce = await c.ask(rcptRequest({ client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: '', instance: 'w7' }));
    assert.doesNotMatch(bounce, /^5/, 'a single-recipient bounce is not refused by the OR rule');
    await c.close();
  });
});
