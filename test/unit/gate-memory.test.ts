// The gate's budget for message bytes held in memory (gate.limits.memory_mb):
// a message that does not fit gets 452 4.3.1 — at DATA when the budget
// cannot take its first buffer (or its declared SIZE), at the end of DATA when
// it outgrew what was left — and every byte is given back after the backend's
// answer, a refusal, or a client that hangs up mid-message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestGate } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { MessageBuffer, MessageMemory } from '../../src/gate/memory-budget.js';

const MiB = 1024 * 1024;

function body(bytes: number): string {
  const line = `${'x'.repeat(76)}\r\n`;
  return `Subject: big\r\n\r\n${line.repeat(Math.ceil(bytes / line.length))}`;
}

async function open(port: number, size?: number): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(port);
  await c.reply();
  assert.equal((await c.command('EHLO client.example.com')).code, 250);
  assert.equal((await c.command(`MAIL FROM:<a@example.com>${size ? ` SIZE=${size}` : ''}`)).code, 250);
  assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
  return c;
}

function logLines(stream: PassThrough): Array<Record<string, unknown>> {
  return ((stream.read() as Buffer | null)?.toString() ?? '')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a declared SIZE the budget cannot hold: 452 4.3.1 at DATA, with a log line naming the limit', async () => {
  const logs = new PassThrough();
  const t = await startTestGate({ gate: { limits: { memory_mb: 1 } }, logStream: logs });
  try {
    const c = await open(t.port, 2 * MiB);
    const r = await c.command('DATA');
    assert.equal(r.code, 452);
    assert.match(r.text, /^4\.3\.1 /);
    // The transaction stands: a smaller message on the same connection goes through.
    assert.equal((await c.command('RSET')).code, 250);
    assert.equal((await c.command('MAIL FROM:<a@example.com> SIZE=1000')).code, 250);
    assert.equal((await c.command('RCPT TO:<b@example.net>')).code, 250);
    assert.equal((await c.command('DATA')).code, 354);
    assert.equal((await c.command('Subject: small\r\n\r\nhi\r\n.')).code, 250);
    c.close();
    const hit = logLines(logs).find((l) => l.limit === 'memory_mb');
    assert.ok(hit, 'a log line names the limit');
    assert.match(String(hit.msg), /memory_mb/);
  } finally {
    await t.close();
  }
});

test('two messages without SIZE that together exceed the budget: the second gets 452 4.3.1 at its end; bytes are given back after', async () => {
  const t = await startTestGate({ gate: { limits: { memory_mb: 2 } } });
  try {
    const a = await open(t.port);
    const b = await open(t.port);
    assert.equal((await a.command('DATA')).code, 354);
    const big = body(600 * 1024);
    // A holds ~600 KB in a buffer doubled to 1 MiB (1.5 MiB while it grew) and has not finished;
    // B's buffer cannot double to 1 MiB beside it.
    a.sendRaw(big);
    await sleep(200);
    assert.equal((await b.command('DATA')).code, 354);
    const rb = await b.command(`${big}.`);
    assert.equal(rb.code, 452, rb.text);
    assert.match(rb.text, /^4\.3\.1 /);
    assert.equal((await a.command('.')).code, 250);
    // A's bytes were given back: B's retry fits now.
    assert.equal((await b.command('MAIL FROM:<a@example.com>')).code, 250);
    assert.equal((await b.command('RCPT TO:<b@example.net>')).code, 250);
    assert.equal((await b.command('DATA')).code, 354);
    assert.equal((await b.command(`${big}.`)).code, 250);
    assert.equal(t.sink.messages.length, 2);
    a.close();
    b.close();
  } finally {
    await t.close();
  }
});

test('a client that hangs up mid-message gives its bytes back', async () => {
  const t = await startTestGate({ gate: { limits: { memory_mb: 2 } } });
  try {
    const big = body(900 * 1024);
    for (let i = 0; i < 3; i++) {
      const c = await open(t.port);
      assert.equal((await c.command('DATA')).code, 354);
      c.sendRaw(big);
      await sleep(100);
      c.close();
    }
    await sleep(100);
    const c = await open(t.port);
    assert.equal((await c.command('DATA')).code, 354);
    assert.equal((await c.command(`${big}.`)).code, 250);
    c.close();
  } finally {
    await t.close();
  }
});

test('MessageBuffer: grows by doubling within the budget, charges its capacity, gives everything back', () => {
  const memory = new MessageMemory(100);
  const b = MessageBuffer.open(memory, 10, 1000);
  assert.ok(b);
  assert.equal(memory.used, 10);
  assert.ok(b.append(Buffer.alloc(8, 1)));
  assert.ok(b.append(Buffer.alloc(8, 2)));
  assert.equal(memory.used, 20);
  assert.deepEqual([...b.bytes], [...Buffer.alloc(8, 1), ...Buffer.alloc(8, 2)]);
  assert.equal(MessageBuffer.open(memory, 81), undefined, 'the budget cannot take it');
  assert.equal(memory.used, 20);
  assert.equal(b.append(Buffer.alloc(100)), false, 'growing past the budget fails and frees the buffer');
  assert.equal(memory.used, 0);
  b.release();
  assert.equal(memory.used, 0);
});
