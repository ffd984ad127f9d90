// Where the intel jobs put what they learn: named lists of entries, each with
// a source and an expiry. A narrow interface of our own, so the jobs do not
// depend on the whole Store; `storeListSink` (store-sink.ts) adapts the
// store room's Store to it, and MemoryListSink serves tests and one-shot runs.

export interface ListEntry {
  /** Canonical CIDR text (`192.0.2.0/24`), or a domain/address for domain lists. */
  value: string;
  /** Who put it there: `spf:gmail.com`, `import:spamhaus-drop`, … */
  source: string;
  /** Unix milliseconds after which the entry no longer counts; absent = never expires. */
  expiresAt?: number;
}

export interface ListSink {
  /** The list's current entries (expired ones may be included; callers check `expiresAt`). */
  list(name: string): Promise<ListEntry[]>;
  /** Make the list hold exactly `entries` (one per value): others are removed, these added or updated. */
  replaceList(name: string, entries: ListEntry[]): Promise<void>;
}

/** Lists held in memory. */
export class MemoryListSink implements ListSink {
  readonly lists = new Map<string, ListEntry[]>();
  /** Every replaceList call, in order (tests check what was written). */
  readonly writes: Array<{ name: string; entries: ListEntry[] }> = [];

  async list(name: string): Promise<ListEntry[]> {
    return (this.lists.get(name) ?? []).map((e) => ({ ...e }));
  }

  async replaceList(name: string, entries: ListEntry[]): Promise<void> {
    const copy = entries.map((e) => ({ ...e }));
    this.lists.set(name, copy);
    this.writes.push({ name, entries: copy });
  }

  /** Values of a list that have not expired at `now`. */
  live(name: string, now: number): string[] {
    return (this.lists.get(name) ?? []).filter((e) => e.expiresAt === undefined || e.expiresAt > now).map((e) => e.value);
  }
}
