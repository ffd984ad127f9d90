// SMTP smuggling (SEC Consult, 2023; Postfix's smtpd_forbid_bare_newline):
// a message whose body holds a fake end of DATA (`\n.\r\n` and the other
// variants below) followed by MAIL/RCPT/DATA. Whatever the client sends, the
// end of DATA is `<CR><LF>.<CR><LF>` and nothing else: the smuggled commands
// stay in the message, never run, and the backend gets one message in CRLF
// lines only (no bare CR or LF that a next hop could read another way).
// Played in one packet and split across packets, with and without
// PIPELINING, to a backend that takes DATA and to one that takes BDAT; and a
// client's BDAT (the gate offers no CHUNKING) whose chunk is never read as
// commands.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { scriptedPolicy, startTestGate, type TestGate } from '../helpers/gate-world.js';
import { startChunkingBackend, type ChunkingBackend } from '../helpers/chunking-backend.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

/** The fake ends of DATA of the smuggling paper, as a client might send them. */
const VARIANTS = ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\r\n.\n'];

const SMUGGLED = 'MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@outside.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n';

function show(s: string): string {
  return JSON.stringify(s);
}

/** Every CR is followed by LF and every LF preceded by CR. */
function onlyCrlf(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 13 && b[i + 1] !== 10) return false;
    if (b[i] === 10 && (i === 0 || b[i - 1] !== 13)) return false;
  }
  return true;
}

/**
 * One transaction whose body carries `variant` then smuggled commands, then
 * the real end of DATA. `split`: the bytes around the fake end go in
 * separate packets. `pipelining`: EHLO, and MAIL/RCPT/DATA in one write,
 * QUIT pipelined after the final dot; else HELO and one command at a time.
 * The replies the client got after the 354.
 */
async function smuggle(port: number, variant: string, split: boolean, pipelining: boolean): Promise<{ final: number; after: number; transcript: string }> {
  const c = await SmtpTalk.connect(port);
  try {
    assert.equal((await c.reply()).code, 220);
    if (pipelining) {
      assert.equal((await c.command('EHLO client.example.com')).code, 250);
      c.sendRaw('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n');
      assert.equal((await c.reply()).code, 250);
      assert.equal((await c.reply()).code, 250);
      assert.equal((await c.reply()).code, 354);
    } else {
      assert.equal((await c.command('HELO client.example.com')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
    }
    const head = 'From: a@example.com\r\nSubject: smuggling test\r\n\r\nhello';
    const tail = `${SMUGGLED}.\r\n`;
    if (split) {
      c.sendRaw(head);
      await sleep(5);
      for (const ch of variant) {
        c.sendRaw(ch);
        await sleep(5);
      }
      c.sendRaw(tail);
    } else {
      c.sendRaw(head + variant + tail);
    }
    if (pipelining) c.sendRaw('QUIT\r\n');
    const final = (await c.reply()).code;
    const after = pipelining ? (await c.reply()).code : (await c.command('QUIT')).code;
    return { final, after, transcript: c.transcript };
  } finally {
    c.close();
  }
}

function assertNothingSmuggled(t: TestGate, policy: ReturnType<typeof scriptedPolicy>, context: string): void {
  for (const call of policy.calls) {
    assert.notEqual(call.env.from, 'evil@attacker.example', `smuggled MAIL reached the policy: ${context}`);
    assert.ok(!call.env.rcpts.includes('victim@outside.example'), `smuggled RCPT reached the policy: ${context}`);
  }
  for (const m of t.sink.messages) {
    assert.notEqual(m.from, 'evil@attacker.example', `smuggled MAIL reached the backend: ${context}`);
    assert.ok(!m.rcpts.includes('victim@outside.example'), `smuggled RCPT reached the backend: ${context}`);
  }
}

describe('SMTP smuggling: a fake end of DATA never ends the message (bare_lf: ignore, the default)', () => {
  let t: TestGate;
  const policy = scriptedPolicy();
  before(async () => {
    t = await startTestGate({ policy });
  });
  after(async () => {
    await t.close();
  });

  for (const variant of VARIANTS) {
    for (const split of [false, true]) {
      for (const pipelining of [true, false]) {
        const name = `${show(variant)} ${split ? 'split across packets' : 'in one packet'}, ${pipelining ? 'PIPELINING' : 'no PIPELINING'}`;
        test(name, async () => {
          const before = t.sink.messages.length;
          const r = await smuggle(t.port, variant, split, pipelining);
          assert.equal(r.final, 250, `${name}: ${show(r.transcript)}`);
          assert.equal(r.after, 221, `the next reply is QUIT's, nothing ran in between: ${show(r.transcript)}`);
          assert.equal(t.sink.messages.length, before + 1, 'one message, not two');
          const m = t.sink.messages[before];
          assert.equal(m.from, 'a@example.com');
          assert.deepEqual(m.rcpts, ['b@example.net']);
          const body = m.data.toString('latin1');
          assert.match(body, /MAIL FROM:<evil@attacker\.example>\r\nRCPT TO:<victim@outside\.example>\r\n/, 'the smuggled lines are message text');
          assert.ok(onlyCrlf(m.data), `the backend gets CRLF lines only: ${show(body)}`);
          assertNothingSmuggled(t, policy, name);
        });
      }
    }
  }
});

describe('SMTP smuggling with bare_lf: enforce and drop', () => {
  for (const variant of VARIANTS) {
    test(`enforce, ${show(variant)}: the whole message is refused with 554 after the real end; nothing reaches the backend`, async () => {
      const policy = scriptedPolicy();
      const t = await startTestGate({ policy, gate: { door: { bare_lf: 'enforce' } } });
      try {
        const r = await smuggle(t.port, variant, false, true);
        assert.equal(r.final, 554, show(r.transcript));
        assert.equal(r.after, 221);
        assert.equal(t.sink.messages.length, 0);
        assertNothingSmuggled(t, policy, variant);
        assert.ok(t.events.some((e) => e.verdict.rule === 'gate:bare_lf' && e.verdict.action === 'reject'));
      } finally {
        await t.close();
      }
    });
  }

  test('drop: 521 at the real end of DATA and the connection is closed', async () => {
    const policy = scriptedPolicy();
    const t = await startTestGate({ policy, gate: { door: { bare_lf: 'drop' } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      assert.equal((await c.command('EHLO client.example.com')).code, 250);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(`Subject: x\r\n\r\nhello\n.\r\n${SMUGGLED}.\r\n`);
      const r = await c.reply();
      assert.equal(r.code, 521);
      assert.match(r.text, /bare/);
      assert.ok(await c.waitClosed());
      assert.equal(t.sink.messages.length, 0);
      assertNothingSmuggled(t, policy, 'drop');
    } finally {
      await t.close();
    }
  });
});

describe('SMTP smuggling towards a backend that takes BDAT (CHUNKING)', () => {
  let backend: ChunkingBackend;
  let t: TestGate;
  const policy = scriptedPolicy();
  before(async () => {
    backend = await startChunkingBackend();
    t = await startTestGate({ policy, backend: backend.address });
  });
  after(async () => {
    await t.close();
    await backend.close();
  });

  for (const variant of VARIANTS) {
    for (const split of [false, true]) {
      test(`${show(variant)} ${split ? 'split across packets' : 'in one packet'}: one BDAT LAST chunk, CRLF lines only`, async () => {
        const chunks = backend.chunks.length;
        const mails = backend.commands.filter((l) => /^MAIL /i.test(l)).length;
        const r = await smuggle(t.port, variant, split, true);
        assert.equal(r.final, 250, show(r.transcript));
        assert.equal(r.after, 221);
        assert.equal(backend.chunks.length, chunks + 1);
        assert.equal(backend.commands.filter((l) => /^MAIL /i.test(l)).length, mails + 1, 'one MAIL at the backend');
        assert.ok(!backend.commands.some((l) => /evil@attacker|victim@outside/.test(l)), 'no smuggled command at the backend');
        const chunk = backend.chunks[chunks];
        assert.match(chunk.toString('latin1'), /MAIL FROM:<evil@attacker\.example>\r\n/);
        assert.ok(onlyCrlf(chunk), show(chunk.toString('latin1')));
        assertNothingSmuggled(t, policy, variant);
      });
    }
  }
});

describe("a client's BDAT (CHUNKING is not offered): the chunk is read and thrown away, never run as commands", () => {
  test('BDAT n LAST with commands in its chunk: one 502, then the dialogue goes on after the chunk', async () => {
    const policy = scriptedPolicy();
    const t = await startTestGate({ policy });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      const ehlo = await c.command('EHLO client.example.com');
      assert.doesNotMatch(ehlo.text, /CHUNKING/);
      assert.equal((await c.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
      const chunk = `Subject: x\r\n\r\nhi\r\n.\r\n${SMUGGLED}.\r\n`;
      c.sendRaw(`BDAT ${Buffer.byteLength(chunk)} LAST\r\n${chunk}`);
      const r = await c.reply();
      assert.equal(r.code, 502, show(c.transcript));
      assert.equal((await c.command('NOOP')).code, 250, `the next reply is NOOP's: ${show(c.transcript)}`);
      assert.equal((await c.command('QUIT')).code, 221);
      assertNothingSmuggled(t, policy, 'client BDAT');
      assert.equal(t.sink.messages.length, 0);
    } finally {
      await t.close();
    }
  });

  test('BDAT with a size over the message size limit: 552 and the connection is closed (the chunk cannot be skipped)', async () => {
    const t = await startTestGate({ gate: { limits: { message_size: 1000 } } });
    try {
      const c = await SmtpTalk.connect(t.port);
      await c.reply();
      await c.command('EHLO client.example.com');
      const r = await c.command('BDAT 5000 LAST');
      assert.equal(r.code, 552);
      assert.ok(await c.waitClosed());
    } finally {
      await t.close();
    }
  });
});
