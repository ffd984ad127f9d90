// The gate with the real policy engine over an in-memory DNS world: the OR
// rule's DKIM branch, decided at end of DATA because the gate sees the message.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { startGate } from '../../src/gate/server.js';
import { startSink } from '../helpers/smtp-sink.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { generateKey, plainMessage, signMessage } from '../helpers/signed-mail.js';

const key = generateKey();

// The client is 127.0.0.1 (not in my_networks here); dkim-only.test exists
// (it has an MX) but publishes no SPF, its MX is elsewhere and 127.0.0.1 has no
// PTR: only a DKIM signature of dkim-only.test can authorise the client.
const zone = new Zone({
  'dkim-only.test': [{ MX: [10, 'mx.dkim-only.test'] }],
  'mx.dkim-only.test': [{ A: '203.0.113.5' }],
  's._domainkey.dkim-only.test': [{ TXT: key.txt }],
});

async function setup() {
  const cfg = parseConfig('my_networks: []\nheaders: { authserv_id: gate.test }\n', 'test.yaml');
  const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zone) });
  const sink = await startSink({ xclient: true });
  const gate = await startGate({
    config: { ...cfg, gate: { hostname: 'gate.test', greet_wait_ms: 0 } },
    policy,
    logger: pino({ level: 'silent' }),
    listen: '127.0.0.1:0',
    backend: sink.address,
  });
  return {
    sink,
    gate,
    async close() {
      await gate.close();
      await sink.close();
    },
  };
}

async function send(port: number, message: Buffer, from = 'alice@dkim-only.test'): Promise<{ mail: number; rcpt: number; final: number; text: string }> {
  const c = await SmtpTalk.connect(port);
  await c.reply();
  await c.command('EHLO client.example.com');
  const mail = (await c.command(`MAIL FROM:<${from}>`)).code;
  const rcpt = (await c.command('RCPT TO:<bob@dest.test>')).code;
  assert.equal((await c.command('DATA')).code, 354);
  c.sendRaw(Buffer.concat([message, Buffer.from('.\r\n')]));
  const r = await c.reply();
  c.close();
  return { mail, rcpt, final: r.code, text: r.text };
}

describe('gate with the policy engine', () => {
  test('a message whose only credential is a valid DKIM signature is accepted, with Authentication-Results', async () => {
    const t = await setup();
    try {
      const signed = await signMessage(plainMessage({ from: 'alice@dkim-only.test', to: 'bob@dest.test', body: 'Signed.\r\n' }), { domain: 'dkim-only.test', key });
      const r = await send(t.gate.port, signed);
      assert.deepEqual([r.mail, r.rcpt, r.final], [250, 250, 250], r.text);
      const text = t.sink.messages[0].data.toString().replace(/\r\n[ \t]+/g, ' ');
      const ar = /^Authentication-Results: (.*)$/m.exec(text)?.[1] ?? '';
      assert.match(ar, /^gate\.test; /);
      assert.match(ar, /dkim=pass [^;]*header\.d=dkim-only\.test/);
    } finally {
      await t.close();
    }
  });

  test('the same message with a modified body is refused 554 at end of DATA', async () => {
    const t = await setup();
    try {
      const signed = await signMessage(plainMessage({ from: 'alice@dkim-only.test', to: 'bob@dest.test', body: 'Signed.\r\n' }), { domain: 'dkim-only.test', key });
      const tampered = Buffer.from(signed.toString().replace('Signed.', 'Tampered.'));
      const r = await send(t.gate.port, tampered);
      assert.deepEqual([r.mail, r.rcpt], [250, 250], 'undecided until the message is seen');
      assert.equal(r.final, 554, r.text);
      assert.match(r.text, /^5\.7\.1 /);
      assert.equal(t.sink.messages.length, 0);
    } finally {
      await t.close();
    }
  });
});
