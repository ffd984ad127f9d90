// issue 17 item 4: `MAIL FROM:<a@müller.de>` (SMTPUTF8) was refused
// `504 5.5.2 invalid domain` by the policy server and the gate. The domain is
// now turned into A-labels (UTS #46) before syntax checks, SPF, MX and list
// matching; texts show the U-label the sender wrote.

import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { asciiAddress, asciiDomain, displayDomainOf, domainOf } from '../../src/core/address.js';
import { addressDomainProblem } from '../../src/checks/hostname.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { PolicyServer } from '../../src/postfix/policy-server.js';
import { startGate } from '../../src/gate/server.js';
import { header, run, world } from '../helpers/policy-world.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { startSink } from '../helpers/smtp-sink.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

// müller.de → xn--mller-kva.de; bücher.example → xn--bcher-kva.example. The zone
// holds A-labels only, as real DNS does.
const WORLD = `
xn--mller-kva.de:
  - TXT: "v=spf1 ip4:198.51.100.0/24 -all"
  - MX: [10, mx.xn--mller-kva.de]
mx.xn--mller-kva.de:
  - A: 198.51.100.25
xn--bcher-kva.example:
  - MX: [10, mx.xn--bcher-kva.example]
mx.xn--bcher-kva.example:
  - A: 127.0.0.1
`;

describe('A-labels and U-labels', () => {
  test('domainOf gives the A-label; ASCII names are only lower-cased', () => {
    assert.equal(domainOf('a@müller.de'), 'xn--mller-kva.de');
    assert.equal(domainOf('a@MÜLLER.DE.'), 'xn--mller-kva.de');
    assert.equal(domainOf('a@straße.de'), 'xn--strae-oqa.de', 'UTS #46 non-transitional, as URLs');
    assert.equal(domainOf('a@Example.COM'), 'example.com');
    assert.equal(asciiDomain('xn--mller-kva.de'), 'xn--mller-kva.de');
    assert.equal(asciiAddress('jörg@müller.de'), 'jörg@xn--mller-kva.de', 'the local part is left as sent');
    assert.equal(displayDomainOf('a@müller.de'), 'müller.de');
    assert.equal(displayDomainOf('a@xn--mller-kva.de'), 'xn--mller-kva.de', 'an ASCII sender gets ASCII back');
  });

  test('syntax: a U-label domain is an FQDN; a name with no A-label form is still invalid', () => {
    assert.equal(addressDomainProblem('a@müller.de'), undefined);
    assert.equal(addressDomainProblem('a@bücher.example'), undefined);
    assert.equal(addressDomainProblem('a@mül ler.de'), 'bad-domain');
    assert.equal(addressDomainProblem('a@müller'), 'non-fqdn');
  });
});

describe('the default policy with an SMTPUTF8 sender', () => {
  test('authorised by SPF of the A-label: passes, Authentication-Results names the A-label', async () => {
    const w = world(WORLD);
    const v = await run(w, { clientIp: '198.51.100.7', helo: 'out.example.net', from: 'jörg@müller.de', rcpts: ['bob@dest.example'] });
    assert.equal(v.action, 'continue', v.text);
    assert.equal(v.evidence.find((e) => e.check === 'spf')?.result, 'pass');
    assert.equal(v.evidence.find((e) => e.check === 'sender_domain')?.result, 'pass');
    assert.match(header(v, 'Authentication-Results') ?? '', /spf=pass smtp\.mailfrom=xn--mller-kva\.de/);
  });

  test('not authorised: refused 554 naming the U-label, not 504 5.5.2', async () => {
    const w = world(WORLD);
    const v = await run(w, { clientIp: '192.0.2.77', helo: 'home-pc', from: 'a@müller.de', rcpts: ['bob@dest.example'] });
    assert.deepEqual([v.action, v.code, v.status, v.rule], ['reject', 554, '5.7.1', 'sender-authorised']);
    assert.match(v.text ?? '', /^rejected by policy: müller\.de did not authorise 192\.0\.2\.77 /);
  });

  test('an unknown U-label domain is deferred with the U-label in the text', async () => {
    const w = world(WORLD);
    const v = await run(w, { clientIp: '192.0.2.77', helo: 'home-pc', from: 'a@nirgendwö.example', rcpts: ['bob@dest.example'] });
    assert.deepEqual([v.action, v.code, v.status, v.rule], ['defer', 450, '4.1.8', 'unknown-sender-domain']);
    assert.match(v.text ?? '', /sender domain nirgendwö\.example has no MX, A or AAAA records/);
  });

  test('a domain with no A-label form is still 504 5.5.2', async () => {
    const w = world(WORLD);
    const v = await run(w, { clientIp: '192.0.2.77', helo: 'home-pc', from: 'a@mül ler.de', rcpts: ['bob@dest.example'] });
    assert.deepEqual([v.action, v.code, v.status, v.rule], ['reject', 504, '5.5.2', 'sender-fqdn']);
  });

  test('the MX branch asks for the A-label: the sender’s own MX passes', async () => {
    const w = world(WORLD, 'my_networks: []\n');
    const v = await run(w, { clientIp: '127.0.0.1', helo: 'mx.bücher.example', from: 'a@bücher.example', rcpts: ['bob@dest.example'] });
    assert.equal(v.evidence.find((e) => e.check === 'mx')?.result, 'match');
    assert.equal(v.action, 'continue', v.text);
  });

  test('list entries in U-labels match senders in either form', async () => {
    const cfg = 'lists:\n  deny:\n    type: domain\n    match: sender\n    entries: ["Müller.de"]\n';
    const w = world(WORLD, cfg);
    for (const from of ['a@müller.de', 'a@MÜLLER.DE', 'a@xn--mller-kva.de']) {
      const v = await run(w, { clientIp: '198.51.100.7', helo: 'out.example.net', from, rcpts: ['bob@dest.example'] });
      assert.equal(v.rule, 'denylist', from);
    }
  });
});

describe('through the Postfix policy server', () => {
  let server: PolicyServer;
  let port: number;
  before(async () => {
    const cfg = parseConfig('headers: { authserv_id: mx.dest.test }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zoneFromYaml(WORLD)) });
    server = new PolicyServer({ policy, logger: pino({ level: 'silent' }), acceptReply: 'DUNNO', onFault: 'defer' });
    port = (await server.listenTcp('127.0.0.1', 0)).port;
  });
  after(() => server.close());

  test('sender=a@müller.de: authorised passes with a header, the forger gets 554 naming müller.de', async () => {
    const c = await PolicyClient.connect({ host: '127.0.0.1', port });
    const ok = await c.ask(rcptRequest({ client_address: '198.51.100.7', sender: 'jörg@müller.de', instance: 'u1', smtputf8: 'yes' } as never));
    assert.match(ok, /^PREPEND Authentication-Results: mx\.dest\.test; spf=pass smtp\.mailfrom=xn--mller-kva\.de/);
    const no = await c.ask(rcptRequest({ client_address: '192.0.2.77', sender: 'a@müller.de', instance: 'u2' }));
    assert.match(no, /^554 5\.7\.1 rejected by policy: müller\.de did not authorise 192\.0\.2\.77/);
    await c.close();
  });
});

describe('through the gate (SMTPUTF8)', () => {
  test('MAIL FROM:<a@müller.de> SMTPUTF8 from an authorised host is relayed; a forger is refused naming müller.de', async () => {
    const cfg = parseConfig('my_networks: []\nheaders: { authserv_id: gate.test }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zoneFromYaml(WORLD)) });
    const sink = await startSink({ xclient: true, extra: { hideSMTPUTF8: false } as never });
    const gate = await startGate({
      config: { ...cfg, gate: { hostname: 'gate.test', greet_wait_ms: 0 } },
      policy,
      logger: pino({ level: 'silent' }),
      listen: '127.0.0.1:0',
      backend: sink.address,
    });
    try {
      // The gate's client is 127.0.0.1: bücher.example's MX is 127.0.0.1, so the MX branch authorises it.
      const c = await SmtpTalk.connect(gate.port);
      await c.reply();
      const ehlo = await c.command('EHLO client.example');
      assert.match(ehlo.text, /SMTPUTF8/);
      const mail = await c.command('MAIL FROM:<jörg@bücher.example> SMTPUTF8');
      assert.equal(mail.code, 250, mail.text);
      assert.equal((await c.command('RCPT TO:<bob@dest.test>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(Buffer.from('From: jörg@bücher.example\r\nSubject: hallo\r\n\r\nGrüße\r\n.\r\n'));
      const done = await c.reply();
      assert.equal(done.code, 250, done.text);
      await c.command('QUIT');
      c.close();
      assert.equal(sink.messages.length, 1);
      assert.equal(sink.messages[0].from, 'jörg@bücher.example');

      // müller.de's SPF does not list 127.0.0.1 and its MX is elsewhere: refused at end of DATA (DKIM could still have vouched).
      const f = await SmtpTalk.connect(gate.port);
      await f.reply();
      await f.command('EHLO home-pc.example');
      const fm = await f.command('MAIL FROM:<a@müller.de> SMTPUTF8');
      assert.equal(fm.code, 250, `not 504 5.5.2: ${fm.text}`);
      assert.equal((await f.command('RCPT TO:<bob@dest.test>')).code, 250);
      assert.equal((await f.command('DATA')).code, 354);
      f.sendRaw(Buffer.from('From: a@müller.de\r\nSubject: x\r\n\r\nx\r\n.\r\n'));
      const refused = await f.reply();
      assert.equal(refused.code, 554, refused.text);
      // SmtpTalk reads octets as latin1; the gate wrote UTF-8.
      assert.match(Buffer.from(refused.text, 'latin1').toString('utf8'), /müller\.de did not authorise 127\.0\.0\.1/);
      f.close();
    } finally {
      await gate.close();
      await sink.close();
    }
  });
});
