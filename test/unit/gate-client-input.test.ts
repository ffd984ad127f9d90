// The gate's DATA reader copies runs of unchanged lines at once; what it
// hands on must be exactly what reading line by line gives (unstuffed,
// CRLF-ended, bare CRs made CRLF, the same size and flags), however the input
// is cut into reads; and only <CR><LF>.<CR><LF> ends it (SMTP smuggling).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ClientInput, type DataLimits } from '../../src/gate/client-input.js';

/** Enough of a socket for ClientInput: data/end events, pause and resume. */
function fakeSocket(): Socket & EventEmitter {
  const s = new EventEmitter() as Socket & EventEmitter;
  s.pause = () => s;
  s.resume = () => s;
  return s;
}

/** Line by line, as the gate read DATA before: the reference. */
function referenceData(input: Buffer, limits: DataLimits) {
  const parts: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  let longLine = false;
  let bareLf = false;
  let bareCr = false;
  let atLineStart = true;
  let afterCrlf = true;
  let lineLength = 0;
  const append = (b: Buffer): void => {
    size += b.length;
    if (tooBig) return;
    if (size > limits.maxBytes) {
      tooBig = true;
      parts.length = 0;
      return;
    }
    parts.push(b);
  };
  let pos = 0;
  for (;;) {
    const lf = input.indexOf(10, pos);
    if (lf < 0) return undefined;
    const crlf = lf > pos && input[lf - 1] === 13;
    const content = input.subarray(pos, crlf ? lf - 1 : lf);
    pos = lf + 1;
    if (!crlf) bareLf = true;
    if (atLineStart && afterCrlf && crlf && content.length === 1 && content[0] === 46) {
      return { message: tooBig ? Buffer.alloc(0) : Buffer.concat(parts), size, tooBig, longLine, bareLf, bareCr, rest: input.subarray(pos) };
    }
    lineLength += content.length;
    longLine ||= lineLength > limits.lineLimit;
    const text = atLineStart && content[0] === 46 ? content.subarray(1) : content;
    if (text.includes(13)) bareCr = true;
    append(Buffer.from(text.toString('latin1').replace(/\r/g, '\r\n'), 'latin1'));
    append(Buffer.from('\r\n'));
    atLineStart = true;
    afterCrlf = crlf;
    lineLength = 0;
  }
}

const PIECES = ['line', ' ', '.', '..', '\r\n', '\n', '\r', 'x'.repeat(40), '.\r\n', '\r\n.\r\n', '\r\n.\n', 'é', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\n.\n'];

function randomMessage(rand: () => number): Buffer {
  let s = '';
  const n = Math.floor(rand() * 60);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(rand() * PIECES.length)];
  return Buffer.from(`${s}\r\n.\r\nNEXT\r\n`);
}

/** A small deterministic generator, so a failure can be replayed. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

test('readData gives what reading line by line gave, for any cut of the input into reads', async () => {
  const rand = lcg(42);
  for (let round = 0; round < 2000; round++) {
    const input = randomMessage(rand);
    const limits: DataLimits = { maxBytes: 1 + Math.floor(rand() * 600), lineLimit: 20 + Math.floor(rand() * 100), timeoutMs: 1000 };
    const want = referenceData(input, limits);
    assert.ok(want, 'the input has a final dot');
    const socket = fakeSocket();
    const reader = new ClientInput(socket);
    const got = reader.readData(limits);
    // Cut into 1 to 5 reads at random places.
    const cuts = Array.from({ length: Math.floor(rand() * 5) }, () => Math.floor(rand() * input.length)).sort((a, b) => a - b);
    let from = 0;
    for (const c of [...cuts, input.length]) {
      if (c > from) socket.emit('data', input.subarray(from, c));
      from = Math.max(from, c);
    }
    const r = await got;
    assert.equal(r.kind, 'data');
    if (r.kind !== 'data') continue;
    const context = JSON.stringify({ input: input.toString('latin1'), limits, cuts });
    assert.equal(r.message.toString('latin1'), want.message.toString('latin1'), context);
    assert.deepEqual(
      { size: r.size, tooBig: r.tooBig, longLine: r.longLine, bareLf: r.bareLf, bareCr: r.bareCr },
      { size: want.size, tooBig: want.tooBig, longLine: want.longLine, bareLf: want.bareLf, bareCr: want.bareCr },
      context,
    );
    // What follows the final dot stays for the next command.
    const lf = want.rest.indexOf(10);
    const line = await reader.readLine(1000, 1000);
    assert.equal(line.kind === 'line' ? line.raw.toString('latin1') : line.kind, want.rest.subarray(0, lf > 0 && want.rest[lf - 1] === 13 ? lf - 1 : lf).toString('latin1'), context);
    reader.close();
  }
});

test('readLine and readData time out when nothing comes, and the connection timer is cleared on close', async () => {
  const reader = new ClientInput(fakeSocket());
  assert.equal((await reader.readLine(100, 20)).kind, 'timeout');
  assert.equal((await reader.readData({ maxBytes: 100, lineLimit: 100, timeoutMs: 20 })).kind, 'timeout');
  reader.close();
});
