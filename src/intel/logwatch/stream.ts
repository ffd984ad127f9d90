// A byte stream (standard input, a file being replayed) as lines, cut to
// max_line_bytes with bounded memory, handed over in batches.

import type { Readable } from 'node:stream';
import type { LogLine } from './line.js';
import { LineSplitter } from './splitter.js';

/** The lines of `stream`, one batch a chunk read (never an empty batch), numbered from 1. */
async function* lineBatches(stream: Readable, maxLineBytes: number): AsyncGenerator<LogLine[]> {
  const splitter = new LineSplitter(maxLineBytes);
  let offset = 0;
  let lineNo = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    const split = splitter.push(buf, offset);
    offset += buf.length;
    if (split.length > 0) yield split.map((l) => ({ text: l.text, cut: l.cut, lineNo: ++lineNo }));
  }
  const last = splitter.finish(offset);
  if (last) yield [{ text: last.text, cut: last.cut, lineNo: ++lineNo }];
}

/** Read `stream` to its end; `onLines` gets each batch (awaited: it is the back-pressure). */
export async function readStreamLines(stream: Readable, maxLineBytes: number, onLines: (lines: LogLine[]) => Promise<void> | void): Promise<number> {
  let count = 0;
  for await (const batch of lineBatches(stream, maxLineBytes)) {
    count += batch.length;
    await onLines(batch);
  }
  return count;
}

/** The same, as an async iterable of lines (for replay()). */
export async function* streamLines(stream: Readable, maxLineBytes: number): AsyncGenerator<LogLine> {
  for await (const batch of lineBatches(stream, maxLineBytes)) yield* batch;
}
