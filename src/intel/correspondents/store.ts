// Where learned correspondents are kept. An interface of its own, so the
// learner and the check do not depend on a backend: StoreCorrespondents keeps
// them in the state store (SQLite, or Redis shared by every MX host), so they
// survive a restart; MemoryCorrespondentStore serves tests and one-shot runs.

import type { Correspondent, CorrespondentKind, Store } from '../../store/types.js';

export type { Correspondent, CorrespondentKind } from '../../store/types.js';

export interface CorrespondentStore {
  /** Count one more message to `key` at `now`; its expiry becomes `expiresAt`. */
  record(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent>;
  /** record() when nobody needs the answer (the policy path): a failure goes to `onError`. Optional: learners fall back to record(). */
  note?(key: string, kind: CorrespondentKind, now: number, expiresAt: number, onError: (err: unknown) => void): void;
  /** The correspondent, unless unknown or expired at `now`. */
  get(key: string, now: number): Promise<Correspondent | undefined>;
  /** Every unexpired correspondent. */
  all(now: number): Promise<Correspondent[]>;
  /** Forget the expired ones; returns how many. */
  prune(now: number): Promise<number>;
}

/**
 * Correspondents in memory, at most `maxEntries`: past that, the one seen
 * longest ago is forgotten first (a hacked account writing to 100,000
 * addresses cannot grow it without bound).
 */
export class MemoryCorrespondentStore implements CorrespondentStore {
  /** Map order = least recently seen first. */
  private readonly entries = new Map<string, Correspondent>();

  constructor(private readonly maxEntries = 100_000) {}

  get size(): number {
    return this.entries.size;
  }

  async record(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent> {
    const had = this.entries.get(key);
    const live = had && had.expiresAt > now ? had : undefined;
    const c: Correspondent = {
      key,
      kind,
      count: (live?.count ?? 0) + 1,
      firstSeen: live?.firstSeen ?? now,
      lastSeen: now,
      expiresAt: Math.max(expiresAt, live?.expiresAt ?? 0),
    };
    this.entries.delete(key);
    this.entries.set(key, c);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    return { ...c };
  }

  async get(key: string, now: number): Promise<Correspondent | undefined> {
    const c = this.entries.get(key);
    return c && c.expiresAt > now ? { ...c } : undefined;
  }

  async all(now: number): Promise<Correspondent[]> {
    return [...this.entries.values()].filter((c) => c.expiresAt > now).map((c) => ({ ...c }));
  }

  async prune(now: number): Promise<number> {
    let n = 0;
    for (const [key, c] of this.entries) {
      if (c.expiresAt <= now) {
        this.entries.delete(key);
        n++;
      }
    }
    return n;
  }
}

/** Records between two trims of the store to `maxEntries` (a trim walks the table's expiry index). */
const TRIM_EVERY = 10_000;

/**
 * Correspondents in the state store, at most `maxEntries` (checked every
 * 10,000 records: a hacked account writing to 100,000 addresses cannot grow
 * it without bound); the store's purge drops the expired ones.
 */
export class StoreCorrespondents implements CorrespondentStore {
  private sinceTrim = 0;

  constructor(
    private readonly store: Pick<Store, 'correspondentRecord' | 'correspondentNote' | 'correspondentGet' | 'correspondentAll' | 'correspondentTrim'>,
    private readonly maxEntries = 100_000,
  ) {}

  async record(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent> {
    const c = await this.store.correspondentRecord(key, kind, now, expiresAt);
    if (++this.sinceTrim >= TRIM_EVERY) {
      this.sinceTrim = 0;
      await this.store.correspondentTrim(this.maxEntries);
    }
    return c;
  }

  note(key: string, kind: CorrespondentKind, now: number, expiresAt: number, onError: (err: unknown) => void): void {
    if (this.store.correspondentNote) this.store.correspondentNote(key, kind, now, expiresAt, onError);
    else this.store.correspondentRecord(key, kind, now, expiresAt).catch(onError);
    if (++this.sinceTrim >= TRIM_EVERY) {
      this.sinceTrim = 0;
      this.store.correspondentTrim(this.maxEntries).catch(onError);
    }
  }

  get(key: string, now: number): Promise<Correspondent | undefined> {
    return this.store.correspondentGet(key, now);
  }

  all(now: number): Promise<Correspondent[]> {
    return this.store.correspondentAll(now);
  }

  /** The store's purge drops expired correspondents; this trims to the cap. */
  prune(): Promise<number> {
    return this.store.correspondentTrim(this.maxEntries);
  }
}
