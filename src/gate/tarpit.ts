// The tarpit: replies to a tarpitted client trickle out a byte at a time
// (spamd's stutter), wasting the sender's time rather than ours. A fixed number
// of slots bounds how many clients are tarpitted at once: each holds a socket
// and a timer, and a flood must not turn the tarpit against the gate.

export class TarpitSlots {
  private used = 0;

  constructor(private readonly max: number) {}

  /** Take a slot; false when all are taken. */
  acquire(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }

  release(): void {
    this.used = Math.max(0, this.used - 1);
  }

  get inUse(): number {
    return this.used;
  }
}

/** Write `text` a byte every `stutterMs`, at most `maxMs` in all (the rest at once); stops if the socket closes. */
export async function stutter(
  write: (s: string) => boolean,
  isOpen: () => boolean,
  text: string,
  stutterMs: number,
  maxMs: number,
): Promise<void> {
  if (stutterMs <= 0) {
    write(text);
    return;
  }
  const t0 = Date.now();
  for (let i = 0; i < text.length; i++) {
    if (!isOpen()) return;
    if (Date.now() - t0 >= maxMs) {
      write(text.slice(i));
      return;
    }
    write(text[i]);
    // No pause after the last byte: the client may answer at once.
    if (i < text.length - 1) await new Promise((r) => setTimeout(r, stutterMs));
  }
}
