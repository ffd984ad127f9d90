// A firewall script of a million elements written into one growing buffer:
// addresses and timeouts go in as digits from the numbers, with no string
// per element, and the text comes out once at the end. Scripts are ASCII.

import { secondsLeft } from './types.js';

const ASCII = new TextEncoder();

/** The bytes of ASCII text, for ScriptWriter.bytes(). */
export function ascii(s: string): Uint8Array {
  return ASCII.encode(s);
}

export class ScriptWriter {
  private buf = new Uint8Array(1 << 16);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** ASCII text (addresses, keywords, a whole line). */
  text(s: string): this {
    this.room(s.length);
    const { written } = ASCII.encodeInto(s, this.buf.subarray(this.len));
    this.len += written;
    return this;
  }

  /** Bytes made once with ascii() (what every element repeats: " timeout ", ", "). */
  bytes(b: Uint8Array): this {
    this.room(b.length);
    const buf = this.buf;
    let at = this.len;
    for (let i = 0; i < b.length; i++) buf[at++] = b[i];
    this.len = at;
    return this;
  }

  /** A non-negative integer below 2^53, in decimal. */
  uint(n: number): this {
    this.room(16);
    const buf = this.buf;
    if (n < 10) {
      buf[this.len++] = 48 + n;
      return this;
    }
    let digits = 0;
    for (let m = n; m >= 1; m = Math.floor(m / 10)) digits++;
    let at = this.len + digits;
    this.len = at;
    for (let m = n; m >= 1; m = Math.floor(m / 10)) buf[--at] = 48 + (m % 10);
    return this;
  }

  /** An IPv4 address (unsigned 32-bit) as a dotted quad. */
  v4(a: number): this {
    this.room(15);
    this.byte(a >>> 24);
    this.buf[this.len++] = 46;
    this.byte((a >>> 16) & 255);
    this.buf[this.len++] = 46;
    this.byte((a >>> 8) & 255);
    this.buf[this.len++] = 46;
    this.byte(a & 255);
    return this;
  }

  private byte(b: number): void {
    const buf = this.buf;
    if (b >= 100) {
      buf[this.len++] = 48 + Math.floor(b / 100);
      buf[this.len++] = 48 + (Math.floor(b / 10) % 10);
    } else if (b >= 10) buf[this.len++] = 48 + Math.floor(b / 10);
    buf[this.len++] = 48 + (b % 10);
  }

  /** Seconds left of a ban (secondsLeft), in decimal. */
  secondsLeft(expiresAt: number, now: number, cap: number): this {
    return this.uint(secondsLeft(expiresAt, now, cap));
  }

  toString(): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset, this.len).toString('latin1');
  }
}
