// Bytes to lines, with a bound: a line longer than max_line_bytes is cut
// (its first max_line_bytes kept, the rest dropped as it arrives), so an
// attacker who writes a gigabyte without a newline costs us max_line_bytes of
// memory, and no pattern ever runs on more than that.

export interface SplitLine {
  text: string;
  cut: boolean;
  /** Stream offset just after this line's newline. */
  end: number;
}

const NL = 10;
const CR = 13;

export class LineSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  private dropped = false;

  constructor(private readonly maxBytes: number) {}

  /** Bytes of an unfinished last line held back (the rest of it was dropped when over the limit). */
  get pendingBytes(): number {
    return this.held;
  }

  reset(): void {
    this.parts = [];
    this.held = 0;
    this.dropped = false;
  }

  /** Split `chunk` (which starts at stream offset `base`); lines without their newline are held. */
  push(chunk: Buffer, base: number, out: SplitLine[] = []): SplitLine[] {
    const max = this.maxBytes;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, start);
      if (nl < 0) break;
      if (this.held === 0 && !this.dropped) {
        let end = nl;
        if (end > start && chunk[end - 1] === CR) end--;
        const cut = end - start > max;
        out.push({ text: chunk.toString('utf8', start, cut ? start + max : end), cut, end: base + nl + 1 });
      } else {
        this.hold(chunk.subarray(start, nl));
        let line = Buffer.concat(this.parts, this.held);
        let cut = this.dropped;
        if (!cut && line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
        if (line.length > max) {
          line = line.subarray(0, max);
          cut = true;
        }
        out.push({ text: line.toString('utf8'), cut, end: base + nl + 1 });
        this.reset();
      }
      start = nl + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
    return out;
  }

  /** At the end of the stream: the unfinished last line, if any (a file that does not end in a newline). */
  finish(end: number): SplitLine | undefined {
    if (this.held === 0 && !this.dropped) return undefined;
    const out = this.push(Buffer.from('\n'), end);
    const line = out[0];
    if (line) line.end = end;
    return line;
  }

  /** Keep up to max+1 bytes (one more than a line may have, to tell "exactly max" from "over"); copy, as the caller may reuse its buffer. */
  private hold(piece: Buffer): void {
    const room = this.maxBytes + 1 - this.held;
    if (piece.length > room) {
      this.dropped = true;
      piece = piece.subarray(0, Math.max(room, 0));
    }
    if (piece.length === 0) return;
    this.parts.push(Buffer.from(piece));
    this.held += piece.length;
  }
}
