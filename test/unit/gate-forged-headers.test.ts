// Forged result headers (RFC 8601 §5): a message that arrives with its own
// `Authentication-Results: <our authserv-id>; dmarc=pass` and
// `X-Frontline-SPF: pass` must reach the backend with ours only. The gate
// removes incoming Authentication-Results that claim our authserv-id (any
// case, after comments, quoted) and every header whose name is one of ours
// (headers.checks, headers.tag); other servers' results and the body stay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { startGate } from '../../src/gate/server.js';
import { stripOwnHeaders } from '../../src/policy/own-headers.js';
import { startSink } from '../helpers/smtp-sink.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const zone = new Zone({
  'spf-ok.test': [{ TXT: 'v=spf1 ip4:127.0.0.1 -all' }, { MX: [10, 'mx.spf-ok.test'] }],
  'mx.spf-ok.test': [{ A: '127.0.0.1' }],
});

const FORGED = [
  'Authentication-Results: gate.test; dmarc=pass header.from=bank.example',
  'Authentication-Results: GATE.TEST (the receiving gate);',
  '\tdkim=pass header.d=bank.example',
  'Authentication-Results: "gate.test" 1; spf=pass smtp.mailfrom=bank.example',
  'X-Frontline-SPF: pass (forged)',
  'x-frontline-tag: trusted sender',
  'X-Frontline-DKIM:pass',
  'Authentication-Results: mx.upstream.example; spf=pass smtp.mailfrom=spf-ok.test',
  'Authentication-Results: gate.test.evil.example; spf=pass',
  'From: alice@spf-ok.test',
  'To: bob@dest.test',
  'Subject: forged results',
  '',
  'Body line.',
  'X-Frontline-SPF: pass (in the body, text)',
  '',
].join('\r\n');

test('a message carrying forged Authentication-Results and X-Frontline-* reaches the backend with ours only', async () => {
  const cfg = parseConfig('my_networks: []\nheaders: { authserv_id: gate.test }\n', 'test.yaml');
  const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zone) });
  const sink = await startSink({ xclient: true });
  const logs = new PassThrough();
  const gate = await startGate({
    config: { ...cfg, gate: { hostname: 'gate.test', greet_wait_ms: 0 } },
    policy,
    logger: pino({ level: 'info' }, logs),
    listen: '127.0.0.1:0',
    backend: sink.address,
    resolver: new ZoneResolver(zone),
  });
  try {
    const c = await SmtpTalk.connect(gate.port);
    await c.reply();
    await c.command('EHLO mx.spf-ok.test');
    assert.equal((await c.command('MAIL FROM:<alice@spf-ok.test>')).code, 250);
    assert.equal((await c.command('RCPT TO:<bob@dest.test>')).code, 250);
    assert.equal((await c.command('DATA')).code, 354);
    const r = await c.command(`${FORGED}.`);
    assert.equal(r.code, 250, r.text);
    c.close();
    assert.equal(sink.messages.length, 1);
    const data = sink.messages[0].data.toString('latin1');
    const [head, body] = data.split('\r\n\r\n');
    const fields = head.replace(/\r\n[ \t]+/g, ' ').split('\r\n');
    const ours = fields.filter((f) => /^Authentication-Results:\s*"?gate\.test"?[\s;(]/i.test(f));
    assert.equal(ours.length, 1, `one Authentication-Results of ours: ${JSON.stringify(fields)}`);
    assert.doesNotMatch(ours[0], /dmarc=pass header\.from=bank|bank\.example/, 'it is ours, not the forged one');
    assert.match(ours[0], /spf=pass/);
    const spf = fields.filter((f) => /^X-Frontline-SPF:/i.test(f));
    assert.equal(spf.length, 1, JSON.stringify(fields));
    assert.doesNotMatch(spf[0], /forged/);
    assert.ok(!fields.some((f) => /^X-Frontline-(Tag|DKIM):/i.test(f)), 'no forged tag or DKIM header');
    assert.ok(fields.includes('Authentication-Results: mx.upstream.example; spf=pass smtp.mailfrom=spf-ok.test'), 'another server\'s results stay');
    assert.ok(fields.includes('Authentication-Results: gate.test.evil.example; spf=pass'), 'another authserv-id stays');
    assert.ok(fields.includes('Subject: forged results'));
    assert.match(body, /^Body line\.\r\nX-Frontline-SPF: pass \(in the body, text\)\r\n$/, 'the body is untouched');
    const lines = ((logs.read() as Buffer | null)?.toString() ?? '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const removed = lines.find((l) => l.msg === 'removed forged result headers');
    assert.ok(removed, 'a log line says what was removed');
    assert.deepEqual(removed.removed, ['Authentication-Results', 'Authentication-Results', 'Authentication-Results', 'X-Frontline-SPF', 'x-frontline-tag', 'X-Frontline-DKIM']);
  } finally {
    await gate.close();
    await sink.close();
  }
});

test('stripOwnHeaders: nothing of ours, the same buffer back (no copy); a message without a body; headers only', () => {
  const own = { authservId: 'gate.test', names: ['X-Frontline-SPF', 'X-Frontline-Tag'] };
  const clean = Buffer.from('From: a@example.com\r\nAuthentication-Results: other.example; spf=pass\r\n\r\nX-Frontline-SPF: body\r\n');
  const r = stripOwnHeaders(clean, own);
  assert.equal(r.message, clean);
  assert.deepEqual(r.removed, []);
  const headersOnly = Buffer.from('X-Frontline-Tag: x\r\n\tfolded\r\nSubject: s\r\n');
  assert.equal(stripOwnHeaders(headersOnly, own).message.toString(), 'Subject: s\r\n');
  const bodyOnly = Buffer.from('\r\nX-Frontline-Tag: x\r\n');
  assert.equal(stripOwnHeaders(bodyOnly, own).message, bodyOnly);
  const last = Buffer.from('Subject: s\r\nX-Frontline-SPF: pass\r\n\r\nbody\r\n');
  assert.equal(stripOwnHeaders(last, own).message.toString(), 'Subject: s\r\n\r\nbody\r\n');
});
