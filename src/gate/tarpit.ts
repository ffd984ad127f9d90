// The tarpit: replies to a tarpitted client trickle out a byte at a time
// (spamd's stutter), wasting the sender's time rather than ours. A fixed number
// of slots bounds how many clients are tarpitted at once: each holds a socket
// and a timer, and a flood must not turn the tarpit against the gate. One
// client (its ClientKey: an IPv6 /64 counts as one) holds at most
// `perClient` of them, so one network cannot take every slot.

export type TarpitRefusal = 'full' | 'client';

export class TarpitSlots {
  private used = 0;
  private readonly byClient = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly perClient = max,
  ) {}

  /** Take a slot for `client`; why not when all are taken or the client holds its share. */
  acquire(client: string): true | TarpitRefusal {
    if (this.used >= this.max) return 'full';
    const held = this.byClient.get(client) ?? 0;
    if (held >= this.perClient) return 'client';
    this.used++;
    this.byClient.set(client, held + 1);
    return true;
  }

  release(client: string): void {
    this.used = Math.max(0, this.used - 1);
    const held = (this.byClient.get(client) ?? 1) - 1;
    if (held <= 0) this.byClient.delete(client);
    else this.byClient.set(client, held);
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
