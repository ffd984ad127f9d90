// gate.outbound (src/gate/session.ts, src/checks/batv-rewrite.ts): the gate
// in the outbound path signs the envelope sender of its own clients
// (authenticated through AUTH passthrough, or in my_networks) with BATV, and
// passes a recipient carrying one of our tags to the backend without it. A
// real gate in front of the test SMTP sink; what the sink received is what the
// backend MTA would have. The batv check and rule through the gate with the
// real policy: test/e2e/batv-gate.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { batvRewriter } from '../../src/checks/batv-rewrite.js';
import { batvSign, type BatvKeys } from '../../src/checks/batv-tag.js';
import { startGate } from '../../src/gate/server.js';
import { startTestGate } from '../helpers/gate-world.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import pino from 'pino';

const keys: BatvKeys = { current: { id: 1, secret: Buffer.from('gate-batv-key-0123456789') }, all: [{ id: 1, secret: Buffer.from('gate-batv-key-0123456789') }] };
const clock = new ManualClock(Date.UTC(2026, 11, 7, 12));
const batv = batvRewriter({ keys, domains: new Set(['dest.test']), validDays: 7, clock });
const MESSAGE = 'From: alice@dest.test\r\nTo: bob@remote.test\r\nSubject: hi\r\n\r\nhello\r\n';
const SIGNED = /^prvs=1\d{3}[0-9a-f]{6}=alice@dest\.test$/;

/** One transaction through the gate with SmtpTalk; each reply code asserted. */
async function send(port: number, from: string, rcpt: string, opts: { auth?: string } = {}): Promise<void> {
  const c = await SmtpTalk.connect(port);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command('EHLO client.example.com')).code, 250);
    if (opts.auth) {
      const r = await c.command(`AUTH PLAIN ${Buffer.from(`\0${opts.auth}`).toString('base64')}`);
      assert.equal(r.code, 235, r.text);
    }
    assert.equal((await c.command(`MAIL FROM:<${from}> SIZE=${MESSAGE.length} BODY=8BITMIME`)).code, 250);
    const r = await c.command(`RCPT TO:<${rcpt}>`);
    assert.equal(r.code, 250, r.text);
    assert.equal((await c.command('DATA')).code, 354);
    assert.equal((await c.command(`${MESSAGE}.`)).code, 250);
    await c.command('QUIT');
  } finally {
    c.close();
  }
}

describe('gate.outbound', () => {
  test('an authenticated client\'s sender in a signing domain is signed; an unauthenticated one, or another domain, is not', async () => {
    const t = await startTestGate({
      gate: { outbound: true, auth: 'passthrough', auth_requires_tls: false },
      sink: { users: { alice: 'secret' } },
      myNetworks: ['10.255.255.0/24'],
      batv,
    });
    try {
      await send(t.port, 'alice@dest.test', 'bob@remote.test', { auth: 'alice\0secret' });
      await send(t.port, 'alice@dest.test', 'bob@remote.test');
      await send(t.port, 'alice@other.test', 'bob@remote.test', { auth: 'alice\0secret' });
      await send(t.port, '', 'bob@remote.test', { auth: 'alice\0secret' });
      const already = batvSign('alice@dest.test', keys, clock.now(), 7);
      await send(t.port, already, 'bob@remote.test', { auth: 'alice\0secret' });
      const froms = t.sink.messages.map((m) => m.from);
      assert.match(froms[0], SIGNED, 'authenticated: signed');
      assert.deepEqual(froms.slice(1), ['alice@dest.test', 'alice@other.test', '', already], 'unauthenticated, another domain, a bounce, an already signed sender: unchanged');
      assert.deepEqual(t.sink.messages[0].rcpts, ['bob@remote.test']);
    } finally {
      await t.close();
    }
  });

  test('a my_networks client is signed without AUTH; the MAIL parameters reach the backend', async () => {
    const seen: string[] = [];
    const t = await startTestGate({
      gate: { outbound: true },
      sink: { extra: { onMailFrom: (addr, _s, cb) => (seen.push(JSON.stringify(addr.args)), cb()) } },
      myNetworks: ['127.0.0.0/8'],
      batv,
    });
    try {
      await send(t.port, 'alice@dest.test', 'bob@remote.test');
      assert.match(t.sink.messages[0].from, SIGNED);
      assert.match(seen.at(-1) ?? '', /"SIZE":"\d+".*"BODY":"8BITMIME"/);
    } finally {
      await t.close();
    }
  });

  test('a recipient with our tag reaches the backend untagged; a made-up tag is passed on as it is', async () => {
    const t = await startTestGate({ gate: { outbound: true }, myNetworks: ['10.255.255.0/24'], batv });
    try {
      const tagged = batvSign('alice@dest.test', keys, clock.now(), 7);
      await send(t.port, '', tagged);
      const forged = tagged.replace(/^(prvs=\d{4})[0-9a-f]{6}/, '$1abcdef');
      await send(t.port, '', forged);
      assert.deepEqual(
        t.sink.messages.map((m) => m.rcpts),
        [['alice@dest.test'], [forged]],
      );
    } finally {
      await t.close();
    }
  });

  test('off by default: nothing is rewritten', async () => {
    const t = await startTestGate({ myNetworks: ['127.0.0.0/8'], batv });
    try {
      const tagged = batvSign('alice@dest.test', keys, clock.now(), 7);
      await send(t.port, 'alice@dest.test', tagged);
      assert.equal(t.sink.messages[0].from, 'alice@dest.test');
      assert.deepEqual(t.sink.messages[0].rcpts, [tagged]);
    } finally {
      await t.close();
    }
  });

  test('gate.outbound without BATV keys does not start', async () => {
    await assert.rejects(
      startGate({ config: { outbound: true }, policy: { transaction: () => ({ evaluate: () => Promise.reject(new Error('unused')) }) }, logger: pino({ level: 'silent' }), listen: '127.0.0.1:0', backend: '127.0.0.1:1' }),
      /gate\.outbound needs batv\.enabled/,
    );
  });
});

