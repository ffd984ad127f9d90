// The gate relays without a queue: each command is answered after the gate's
// policy and then the backend have answered it; a 250 at end of DATA means the
// backend has the message; a backend fault is a 4xx, never a 250 or a 5xx.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { startTestGate, scriptedPolicy } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { freePort } from '../helpers/ports.js';
import { captureLogger } from '../helpers/log-capture.js';

const MESSAGE = 'From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello there.\r\n.starts with a dot\r\n';

function transport(port: number) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'client.example.com' });
}

async function session(port: number, helo = 'client.example.com'): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(port);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.command(`EHLO ${helo}`)).code, 250);
  return c;
}

describe('gate relay', () => {
  test('an accepted message reaches the backend with the gate headers; XCLIENT tells it the real client', async () => {
    const t = await startTestGate({ sink: { xclient: true } });
    try {
      const info = await transport(t.port).sendMail({ envelope: { from: 'a@example.com', to: ['b@example.net'] }, raw: MESSAGE });
      assert.match(info.response, /^250 .*SINK1/);
      assert.equal(t.sink.messages.length, 1);
      const m = t.sink.messages[0];
      assert.equal(m.from, 'a@example.com');
      assert.deepEqual(m.rcpts, ['b@example.net']);
      const text = m.data.toString();
      assert.match(text, /^Authentication-Results: gate\.test; spf=pass smtp\.mailfrom=example\.com\r\n/);
      assert.match(text, /\r\n\.starts with a dot\r\n/, 'dot-stuffing undone and redone');
      assert.doesNotMatch(text, /^Received:/m, 'XCLIENT: the backend writes its own Received line');
      assert.equal(m.xclient.ADDR, '127.0.0.1');
      assert.equal(m.xclient.HELO, 'client.example.com');
      assert.ok(Number(m.xclient.PORT) > 0);
      assert.equal(m.remoteAddress, '127.0.0.1');
      const eom = t.events.find((e) => e.verdict.stage === 'eom');
      assert.ok(eom, 'the eom verdict is reported');
    } finally {
      await t.close();
    }
  });

  test('backend_identity xforward: XFORWARD when the backend announces it', async () => {
    const t = await startTestGate({ sink: { xclient: false, xforward: true }, gate: { backend_identity: 'xforward' } });
    try {
      await transport(t.port).sendMail({ envelope: { from: 'a@example.com', to: ['b@example.net'] }, raw: MESSAGE });
      await transport(t.port).sendMail({ envelope: { from: 'c@example.com', to: ['b@example.net'] }, raw: MESSAGE });
      assert.equal(t.sink.messages.length, 2);
      for (const m of t.sink.messages) {
        assert.equal(m.xforward.ADDR, '127.0.0.1');
        assert.equal(m.xforward.HELO, 'client.example.com');
        assert.equal(m.xforward.SOURCE, 'REMOTE');
        assert.ok(m.xforward.IDENT);
      }
    } finally {
      await t.close();
    }
  });

  test('XFORWARD is sent again for every transaction on one connection', async () => {
    const t = await startTestGate({ sink: { xclient: false, xforward: true }, gate: { backend_identity: 'xforward' } });
    try {
      const c = await session(t.port);
      for (const from of ['a@example.com', 'c@example.com']) {
        assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
        assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
        assert.equal((await c.command('DATA')).code, 354);
        c.sendRaw(`${MESSAGE}.\r\n`);
        assert.equal((await c.reply()).code, 250);
      }
      assert.equal(t.sink.sessions, 1, 'one backend connection for the session');
      assert.deepEqual(
        t.sink.messages.map((m) => [m.from, m.xforward.ADDR]),
        [
          ['a@example.com', '127.0.0.1'],
          ['c@example.com', '127.0.0.1'],
        ],
      );
      c.close();
    } finally {
      await t.close();
    }
  });

  test('backend_identity none: the gate adds its own Received line', async () => {
    const t = await startTestGate({ sink: { xclient: false, xforward: false }, gate: { backend_identity: 'none' } });
    try {
      await transport(t.port).sendMail({ envelope: { from: 'a@example.com', to: ['b@example.net'] }, raw: MESSAGE });
      const text = t.sink.messages[0].data.toString().replace(/\r\n\t/g, ' ');
      assert.match(text, /^Received: from client\.example\.com \(unknown \[127\.0\.0\.1\]\) by gate\.test \(frontline gate\) with ESMTP id [0-9A-F]+ for <b@example\.net>; [^\r]+\r\nAuthentication-Results: /);
    } finally {
      await t.close();
    }
  });

  test('a recipient the backend refuses is refused at RCPT with the backend reply; the others go through', async () => {
    const t = await startTestGate({ sink: { unknownRcpts: ['nobody'] } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      const bad = await c.command('RCPT TO:<nobody@example.net>');
      assert.equal(bad.code, 550);
      assert.match(bad.text, /5\.1\.1 .*User unknown/);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      assert.equal((await c.command('QUIT')).code, 221);
      assert.deepEqual(t.sink.messages[0].rcpts, ['b@example.net']);
    } finally {
      await t.close();
    }
  });

  test('nodemailer sees the unknown recipient rejected', async () => {
    const t = await startTestGate({ sink: { unknownRcpts: ['nobody'] } });
    try {
      const info = await transport(t.port).sendMail({ envelope: { from: 'a@example.com', to: ['nobody@example.net', 'b@example.net'] }, raw: MESSAGE });
      assert.deepEqual(info.rejected, ['nobody@example.net']);
      assert.deepEqual(info.accepted, ['b@example.net']);
    } finally {
      await t.close();
    }
  });

  test('a policy reject at MAIL is answered by the gate; the backend is never contacted', async () => {
    const policy = scriptedPolicy((stage) =>
      stage === 'mail' ? { action: 'reject', code: 554, status: '5.7.1', text: 'example.com did not authorise 127.0.0.1', rule: 'sender-authorised' } : undefined,
    );
    const t = await startTestGate({ policy });
    try {
      const c = await session(t.port);
      const r = await c.command('MAIL FROM:<a@example.com>');
      assert.equal(r.code, 554);
      assert.equal(r.text, '5.7.1 example.com did not authorise 127.0.0.1');
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 503);
      c.close();
      assert.equal(t.sink.sessions, 0);
      assert.ok(t.events.some((e) => e.verdict.rule === 'sender-authorised' && e.verdict.stage === 'mail'));
    } finally {
      await t.close();
    }
  });

  test('a policy reject at RCPT refuses that recipient only', async () => {
    const policy = scriptedPolicy((stage, env) =>
      stage === 'rcpt' && env.rcpts[env.rcpts.length - 1] === 'spamtrap@example.net' ? { action: 'reject', code: 550, status: '5.7.1', text: 'no thanks' } : undefined,
    );
    const t = await startTestGate({ policy });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<spamtrap@example.net>')).code, 550);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      assert.deepEqual(t.sink.messages[0].rcpts, ['b@example.net']);
      const rcptCalls = policy.calls.filter((x) => x.stage === 'rcpt').map((x) => x.env.rcpts);
      assert.deepEqual(rcptCalls, [['spamtrap@example.net'], ['b@example.net']]);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('connect and HELO rejections are given at MAIL (delayed, as smtpd_delay_reject)', async () => {
    const policy = scriptedPolicy((stage) => (stage === 'connect' ? { action: 'reject', code: 554, status: '5.7.1', text: 'listed by zen.example.org' } : undefined));
    const t = await startTestGate({ policy });
    try {
      const c = await session(t.port);
      const r = await c.command('MAIL FROM:<a@example.com>');
      assert.equal(r.code, 554);
      assert.match(r.text, /listed by zen/);
      c.close();
      assert.equal(t.sink.sessions, 0);
    } finally {
      await t.close();
    }
  });

  test('a policy refusal at end of DATA: the message never reaches the backend', async () => {
    const policy = scriptedPolicy((stage, env) =>
      stage === 'eom' && env.message?.includes('VIAGRA') ? { action: 'reject', code: 554, status: '5.7.1', text: 'content rejected' } : undefined,
    );
    const t = await startTestGate({ policy });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw('Subject: VIAGRA\r\n\r\nbuy\r\n.\r\n');
      const r = await c.reply();
      assert.equal(r.code, 554);
      assert.equal(r.text, '5.7.1 content rejected');
      // The session goes on: a clean message afterwards is delivered.
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      assert.equal(t.sink.messages.length, 1);
      assert.doesNotMatch(t.sink.messages[0].data.toString(), /VIAGRA/);
      const eom = policy.calls.find((x) => x.stage === 'eom');
      assert.ok(eom?.env.message?.toString().endsWith('buy\r\n'), 'eom sees the unstuffed message');
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a policy that throws is a 451, never a 5xx', async () => {
    const policy = scriptedPolicy((stage) => {
      if (stage === 'mail') throw new Error('boom');
      return undefined;
    });
    const t = await startTestGate({ policy });
    try {
      const c = await session(t.port);
      const r = await c.command('MAIL FROM:<a@example.com>');
      assert.equal(r.code, 451);
      assert.match(r.text, /^4\.3\.0 /);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('backend not listening: 451 at MAIL', async () => {
    const port = await freePort();
    const t = await startTestGate({ backend: `127.0.0.1:${port}` });
    try {
      const c = await session(t.port);
      const r = await c.command('MAIL FROM:<a@example.com>');
      assert.equal(r.code, 451);
      assert.match(r.text, /^4\.3\.0 /);
      c.close();
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:backend'));
    } finally {
      await t.close();
    }
  });

  test('backend killed during DATA: the client gets 451, not 250', async () => {
    const t = await startTestGate({ sink: { onData: () => 'hang' } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      const started = t.sink.dataStarted();
      c.sendRaw(`${MESSAGE}.\r\n`);
      await started;
      await t.sink.kill();
      const r = await c.reply();
      assert.equal(r.code, 451);
      assert.match(r.text, /^4\.4\.2 /);
      c.close();
      assert.equal(t.sink.messages.length, 0);
    } finally {
      await t.close();
    }
  });

  test('backend gone between RCPT and DATA: a 4xx at DATA or at its end', async () => {
    const t = await startTestGate();
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      await t.sink.kill();
      await new Promise((r) => setTimeout(r, 50));
      let r = await c.command('DATA');
      if (r.code === 354) {
        c.sendRaw(`${MESSAGE}.\r\n`);
        r = await c.reply();
      }
      assert.ok(r.code >= 400 && r.code < 500, `got ${r.code}`);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('backend that never answers the final dot: 451 after the backend data timeout', async () => {
    const t = await startTestGate({ sink: { onData: () => 'hang' }, gate: { backend_options: { data_timeout_s: 1 } } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE}.\r\n`);
      const r = await c.reply(5000);
      assert.equal(r.code, 451);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a backend that greets with 554 gives the client 451', async () => {
    const backend = net.createServer((s) => s.end('554 go away\r\n'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const t = await startTestGate({ backend: `127.0.0.1:${(backend.address() as net.AddressInfo).port}`, gate: { backend_identity: 'xforward' } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 451);
      c.close();
    } finally {
      await t.close();
      backend.close();
    }
  });

  test('RSET, NOOP, HELP, VRFY, EXPN, unknown commands and QUIT', async () => {
    const t = await startTestGate();
    try {
      const c = await session(t.port);
      assert.equal((await c.command('NOOP')).code, 250);
      assert.equal((await c.command('HELP')).code, 214);
      assert.equal((await c.command('VRFY root')).code, 252);
      assert.equal((await c.command('EXPN staff')).code, 502);
      assert.equal((await c.command('XYZZY')).code, 502);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 503);
      assert.equal((await c.command('RSET')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 503);
      assert.equal((await c.command('DATA')).code, 503);
      assert.equal((await c.command('MAIL FROM:<>')).code, 250);
      assert.equal((await c.command('DATA')).code, 554, 'no valid recipients');
      assert.equal((await c.command('QUIT')).code, 221);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });

  test('MAIL before EHLO and bad syntax', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 503);
      assert.equal((await c.command('EHLO')).code, 501);
      assert.equal((await c.command('HELO client.example.com')).code, 250);
      assert.equal((await c.command('MAIL FROM:a@example.com junk<')).code, 501);
      assert.equal((await c.command('MAIL TO:<a@example.com>')).code, 501);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('EHLO offers PIPELINING, SIZE and the configured extensions; no AUTH by default', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      const r = await c.command('EHLO client.example.com');
      assert.deepEqual(r.lines, ['gate.test', 'PIPELINING', 'SIZE 10240000', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SMTPUTF8']);
      assert.equal((await c.command('AUTH PLAIN AGZvbwBiYXI=')).code, 503);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('AUTH passthrough: the backend decides, the session is authenticated at the backend', async () => {
    const t = await startTestGate({
      gate: { auth: 'passthrough', auth_requires_tls: false },
      sink: { users: { alice: 'secret' } },
    });
    try {
      const c = await session(t.port);
      const bad = await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`);
      assert.equal(bad.code, 535);
      const ok = await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}`);
      assert.equal(ok.code, 235);
      assert.equal((await c.command('MAIL FROM:<alice@example.com>')).code, 250);
      c.close();
      const login = await session(t.port);
      assert.equal((await login.command('AUTH LOGIN')).code, 334);
      assert.equal((await login.command(Buffer.from('alice').toString('base64'))).code, 334);
      assert.equal((await login.command(Buffer.from('secret').toString('base64'))).code, 235);
      login.close();
    } finally {
      await t.close();
    }
  });

  test('AUTH passthrough over plaintext is refused when auth_requires_tls (the default)', async () => {
    const t = await startTestGate({ gate: { auth: 'passthrough' }, sink: { users: { alice: 'secret' } } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0secret').toString('base64')}`)).code, 538);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('PROXY protocol from a trusted peer: the real client is the one in the header', async () => {
    const policy = scriptedPolicy();
    const t = await startTestGate({ policy, gate: { proxy_protocol: { trusted: ['127.0.0.1'] } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      c.sendRaw('PROXY TCP4 192.0.2.9 127.0.0.1 40000 25\r\n');
      assert.equal((await c.reply()).code, 220);
      assert.equal((await c.command('EHLO client.example.com')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      assert.equal(t.sink.messages[0].xclient.ADDR, '192.0.2.9');
      assert.equal(t.sink.messages[0].xclient.PORT, '40000');
      assert.ok(policy.calls.every((x) => x.env.clientIp === '192.0.2.9'));
      c.close();
    } finally {
      await t.close();
    }
  });

  test('PROXY protocol from an untrusted peer is not believed', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      assert.equal((await c.reply()).code, 220);
      assert.equal((await c.command('PROXY TCP4 192.0.2.9 127.0.0.1 40000 25')).code, 502);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a malformed PROXY header from a trusted peer closes the connection', async () => {
    const t = await startTestGate({ gate: { proxy_protocol: { trusted: ['127.0.0.0/8'] } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      c.sendRaw('EHLO client.example.com\r\n');
      assert.ok(await c.waitClosed());
      assert.equal(c.transcript, '');
    } finally {
      await t.close();
    }
  });

  test('XFORWARD from a trusted proxy (Postfix smtpd_proxy_filter): the gate judges and forwards the real client', async () => {
    const policy = scriptedPolicy((stage, env) =>
      stage === 'connect' && env.clientIp === '192.0.2.66' ? { action: 'reject', code: 554, status: '5.7.1', text: 'listed' } : undefined,
    );
    const t = await startTestGate({ policy, gate: { greet_wait_ms: 2000, xforward_hosts: ['127.0.0.1'], backend_identity: 'xforward' }, sink: { xclient: false, xforward: true } });
    try {
      const c = await SmtpTalk.connect(t.port);
      const t0 = Date.now();
      assert.equal((await c.reply()).lines.length, 1, 'no door test for the trusted proxy');
      assert.ok(Date.now() - t0 < 1000);
      const ehlo = await c.command('EHLO mx.dest.test');
      assert.ok(ehlo.lines.includes('XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE'));
      assert.equal((await c.command('XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.50 PORT=1234')).code, 250);
      assert.equal((await c.command('XFORWARD HELO=remote.example PROTO=ESMTP SOURCE=REMOTE')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      const m = t.sink.messages[0];
      assert.equal(m.xforward.ADDR, '192.0.2.50');
      assert.equal(m.xforward.PORT, '1234');
      assert.equal(m.xforward.HELO, 'remote.example');
      const judged = policy.calls.filter((x) => x.stage === 'mail' || x.stage === 'rcpt' || x.stage === 'eom');
      assert.ok(judged.every((x) => x.env.clientIp === '192.0.2.50' && x.env.helo === 'remote.example'));
      // The next forwarded client is judged afresh: a listed one is refused at MAIL.
      assert.equal((await c.command('XFORWARD ADDR=192.0.2.66 HELO=bad.example')).code, 250);
      const r = await c.command('MAIL FROM:<a@example.com>');
      assert.equal(r.code, 554);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('XFORWARD from an untrusted client is an unknown command', async () => {
    const t = await startTestGate();
    try {
      const c = await session(t.port);
      assert.equal((await c.command('XFORWARD ADDR=192.0.2.50')).code, 502);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a backend connection closed while idle between transactions is reopened for the next one', async () => {
    const t = await startTestGate({ sink: { extra: { socketTimeout: 300 } } });
    try {
      const c = await session(t.port);
      for (let i = 0; i < 2; i++) {
        assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
        assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
        assert.equal((await c.command('DATA')).code, 354);
        c.sendRaw(`${MESSAGE}.\r\n`);
        assert.equal((await c.reply()).code, 250);
        await new Promise((r) => setTimeout(r, 700));
      }
      assert.equal(t.sink.messages.length, 2);
      assert.equal(t.sink.sessions, 2);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a backend offering CHUNKING gets the message as one BDAT LAST; XFORWARD is pipelined with MAIL', async () => {
    const seen: string[] = [];
    let chunk = Buffer.alloc(0);
    const backend = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      let need = 0;
      sock.write('220 scripted ESMTP\r\n');
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (need > 0) {
            if (buf.length < need) return;
            chunk = buf.subarray(0, need);
            buf = buf.subarray(need);
            need = 0;
            sock.write(`250 2.0.0 Ok: ${chunk.length} bytes queued as SCRIPTED\r\n`);
            continue;
          }
          const nl = buf.indexOf('\n');
          if (nl < 0) return;
          const line = buf.subarray(0, nl).toString().replace(/\r$/, '');
          buf = buf.subarray(nl + 1);
          seen.push(line);
          const verb = line.split(' ')[0].toUpperCase();
          if (verb === 'EHLO') sock.write('250-scripted\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n');
          else if (verb === 'BDAT') need = Number(line.split(' ')[1]);
          else if (verb === 'QUIT') sock.end('221 bye\r\n');
          else sock.write('250 2.0.0 Ok\r\n');
        }
      });
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const t = await startTestGate({ backend: `127.0.0.1:${(backend.address() as net.AddressInfo).port}`, gate: { backend_identity: 'xforward' } });
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`${MESSAGE.replace('\r\n.', '\r\n..')}.\r\n`);
      const r = await c.reply();
      assert.equal(r.code, 250);
      assert.match(r.text, /bytes queued as SCRIPTED/);
      assert.deepEqual(
        seen.map((l) => l.split(' ')[0]),
        ['EHLO', 'XFORWARD', 'MAIL', 'RCPT', 'BDAT'],
      );
      assert.match(seen[1], /ADDR=127\.0\.0\.1 .*HELO=client\.example\.com/);
      assert.match(seen[4], /^BDAT \d+ LAST$/);
      const text = chunk.toString();
      assert.match(text, /^Authentication-Results: /);
      assert.match(text, /\r\n\.starts with a dot\r\n$/, `BDAT carries the message unstuffed: ${JSON.stringify(text)}`);
      c.close();
    } finally {
      await t.close();
      backend.close();
    }
  });

  test('closing the gate tells connected clients 421 4.3.2', async () => {
    const t = await startTestGate();
    const c = await session(t.port);
    await t.close();
    const r = await c.reply();
    assert.equal(r.code, 421);
    assert.match(r.text, /^4\.3\.2 /);
    assert.ok(await c.waitClosed());
  });
});

// Issue 16, item 1: the gate in front of a backend that cannot be told the real
// client fell back to XFORWARD or nothing; the backend then judged the gate's
// own address (127.0.0.1, in Postfix's default mynetworks) and relayed for
// anyone. The sink here relays for 127.0.0.0/8 exactly as Postfix does by default.
describe('issue 16 — no silent open relay through the gate', () => {
  /** An outside client (203.0.113.7, through a trusted PROXY header) greets. */
  async function outsider(port: number): Promise<SmtpTalk> {
    const c = await SmtpTalk.connect(port);
    c.sendRaw('PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n');
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command('EHLO spammer.example')).code, 250);
    return c;
  }

  for (const [what, sink] of [
    ['a backend that offers only XFORWARD', { xclient: false, xforward: true }],
    ['a backend that offers neither XCLIENT nor XFORWARD', { xclient: false, xforward: false }],
  ] as const) {
    test(`${what} relays for its mynetworks: an outside client gets 451 4.3.0 at MAIL and relays nothing; an error names smtpd_authorized_xclient_hosts`, async () => {
      const log = captureLogger();
      const t = await startTestGate({ sink, logger: log.logger, gate: { proxy_protocol: { trusted: ['127.0.0.1'] } } });
      try {
        const c = await outsider(t.port);
        for (let i = 0; i < 2; i++) {
          const mail = await c.command('MAIL FROM:<spammer@example.com>');
          assert.equal(mail.code, 451, `MAIL: ${mail.code} ${mail.text}`);
          assert.match(mail.text, /^4\.3\.0 /);
          const rcpt = await c.command('RCPT TO:<victim@outside.example>');
          assert.notEqual(rcpt.code, 250, 'the backend relays for the gate: RCPT to an outside domain must not get 250');
        }
        c.close();
        assert.deepEqual(t.sink.relayed, [], 'nothing relayed');
        assert.equal(t.sink.messages.length, 0);
        const named = log.errors().filter((l) => /smtpd_authorized_xclient_hosts = 127\.0\.0\.1/.test(l.msg));
        // One at the relay self-test, one per backend connection attempt (each MAIL).
        assert.equal(named.length, 3, JSON.stringify(log.errors(), null, 1));
        assert.match(named[1].msg, /will not relay as itself.*451 4\.3\.0/);
        assert.ok(t.events.some((e) => e.verdict.rule === 'gate:backend' && e.verdict.code === 451));
      } finally {
        await t.close();
      }
    });
  }

  test('an inside client (127.0.0.1, in the backend\'s mynetworks) still relays: XCLIENT tells the backend who it is', async () => {
    const t = await startTestGate();
    try {
      const c = await session(t.port);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<friend@outside.example>')).code, 250);
      c.close();
      assert.deepEqual(t.sink.relayed, [{ rcpt: 'friend@outside.example', client: '127.0.0.1' }]);
    } finally {
      await t.close();
    }
  });

  test('with XCLIENT the outside client is judged by the backend: Relay access denied, relayed nothing', async () => {
    const t = await startTestGate({ gate: { proxy_protocol: { trusted: ['127.0.0.1'] } } });
    try {
      const c = await outsider(t.port);
      assert.equal((await c.command('MAIL FROM:<spammer@example.com>')).code, 250);
      const rcpt = await c.command('RCPT TO:<victim@outside.example>');
      assert.equal(rcpt.code, 454);
      assert.match(rcpt.text, /Relay access denied/);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250, 'its own domains are still delivered');
      c.close();
      assert.deepEqual(t.sink.relayed, []);
    } finally {
      await t.close();
    }
  });
});
