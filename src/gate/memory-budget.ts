// The gate holds each message in memory from its DATA to the backend's
// answer (the end-of-DATA checks need it whole). MessageMemory is the one
// budget all of a gate's sessions share (gate.limits.memory_mb); a
// MessageBuffer is one message being held, charged to it by the bytes it has
// allocated. A message that does not fit gets 452 4.3.1 (at DATA, or at its
// end when it outgrew what was left) rather than memory the host lacks.

export class MessageMemory {
  private held = 0;

  constructor(readonly limit: number) {}

  /** Bytes charged now. */
  get used(): number {
    return this.held;
  }

  /** Charge `n` bytes if they fit under the limit; false (nothing charged) if not. */
  reserve(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  release(n: number): void {
    this.held = Math.max(0, this.held - n);
  }
}

/**
 * One message's bytes, in one buffer that grows by doubling (so the message
 * is a single copy, never parts plus their concatenation). Its capacity is
 * what it charges to the budget; growing charges the new buffer before the
 * old one is given back, as both exist while it is copied.
 */
export class MessageBuffer {
  private buf: Buffer;
  private len = 0;
  private charged: number;

  private constructor(
    private readonly memory: MessageMemory | undefined,
    capacity: number,
    private readonly maxBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.charged = memory ? capacity : 0;
  }

  /**
   * A buffer of `capacity` bytes charged to `memory`, or undefined when the
   * budget cannot take it. Without a budget, unbounded (tests, tools).
   */
  static open(memory: MessageMemory | undefined, capacity: number, maxBytes = Number.MAX_SAFE_INTEGER): MessageBuffer | undefined {
    const cap = Math.max(1, Math.min(capacity, maxBytes));
    if (memory && !memory.reserve(cap)) return undefined;
    return new MessageBuffer(memory, cap, maxBytes);
  }

  get length(): number {
    return this.len;
  }

  /** Bytes charged to the budget now. */
  get bytesCharged(): number {
    return this.charged;
  }

  /** Add `b`; false when growing would exceed the budget (the bytes are dropped, the buffer freed). */
  append(b: Buffer): boolean {
    const need = this.len + b.length;
    if (need > this.buf.length && !this.grow(need)) {
      this.release();
      return false;
    }
    b.copy(this.buf, this.len);
    this.len = need;
    return true;
  }

  /** The message: a view of the buffer, valid until release(). */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Give the bytes back to the budget and drop the buffer (again: nothing). */
  release(): void {
    this.memory?.release(this.charged);
    this.charged = 0;
    this.buf = EMPTY;
    this.len = 0;
  }

  private grow(need: number): boolean {
    const cap = Math.min(Math.max(need, this.buf.length * 2), Math.max(need, this.maxBytes));
    if (this.memory && !this.memory.reserve(cap)) return false;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.len);
    this.memory?.release(this.charged);
    this.charged = this.memory ? cap : 0;
    this.buf = next;
    return true;
  }
}

const EMPTY = Buffer.alloc(0);
