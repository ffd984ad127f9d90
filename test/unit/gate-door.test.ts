// At the door: the tests postscreen made familiar (pregreet, pipelining
// without PIPELINING, non-SMTP commands, bare LF), their actions, and the
// per-IP memory of clients that passed.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGate } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const MESSAGE = 'From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n';

describe('gate door: pregreet', () => {
  test('a client that talks before the greeting gets 554 to every command (enforce)', async () => {
    const t = await startTestGate({ gate: { greet_wait_ms: 300 } });
    try {
      const c = await SmtpTalk.connect(t.port);
      c.send('EHLO eager.example.com');
      const banner = await c.reply(2000);
      assert.deepEqual(banner.lines, ['gate.test ESMTP', 'gate.test ESMTP'], 'teaser then the greeting');
      const ehlo = await c.reply();
      assert.equal(ehlo.code, 554);
      assert.match(ehlo.text, /^5\.7\.1 .*talked before the greeting/);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 554);
      assert.equal((await c.command('QUIT')).code, 221);
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:pregreet' && e.verdict.action === 'reject'));
      assert.equal(t.sink.sessions, 0);
    } finally {
      await t.close();
    }
  });

  test('drop: 521 and the connection is closed', async () => {
    const t = await startTestGate({ gate: { greet_wait_ms: 300, door: { pregreet: 'drop' } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      c.send('EHLO eager.example.com');
      const r = await c.reply(2000);
      assert.equal(r.code, 521);
      assert.deepEqual(r.lines.slice(0, 1), ['gate.test ESMTP']);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });

  test('ignore: logged, the dialogue goes on', async () => {
    const t = await startTestGate({ gate: { greet_wait_ms: 200, door: { pregreet: 'ignore' } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      c.send('EHLO eager.example.com');
      assert.equal((await c.reply(2000)).code, 220);
      assert.equal((await c.reply()).code, 250);
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:pregreet' && e.verdict.action === 'continue'));
      c.close();
    } finally {
      await t.close();
    }
  });

  test('a client that passed is remembered and gets the greeting at once next time', async () => {
    const t = await startTestGate({ gate: { greet_wait_ms: 400 } });
    try {
      const first = await SmtpTalk.connect(t.port);
      const t0 = Date.now();
      const banner = await first.reply(2000);
      assert.ok(Date.now() - t0 >= 350, 'waited for the greeting');
      assert.equal(banner.lines.length, 2);
      assert.equal((await first.command('EHLO good.example.com')).code, 250);
      assert.equal((await first.command('QUIT')).code, 221);
      await first.waitClosed();
      await new Promise((r) => setTimeout(r, 50));
      const second = await SmtpTalk.connect(t.port);
      const t1 = Date.now();
      const again = await second.reply(2000);
      assert.ok(Date.now() - t1 < 300, 'no wait the second time');
      assert.deepEqual(again.lines, ['gate.test ESMTP']);
      second.close();
    } finally {
      await t.close();
    }
  });
});

describe('gate door: pipelining', () => {
  test('commands pipelined after HELO (no PIPELINING offered) are refused (enforce)', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('HELO client.example.com')).code, 250);
      c.sendRaw('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n');
      const mail = await c.reply();
      assert.equal(mail.code, 554);
      assert.match(mail.text, /PIPELINING/);
      assert.equal((await c.reply()).code, 554);
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:pipelining'));
      c.close();
    } finally {
      await t.close();
    }
  });

  test('after EHLO with PIPELINING, MAIL/RCPT/DATA may be pipelined', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('EHLO client.example.com')).code, 250);
      c.sendRaw('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n');
      assert.deepEqual([(await c.reply()).code, (await c.reply()).code, (await c.reply()).code, (await c.reply()).code], [250, 250, 250, 354]);
      c.sendRaw(`${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 250);
      assert.equal(t.sink.messages.length, 1);
      assert.ok(!t.events.some((e) => e.verdict.rule === 'gate:pipelining'));
      c.close();
    } finally {
      await t.close();
    }
  });

  test('EHLO must end a group even with PIPELINING', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      c.sendRaw('EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\n');
      assert.equal((await c.reply()).code, 554);
      assert.equal((await c.reply()).code, 554);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('message content sent before the 354 is a pipelining violation', async () => {
    const t = await startTestGate({ gate: { door: { pipelining: 'drop' } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('EHLO client.example.com')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      c.sendRaw(`DATA\r\n${MESSAGE}.\r\n`);
      assert.equal((await c.reply()).code, 521);
      assert.ok(await c.waitClosed());
      assert.equal(t.sink.messages.length, 0);
    } finally {
      await t.close();
    }
  });

  test('pipelining: false — not offered, and pipelined commands after EHLO fail the test', async () => {
    const t = await startTestGate({ gate: { pipelining: false } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      const ehlo = await c.command('EHLO client.example.com');
      assert.ok(!ehlo.lines.includes('PIPELINING'));
      c.sendRaw('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n');
      assert.equal((await c.reply()).code, 554);
      c.close();
    } finally {
      await t.close();
    }
  });
});

describe('gate door: non-SMTP and bare LF', () => {
  test('an HTTP request is dropped with 521', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      c.sendRaw('GET / HTTP/1.1\r\nHost: mx.example.com\r\n\r\n');
      const r = await c.reply();
      assert.equal(r.code, 521);
      assert.match(r.text, /this is an SMTP server/);
      assert.ok(await c.waitClosed());
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:non_smtp'));
    } finally {
      await t.close();
    }
  });

  test('CONNECT with enforce: 554 and the session stays refused', async () => {
    const t = await startTestGate({ gate: { door: { non_smtp: 'enforce' } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('CONNECT 10.0.0.1:25 HTTP/1.0')).code, 554);
      assert.equal((await c.command('EHLO client.example.com')).code, 554);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('bare LF commands: enforce refuses', async () => {
    const t = await startTestGate({ gate: { door: { bare_lf: 'enforce' } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      c.sendRaw('EHLO client.example.com\n');
      assert.equal((await c.reply()).code, 554);
      c.close();
    } finally {
      await t.close();
    }
  });

  test('bare LF in DATA with ignore: the message goes on in CRLF; "\\n.\\n" does not end it (no smuggling)', async () => {
    const t = await startTestGate();
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('EHLO client.example.com')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw('Subject: x\r\n\r\nline1\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n');
      assert.equal((await c.reply()).code, 250);
      assert.equal(t.sink.messages.length, 1);
      const body = t.sink.messages[0].data.toString();
      assert.match(body, /line1\r\n\r\nMAIL FROM:<evil@example\.org>\r\n$/);
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:bare_lf' && e.verdict.action === 'continue'));
      c.close();
    } finally {
      await t.close();
    }
  });
});
