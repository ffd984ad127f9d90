// Control characters in SMTP commands (a terminal escape in a sender address
// ends up in logs and on the admin's terminal): refused with 501 5.5.2 and a
// log line naming the limit, as Postfix's smtpd does; nothing of the command
// reaches the policy or the backend.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { scriptedPolicy, startTestGate } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

function logLines(stream: PassThrough): Array<Record<string, unknown>> {
  const text = (stream.read() as Buffer | null)?.toString() ?? '';
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('MAIL FROM with an escape sequence, RCPT with BEL, EHLO with NUL, a C1 control in UTF-8: 501 5.5.2 and a log line', async () => {
  const policy = scriptedPolicy();
  const logs = new PassThrough();
  const t = await startTestGate({ policy, logStream: logs });
  try {
    const c = await SmtpTalk.connect(t.port);
    await c.reply();
    let r = await c.command('EHLO client\x00.example.com');
    assert.equal(r.code, 501);
    assert.match(r.text, /^5\.5\.2 /);
    assert.equal((await c.command('EHLO client.example.com')).code, 250);
    r = await c.command('MAIL FROM:<a\x1b]0;pwned\x07@x.example>');
    assert.equal(r.code, 501, r.text);
    assert.match(r.text, /^5\.5\.2 .*control/i);
    c.sendRaw(Buffer.from('MAIL FROM:<a\u009b31m@x.example>\r\n', 'utf8'));
    assert.equal((await c.reply()).code, 501);
    assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
    assert.equal((await c.command('RCPT TO:<b\x07@example.net>')).code, 501);
    assert.equal((await c.command('RCPT TO:<b\x7f@example.net>')).code, 501);
    assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
    assert.equal((await c.command('QUIT')).code, 221);
    for (const call of policy.calls) {
      assert.ok(!/[\x00-\x1f\x7f-\x9f]/.test(`${call.env.from ?? ''} ${call.env.rcpts.join(' ')} ${call.env.helo ?? ''}`), 'no control character reached the policy');
    }
    const refused = logLines(logs).filter((l) => l.limit === 'control_characters');
    assert.equal(refused.length, 5, 'one log line per refused command');
    assert.match(String(refused[1].msg), /control character/);
    assert.equal(refused[1].byte, '0x1b');
    assert.ok(!JSON.stringify(refused).includes('\u001b'), 'the log line does not carry the escape itself');
  } finally {
    await t.close();
  }
});

test('UTF-8 addresses (SMTPUTF8) and a tab between parameters are not control characters', async () => {
  const t = await startTestGate();
  try {
    const c = await SmtpTalk.connect(t.port);
    await c.reply();
    assert.equal((await c.command('EHLO client.example.com')).code, 250);
    c.sendRaw(Buffer.from('MAIL FROM:<jörg@example.com>\tSMTPUTF8\r\n', 'utf8'));
    assert.equal((await c.reply()).code, 250);
    c.close();
  } finally {
    await t.close();
  }
});
