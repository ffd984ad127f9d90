// Limits on everything the client controls, the tarpit, STARTTLS and the trap
// listener.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import { startTestGate, scriptedPolicy } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { requireBinary } from '../helpers/binaries.js';

const MESSAGE = 'From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n';

async function session(port: number): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(port);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.command('EHLO client.example.com')).code, 250);
  return c;
}

/** A client at `ip` (TCP4 or TCP6 in a PROXY header from the trusted 127.0.0.1): its first reply's code. */
async function from(port: number, ip: string): Promise<{ c: SmtpTalk; code: number }> {
  const c = await SmtpTalk.connect(port);
  c.sendRaw(`PROXY ${ip.includes(':') ? 'TCP6' : 'TCP4'} ${ip} ${ip.includes(':') ? '::1' : '127.0.0.1'} 40000 25\r\n`);
  return { c, code: (await c.reply()).code };
}

async function transaction(c: SmtpTalk, rcpts = ['b@example.net']): Promise<void> {
  assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
  for (const r of rcpts) assert.equal((await c.command(`RCPT TO:<${r}>`)).code, 250);
  assert.equal((await c.command('DATA')).code, 354);
}

describe('gate limits: lines, recipients, size', () => {
  test('an over-long command line gets 500 5.5.2 and the session goes on', async () => {
    const t = await startTestGate();
    try {
      const c = await session(t.port);
      const r = await c.command(`NOOP ${'x'.repeat(3000)}`);
      assert.equal(r.code, 500);
      assert.match(r.text, /^5\.5\.2 /);
      assert.equal((await c.command('NOOP')).code, 250);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('recipients over the limit get 452 4.5.3', async () => {
    const t = await startTestGate({ gate: { limits: { recipients: 3 } } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      for (let i = 0; i < 3; i++) assert.equal((await c.command(`RCPT TO:<r${i}@example.net>`)).code, 250);
      const r = await c.command('RCPT TO:<r3@example.net>');
      assert.equal(r.code, 452);
      assert.match(r.text, /^4\.5\.3 /);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('SIZE is announced; a bigger SIZE= is refused 552 5.3.4, and so is a bigger message', async () => {
    const t = await startTestGate({ gate: { limits: { message_size: 1000 } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.ok((await c.command('EHLO client.example.com')).lines.includes('SIZE 1000'));
      const big = await c.command('MAIL FROM:<a@example.com> SIZE=5000');
      assert.equal(big.code, 552);
      assert.match(big.text, /^5\.3\.4 /);
      await transaction(c);
      c.sendRaw(`${MESSAGE}${'x'.repeat(80)}\r\n`.repeat(20) + '.\r\n');
      const r = await c.reply();
      assert.equal(r.code, 552);
      assert.match(r.text, /^5\.3\.4 /);
      assert.equal(t.sink.messages.length, 0);
      // The transaction is over; the next one works.
      await transaction(c);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a DATA line longer than 998 characters refuses the message', async () => {
    const t = await startTestGate();
    try {
      const c = await session(t.port);
      await transaction(c);
      c.sendRaw(`Subject: x\r\n\r\n${'y'.repeat(1200)}\r\n.\r\n`);
      const r = await c.reply();
      assert.equal(r.code, 554);
      assert.match(r.text, /^5\.6\.0 .*998/);
      assert.equal(t.sink.messages.length, 0);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a very long line without LF in DATA does not grow the buffer and is refused', async () => {
    const t = await startTestGate({ gate: { limits: { message_size: 200_000 } } });
    try {
      const c = await session(t.port);
      await transaction(c);
      c.sendRaw(`Subject: x\r\n\r\n${'z'.repeat(500_000)}\r\n.\r\n`);
      const r = await c.reply();
      assert.equal(r.code, 552);
      c.close();
    } finally {
      await t.close();
    }
  });
});

describe('gate limits: commands, errors, time', () => {
  test('too many commands: 421 and closed', async () => {
    const t = await startTestGate({ gate: { limits: { commands: 4 } } });
    try {
      const c = await session(t.port);
      for (let i = 0; i < 3; i++) assert.equal((await c.command('NOOP')).code, 250);
      const r = await c.command('NOOP');
      assert.equal(r.code, 421);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });

  test('too many errors: 421 and closed', async () => {
    const t = await startTestGate({ gate: { limits: { errors: 2 } } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('BOGUS')).code, 502);
      assert.equal((await c.command('BOGUS')).code, 502);
      assert.equal((await c.command('BOGUS')).code, 421);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });

  test('an idle client is cut off after the command timeout', async () => {
    const t = await startTestGate({ gate: { limits: { command_timeout_s: 1 } } });
    try {
      const c = await session(t.port);
      const r = await c.reply(3000);
      assert.equal(r.code, 421);
      assert.match(r.text, /^4\.4\.2 .*timeout/);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });

  test('a client slow to send DATA is cut off after the DATA timeout', async () => {
    const t = await startTestGate({ gate: { limits: { data_timeout_s: 1 } } });
    try {
      const c = await session(t.port);
      await transaction(c);
      c.sendRaw('Subject: slow\r\n');
      const r = await c.reply(3000);
      assert.equal(r.code, 421);
      assert.equal(t.sink.messages.length, 0);
    } finally {
      await t.close();
    }
  });

  test('under overload the command timeout shrinks', async () => {
    const t = await startTestGate({
      gate: { limits: { connections: 4, command_timeout_s: 300 }, overload: { fraction: 0.25, command_timeout_s: 1 } },
    });
    try {
      const a = await session(t.port);
      const b = await session(t.port);
      const t0 = Date.now();
      const r = await b.reply(4000);
      assert.equal(r.code, 421);
      assert.ok(Date.now() - t0 < 3000);
      a.close();
      b.close();
    } finally {
      await t.close();
    }
  });
});

describe('gate limits: connections', () => {
  test('per client IP at once: 421 4.7.0 over the limit', async () => {
    const t = await startTestGate({ gate: { limits: { connections_per_ip: 2 } } });
    try {
      const a = await session(t.port);
      const b = await session(t.port);
      const c = await SmtpTalk.connect(t.port);
      const r = await c.reply();
      assert.equal(r.code, 421);
      assert.match(r.text, /^4\.7\.0 /);
      assert.ok(await c.waitClosed());
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:limit-per_ip'));
      a.close();
      await a.waitClosed();
      await new Promise((res) => setTimeout(res, 50));
      const d = await SmtpTalk.connect(t.port);
      assert.equal((await d.reply()).code, 220, 'a slot is free again');
      b.close();
      d.close();
    } finally {
      await t.close();
    }
  });

  test('overall: 421 over the limit', async () => {
    const t = await startTestGate({ gate: { limits: { connections: 1 } } });
    try {
      const a = await session(t.port);
      const c = await SmtpTalk.connect(t.port);
      assert.equal((await c.reply()).code, 421);
      a.close();
    } finally {
      await t.close();
    }
  });

  test('new connections per IP per minute', async () => {
    const t = await startTestGate({ gate: { limits: { connections_per_ip_per_minute: 3 } } });
    try {
      for (let i = 0; i < 3; i++) {
        const c = await SmtpTalk.connect(t.port);
        assert.equal((await c.reply()).code, 220);
        c.close();
      }
      const c = await SmtpTalk.connect(t.port);
      assert.equal((await c.reply()).code, 421);
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:limit-rate'));
    } finally {
      await t.close();
    }
  });

  test('exempt networks skip the per-IP limits', async () => {
    const t = await startTestGate({ gate: { limits: { connections_per_ip: 1, exempt: ['127.0.0.0/8'] } } });
    try {
      const a = await session(t.port);
      const b = await session(t.port);
      a.close();
      b.close();
    } finally {
      await t.close();
    }
  });
});

// Issue 16, item 3: one host holds a whole IPv6 /64 and took a new address for
// each of its 60 connections; counted address by address, it was never over
// a per-IP limit.
describe('gate limits: an IPv6 client is its /64 (limits.ipv6_prefix), an IPv4 client its address (limits.ipv4_prefix)', () => {
  const proxied = { proxy_protocol: { trusted: ['127.0.0.1'] }, limits: { exempt: [] } };

  test('connections at once from different addresses of one /64 hit connections_per_ip', async () => {
    const t = await startTestGate({ gate: { ...proxied, limits: { ...proxied.limits, connections_per_ip: 3 } } });
    try {
      const open: SmtpTalk[] = [];
      for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:abcd:1234:5678:9abc']) {
        const { c, code } = await from(t.port, ip);
        assert.equal(code, 220);
        open.push(c);
      }
      const over = await from(t.port, '2001:db8:1:2:ffff::99');
      assert.equal(over.code, 421, 'a fourth address of the same /64 is the same client');
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:limit-per_ip' && /from 2001:db8:1:2::\/64 /.test(e.verdict.text ?? '')));
      const other = await from(t.port, '2001:db8:1:3::1');
      assert.equal(other.code, 220, 'the next /64 is another client');
      open[0].close();
      await open[0].waitClosed();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await from(t.port, '2001:db8:1:2::5')).code, 220, 'a slot of that /64 is free again');
      for (const c of [...open, other.c]) c.close();
    } finally {
      await t.close();
    }
  });

  test('connections per minute from different addresses of one /64 hit connections_per_ip_per_minute', async () => {
    const t = await startTestGate({ gate: { ...proxied, limits: { ...proxied.limits, connections_per_ip_per_minute: 3 } } });
    try {
      for (let i = 1; i <= 3; i++) {
        const { c, code } = await from(t.port, `2001:db8:aa:bb::${i}`);
        assert.equal(code, 220);
        c.close();
      }
      assert.equal((await from(t.port, '2001:db8:aa:bb:1:2:3:4')).code, 421);
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:limit-rate'));
    } finally {
      await t.close();
    }
  });

  test('ipv6_prefix: 128 counts each address alone; IPv4 is by address unless ipv4_prefix says otherwise', async () => {
    const alone = await startTestGate({ gate: { ...proxied, limits: { ...proxied.limits, connections_per_ip: 1, ipv6_prefix: 128 } } });
    try {
      const a = await from(alone.port, '2001:db8:1:2::1');
      const b = await from(alone.port, '2001:db8:1:2::2');
      assert.deepEqual([a.code, b.code], [220, 220]);
      const c = await from(alone.port, '192.0.2.1');
      const d = await from(alone.port, '192.0.2.2');
      assert.deepEqual([c.code, d.code], [220, 220], 'two IPv4 addresses of one /24: two clients');
      for (const x of [a, b, c, d]) x.c.close();
    } finally {
      await alone.close();
    }
    const v4net = await startTestGate({ gate: { ...proxied, limits: { ...proxied.limits, connections_per_ip: 1, ipv4_prefix: 24 } } });
    try {
      const c = await from(v4net.port, '192.0.2.1');
      assert.equal(c.code, 220);
      assert.equal((await from(v4net.port, '192.0.2.200')).code, 421, 'ipv4_prefix 24: one client per /24');
      assert.equal((await from(v4net.port, '192.0.3.1')).code, 220);
      c.c.close();
    } finally {
      await v4net.close();
    }
  });

  test('tarpit slots: one /64 holds at most tarpit.max_per_client of them', async () => {
    const tarpitAtMail = scriptedPolicy((stage) => (stage === 'mail' ? { action: 'tarpit', code: 450, status: '4.7.1', text: 'slow down', rule: 'tarpit-rule' } : undefined));
    const t = await startTestGate({ policy: tarpitAtMail, gate: { ...proxied, tarpit: { stutter_ms: 50, max_clients: 10, max_per_client: 1 } } });
    try {
      const a = await from(t.port, '2001:db8:1:2::1');
      assert.equal((await a.c.command('EHLO a.example', 10_000)).code, 250);
      const pending = a.c.command('MAIL FROM:<a@example.com>', 10_000);
      await new Promise((r) => setTimeout(r, 100));
      const b = await from(t.port, '2001:db8:1:2::2');
      assert.equal((await b.c.command('EHLO b.example')).code, 250);
      const t0 = Date.now();
      assert.equal((await b.c.command('MAIL FROM:<b@example.com>')).code, 450);
      assert.ok(Date.now() - t0 < 300, 'the same /64 gets no second slot: not stuttered');
      const c = await from(t.port, '2001:db8:9:9::1');
      assert.equal((await c.c.command('EHLO c.example')).code, 250);
      const t1 = Date.now();
      assert.equal((await c.c.command('MAIL FROM:<c@example.com>', 10_000)).code, 450);
      assert.ok(Date.now() - t1 >= 50 * 10, 'another /64 is tarpitted');
      await pending;
      for (const x of [a, b, c]) x.c.close();
    } finally {
      await t.close();
    }
  });
});

describe('gate tarpit', () => {
  const tarpitAtMail = scriptedPolicy((stage) => (stage === 'mail' ? { action: 'tarpit', code: 450, status: '4.7.1', text: 'slow down', rule: 'tarpit-rule' } : undefined));

  test('a tarpitted client gets its replies a byte at a time', async () => {
    const t = await startTestGate({ policy: tarpitAtMail, gate: { tarpit: { stutter_ms: 20 } } });
    try {
      const c = await session(t.port);
      const t0 = Date.now();
      const r = await c.command('MAIL FROM:<a@example.com>', 10_000);
      const first = Date.now() - t0;
      assert.equal(r.code, 450);
      assert.equal(r.text, '4.7.1 slow down');
      assert.ok(first >= 20 * 15, `reply took ${first} ms`);
      const t1 = Date.now();
      assert.equal((await c.command('NOOP', 10_000)).code, 250);
      assert.ok(Date.now() - t1 >= 20 * 10, 'later replies stutter too');
      c.close();
    } finally {
      await t.close();
    }
  });

  test('over the cap, a tarpit verdict gets a plain reply', async () => {
    const t = await startTestGate({ policy: tarpitAtMail, gate: { tarpit: { stutter_ms: 50, max_clients: 1 } } });
    try {
      const a = await session(t.port);
      const pending = a.command('MAIL FROM:<a@example.com>', 10_000);
      await new Promise((r) => setTimeout(r, 100));
      const b = await session(t.port);
      const t0 = Date.now();
      assert.equal((await b.command('MAIL FROM:<a@example.com>')).code, 450);
      assert.ok(Date.now() - t0 < 300, 'not stuttered');
      await pending;
      a.close();
      b.close();
    } finally {
      await t.close();
    }
  });
});

describe('gate STARTTLS', () => {
  let dir = '';
  let ok = false;
  before(() => {
    const openssl = requireBinary('openssl');
    if (!openssl) return;
    dir = mkdtempSync(join(tmpdir(), 'gate-tls-'));
    execFileSync(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=gate.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], {
      stdio: 'ignore',
    });
    ok = true;
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('nodemailer upgrades with STARTTLS and the message goes through', async (tc) => {
    if (!ok) return tc.skip('openssl missing');
    const t = await startTestGate({ gate: { tls: { cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.ok((await c.command('EHLO client.example.com')).lines.includes('STARTTLS'));
      c.close();
      const tr = nodemailer.createTransport({ host: '127.0.0.1', port: t.port, requireTLS: true, tls: { rejectUnauthorized: false }, name: 'client.example.com' });
      const info = await tr.sendMail({ envelope: { from: 'a@example.com', to: ['b@example.net'] }, raw: MESSAGE });
      assert.match(info.response, /^250 /);
      assert.equal(t.sink.messages.length, 1);
    } finally {
      await t.close();
    }
  });

  test('AUTH passthrough is offered only after STARTTLS', async (tc) => {
    if (!ok) return tc.skip('openssl missing');
    const t = await startTestGate({
      gate: { auth: 'passthrough', tls: { cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') } },
      sink: { users: { alice: 'secret' } },
    });
    try {
      const tr = nodemailer.createTransport({
        host: '127.0.0.1',
        port: t.port,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: 'alice', pass: 'secret' },
        name: 'client.example.com',
      });
      const info = await tr.sendMail({ envelope: { from: 'alice@example.com', to: ['b@example.net'] }, raw: MESSAGE });
      assert.match(info.response, /^250 /);
      const plain = await SmtpTalk.connect(t.port);
      await plain.reply();
      assert.ok(!(await plain.command('EHLO client.example.com')).lines.some((l) => l.startsWith('AUTH')));
      plain.close();
    } finally {
      await t.close();
    }
  });

  test('commands injected after STARTTLS in plaintext are dropped and fail the pipelining test', async (tc) => {
    if (!ok) return tc.skip('openssl missing');
    const t = await startTestGate({ gate: { door: { pipelining: 'drop' }, tls: { cert_file: join(dir, 'cert.pem'), key_file: join(dir, 'key.pem') } } });
    try {
      const c = await session(t.port);
      c.sendRaw('STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n');
      assert.equal((await c.reply()).code, 521);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });
});

describe('gate trap listener', () => {
  test('a client on the trap address gets 554, is reported, and the connection closes', async () => {
    const t = await startTestGate({ gate: { trap_listen: '127.0.0.1:0' } });
    try {
      assert.ok(t.gate.trapAddress);
      const port = Number(t.gate.trapAddress.split(':').pop());
      const c = await SmtpTalk.connect(port);
      const r = await c.reply();
      assert.equal(r.code, 554);
      assert.ok(await c.waitClosed());
      assert.deepEqual(t.trapped, ['127.0.0.1']);
      assert.deepEqual(t.banned, ['127.0.0.1'], 'an IPv4 client is banned by its address');
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:trap'));
    } finally {
      await t.close();
    }
  });

  test('an IPv6 scanner is banned by its /64 (limits.ipv6_prefix)', async () => {
    const t = await startTestGate({ gate: { trap_listen: '[::1]:0' } });
    try {
      const port = Number(t.gate.trapAddress?.split(':').pop());
      const c = await SmtpTalk.connect(port, '::1');
      assert.equal((await c.reply()).code, 554);
      assert.ok(await c.waitClosed());
      assert.deepEqual(t.trapped, ['::1']);
      assert.deepEqual(t.banned, ['::/64']);
    } finally {
      await t.close();
    }
  });
});
