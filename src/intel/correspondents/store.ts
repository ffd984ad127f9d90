// Where learned correspondents are kept. An interface of its own, so the
// learner and the check do not depend on a backend: MemoryCorrespondentStore
// now; a Store-backed one (SQLite/Redis, shared between hosts) can implement
// the same four methods later.

export type CorrespondentKind = 'domain' | 'address';

export interface Correspondent {
  /** `example.com` (kind domain) or `bob@gmail.com` (kind address), lower case. */
  key: string;
  kind: CorrespondentKind;
  /** Messages (recipients) our users sent there. */
  count: number;
  firstSeen: number;
  lastSeen: number;
  /** Forgotten after this (each message moves it on). */
  expiresAt: number;
}

export interface CorrespondentStore {
  /** Count one more message to `key` at `now`; its expiry becomes `expiresAt`. */
  record(key: string, kind: CorrespondentKind, now: number, expiresAt: number): Promise<Correspondent>;
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
