// Tailing real files in a temporary directory: rename-and-create,
// copytruncate, truncation, restarts with the saved offset (while running and
// while stopped), partial and over-long lines. Lines are counted exactly: no
// line twice, none skipped.

import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTail, type TailLine } from '../../src/intel/logwatch/tail.js';
import { OffsetStore } from '../../src/intel/logwatch/state.js';

let dir: string;
let log: string;
let stateFile: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'frontline-tail-'));
  log = join(dir, 'auth.log');
  stateFile = join(dir, 'state', 'logwatch-state.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lines = (from: number, n: number, tag = 'line') => Array.from({ length: n }, (_, i) => `${tag} ${from + i}\n`).join('');

interface Tailer {
  tail: FileTail;
  got: TailLine[];
  texts: () => string[];
}

async function tailer(opts: { startAt?: 'end' | 'start'; maxLineBytes?: number; chunkBytes?: number; onLines?: (l: TailLine[]) => void } = {}): Promise<Tailer> {
  const offsets = await OffsetStore.open(stateFile);
  const got: TailLine[] = [];
  const tail = new FileTail({
    path: log,
    offsets,
    maxLineBytes: opts.maxLineBytes ?? 4096,
    startAt: opts.startAt ?? 'start',
    chunkBytes: opts.chunkBytes,
    onLines: (l) => {
      opts.onLines?.(l);
      got.push(...l);
    },
  });
  return { tail, got, texts: () => got.map((l) => l.text) };
}

describe('following one file', () => {
  test('reads new lines as they come; a partial line waits for its newline', async () => {
    writeFileSync(log, lines(1, 3));
    const t = await tailer();
    await t.tail.poll();
    assert.deepEqual(t.texts(), ['line 1', 'line 2', 'line 3']);
    appendFileSync(log, 'line 4\nline ');
    await t.tail.poll();
    assert.deepEqual(t.texts().slice(3), ['line 4']);
    appendFileSync(log, '5\r\n');
    await t.tail.poll();
    await t.tail.poll();
    assert.deepEqual(t.texts().slice(3), ['line 4', 'line 5']);
    assert.deepEqual(t.got.map((l) => l.lineNo), [1, 2, 3, 4, 5]);
    await t.tail.stop();
  });

  test('start_at end: existing lines (and a trailing fragment) are not read', async () => {
    writeFileSync(log, `${lines(1, 3)}half a li`);
    const t = await tailer({ startAt: 'end' });
    await t.tail.poll();
    assert.deepEqual(t.texts(), []);
    appendFileSync(log, `ne\n${lines(4, 2)}`);
    await t.tail.poll();
    assert.deepEqual(t.texts(), ['line 4', 'line 5']);
    await t.tail.stop();
  });

  test('a file that does not exist yet is read from its first line once it appears', async () => {
    const t = await tailer({ startAt: 'end' });
    await t.tail.poll();
    writeFileSync(log, lines(1, 2));
    await t.tail.poll();
    assert.deepEqual(t.texts(), ['line 1', 'line 2']);
    await t.tail.stop();
  });

  test('over-long lines are cut to max_line_bytes, across read chunks too', async () => {
    const long = 'x'.repeat(10_000);
    writeFileSync(log, `short\n${long}\nafter\n${'y'.repeat(300)}\n`);
    const t = await tailer({ maxLineBytes: 256, chunkBytes: 1000 });
    await t.tail.poll();
    assert.deepEqual(
      t.got.map((l) => [l.text.length, l.cut, l.text[0]]),
      [[5, false, 's'], [256, true, 'x'], [5, false, 'a'], [256, true, 'y']],
    );
    // A line of exactly max bytes is not cut.
    appendFileSync(log, `${'z'.repeat(256)}\r\n`);
    await t.tail.poll();
    assert.deepEqual([t.got[4].text.length, t.got[4].cut], [256, false]);
    await t.tail.stop();
  });

  test('a batch that fails to process is read again, not skipped', async () => {
    writeFileSync(log, lines(1, 3));
    let fail = true;
    const t = await tailer({
      onLines: () => {
        if (fail) {
          fail = false;
          throw new Error('sink down');
        }
      },
    });
    await assert.rejects(t.tail.poll(), /sink down/);
    await t.tail.poll();
    assert.deepEqual(t.texts(), ['line 1', 'line 2', 'line 3']);
    await t.tail.stop();
  });
});

describe('rotation while running', () => {
  test('rename and create: the rest of the old file, then the new one from its start', async () => {
    writeFileSync(log, lines(1, 3));
    const t = await tailer();
    await t.tail.poll();
    appendFileSync(log, lines(4, 2)); // written before the rename, not yet read
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(6, 3));
    await t.tail.poll();
    assert.deepEqual(t.texts(), lines(1, 8).trim().split('\n'));
    // The daemon writes one more line into the old file before it reopens its log.
    appendFileSync(`${log}.1`, lines(9, 1, 'late'));
    appendFileSync(log, lines(9, 1));
    await t.tail.poll();
    assert.deepEqual(t.texts().slice(8).sort(), ['late 9', 'line 9']);
    await t.tail.stop();
  });

  test('rename, and the new file appears only later', async () => {
    writeFileSync(log, lines(1, 2));
    const t = await tailer();
    await t.tail.poll();
    appendFileSync(log, lines(3, 1));
    renameSync(log, `${log}.1`);
    await t.tail.poll();
    writeFileSync(log, lines(4, 2));
    await t.tail.poll();
    assert.deepEqual(t.texts(), lines(1, 5).trim().split('\n'));
    await t.tail.stop();
  });

  test('copytruncate: lines written since the last read are taken from the copy, then the file from 0', async () => {
    writeFileSync(log, lines(1, 3));
    const t = await tailer();
    await t.tail.poll();
    appendFileSync(log, lines(4, 2));
    copyFileSync(log, `${log}.1`);
    truncateSync(log, 0);
    appendFileSync(log, lines(6, 2));
    await t.tail.poll();
    assert.deepEqual(t.texts(), lines(1, 7).trim().split('\n'));
    await t.tail.stop();
  });

  test('plain truncation (no copy): read again from 0', async () => {
    writeFileSync(log, lines(1, 5));
    const t = await tailer();
    await t.tail.poll();
    truncateSync(log, 0);
    appendFileSync(log, lines(6, 2));
    await t.tail.poll();
    assert.deepEqual(t.texts(), lines(1, 7).trim().split('\n'));
    assert.deepEqual(t.got.slice(5).map((l) => l.lineNo), [1, 2]);
    await t.tail.stop();
  });

  test('truncated and rewritten past the old offset before we looked: the first line tells', async () => {
    writeFileSync(log, lines(1, 2, 'old'));
    const t = await tailer();
    await t.tail.poll();
    truncateSync(log, 0);
    appendFileSync(log, lines(1, 10, 'new'));
    await t.tail.poll();
    assert.deepEqual(t.texts(), [...lines(1, 2, 'old').trim().split('\n'), ...lines(1, 10, 'new').trim().split('\n')]);
    await t.tail.stop();
  });
});

describe('restart with the saved offset', () => {
  test('same file: continues exactly where it stopped', async () => {
    writeFileSync(log, lines(1, 10));
    const a = await tailer();
    await a.tail.poll();
    await a.tail.stop();
    appendFileSync(log, lines(11, 5));
    const b = await tailer();
    await b.tail.poll();
    assert.deepEqual(b.texts(), lines(11, 5).trim().split('\n'));
    assert.deepEqual(b.got.map((l) => l.lineNo), [11, 12, 13, 14, 15]);
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    assert.equal(state.files[log].offset, readFileSync(log).length);
    await b.tail.stop();
  });

  test('a partial last line is not saved as read', async () => {
    writeFileSync(log, 'line 1\nline ');
    const a = await tailer();
    await a.tail.poll();
    await a.tail.stop();
    appendFileSync(log, '2\n');
    const b = await tailer();
    await b.tail.poll();
    assert.deepEqual([...a.texts(), ...b.texts()], ['line 1', 'line 2']);
    await b.tail.stop();
  });

  test('rotated (rename) while stopped: the old file is finished from the offset, then the new one', async () => {
    writeFileSync(log, lines(1, 4));
    const a = await tailer();
    await a.tail.poll();
    await a.tail.stop();
    appendFileSync(log, lines(5, 3));
    renameSync(log, `${log}.1`);
    writeFileSync(log, lines(8, 2));
    const b = await tailer();
    await b.tail.poll();
    assert.deepEqual(b.texts(), lines(5, 5).trim().split('\n'));
    await b.tail.stop();
  });

  test('rotated while stopped and the old file compressed away: the new file from 0', async () => {
    writeFileSync(log, lines(1, 4));
    const a = await tailer();
    await a.tail.poll();
    await a.tail.stop();
    appendFileSync(log, lines(5, 3));
    renameSync(log, `${log}.1.gz`);
    writeFileSync(log, lines(8, 2));
    const b = await tailer();
    await b.tail.poll();
    assert.deepEqual(b.texts(), ['line 8', 'line 9']);
    await b.tail.stop();
  });

  test('copytruncate while stopped: the rest from the copy, then the file from 0', async () => {
    writeFileSync(log, lines(1, 4));
    const a = await tailer();
    await a.tail.poll();
    await a.tail.stop();
    appendFileSync(log, lines(5, 3));
    copyFileSync(log, `${log}.1`);
    truncateSync(log, 0);
    appendFileSync(log, lines(8, 20));
    const b = await tailer();
    await b.tail.poll();
    assert.deepEqual(b.texts(), lines(5, 23).trim().split('\n'));
    await b.tail.stop();
  });

  test('a damaged state file is reported and ignored', async () => {
    writeFileSync(log, lines(1, 2));
    const a = await tailer();
    await a.tail.poll();
    await a.tail.stop();
    writeFileSync(stateFile, '{"files": {');
    const b = await tailer();
    await b.tail.poll();
    assert.deepEqual(b.texts(), ['line 1', 'line 2']);
    await b.tail.stop();
  });

  test('random appends, rotations of every kind and restarts: every line exactly once, in order', async () => {
    // mulberry32: small, seeded, well spread.
    let seed = Number(process.env.TAIL_SEED ?? 42);
    const rand = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) % n;
    };
    let next = 2;
    const seen: string[] = [];
    let t = await tailer({ chunkBytes: 4096 });
    writeFileSync(log, lines(1, 1));
    await t.tail.poll();
    for (let step = 0; step < 300; step++) {
      const n = rand(40);
      appendFileSync(log, lines(next, n));
      next += n;
      const op = rand(8);
      switch (op) {
        case 0:
          renameSync(log, `${log}.1`);
          if (rand(2) === 0) writeFileSync(log, '');
          break;
        case 1:
          copyFileSync(log, `${log}.1`);
          truncateSync(log, 0);
          break;
        case 2:
          await t.tail.stop();
          seen.push(...t.texts());
          t = await tailer({ chunkBytes: 4096 });
          break;
      }
      // A busy log: after a rotation the daemon writes at least one line before we look again. (A
      // file we have read nothing of, filled and copytruncated between two polls, cannot be told
      // from one never written to: that window is copytruncate's own.)
      const m = op < 2 ? 1 + rand(5) : rand(3) > 0 ? rand(5) : 0;
      appendFileSync(log, lines(next, m));
      next += m;
      await t.tail.poll();
    }
    await t.tail.poll();
    await t.tail.stop();
    seen.push(...t.texts());
    assert.equal(seen.length, next - 1);
    assert.deepEqual(seen, lines(1, next - 1).trim().split('\n'));
  });
});
