// Rollups of the decision log: counters kept as events are written, so that
// "decisions per minute over the last week" or "top refused clients today"
// read a few thousand counter rows instead of a million events. Both
// backends count with this module (the SQLite writer thread in its batch
// transaction, Redis in one script call per batch), so they answer alike;
// src/report/ turns the counts into statistics (docs/report.md).
//
// A counter is (dimension, bucket, key, action) → n:
//
//   dim         bucket   key
//   minute      minute   '' — or the rule, for `defer` (greylisting and other deferrals are told apart by rule)
//   rule        hour     the rule that decided
//   client      hour     the client IP (canonical)
//   domain      hour     the sender's domain ('<>' for the null sender; none before MAIL)
//   zone        hour     each DNS list zone that listed the client (from the dnsbl/dnswl evidence)
//   zone-skip   hour     each zone not consulted (out of use after its health probe, or not answering)
//   would-have  hour     a rule in test mode that would have acted; `action` is what it would have done
//
// Coarser counters of the same numbers (COARSE_LEVELS), stored under
// `<dim>@<level>`: `minute@hour` (the timeline of a week is 168 hours, not
// 10,080 minutes), `client@day` and `domain@day` (a week of hourly client
// counters is most of a million rows: one per new address and hour). A
// query reads each stretch of its window from the coarsest counters that
// cover it whole (rollupSpans), so the answer is the same as from the
// finest ones.

import { domainOf } from '../core/address.js';
import { Lru } from '../core/lru.js';
import type { DecisionEvent } from './types.js';

export const ROLLUP_DIMS = ['minute', 'rule', 'client', 'domain', 'zone', 'zone-skip', 'would-have'] as const;
export type RollupDim = (typeof ROLLUP_DIMS)[number];

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A coarser counter kept beside a dimension's own: stored as `<dim>@<name>`, buckets of `ms`. */
export interface RollupLevel {
  name: 'hour' | 'day';
  ms: number;
}

/**
 * The coarser counters of each dimension, coarsest first. Only where a
 * window's rows are many: the other dimensions have a few dozen keys an
 * hour, and every level is one more counter to write per decision.
 */
export const COARSE_LEVELS: Readonly<Partial<Record<RollupDim, readonly RollupLevel[]>>> = {
  minute: [{ name: 'hour', ms: HOUR_MS }],
  client: [{ name: 'day', ms: DAY_MS }],
  domain: [{ name: 'day', ms: DAY_MS }],
};

/** The stored name of a dimension's counters at a level (`client@day`), or its own (`client`). */
export function storedDim(dim: RollupDim, level?: RollupLevel): string {
  return level === undefined ? dim : `${dim}@${level.name}`;
}

/** Bucket length of a stored dimension name (`minute`, `client`, `minute@hour`, `client@day`). */
export function storedBucketMs(stored: string): number {
  const at = stored.indexOf('@');
  if (at < 0) return bucketMs(stored as RollupDim);
  return stored.slice(at + 1) === 'day' ? DAY_MS : HOUR_MS;
}

/** A stretch of a window read from one stored dimension: buckets from `from` (inclusive) to `to` (exclusive; Infinity: no end). */
export interface RollupSpan {
  stored: string;
  ms: number;
  from: number;
  to: number;
}

/**
 * The stretches a window is read from: its buckets (as the dimension's own
 * counters have them: from the one holding `since` to the one holding
 * `until`) covered by the coarsest counters that fit whole, the rest by
 * finer ones. A coarse bucket is used only from `floor` on (the oldest
 * bucket any counter of the dimension still has, or the time its coarse
 * counters started): retention drops every counter of the buckets before a
 * cut-off, so a coarse bucket that began before it is gone while the finer
 * counters of its later part are still there. `maxMs`: only levels whose
 * length divides it (a timeline's step: each coarse bucket inside one step).
 */
export function rollupSpans(dim: RollupDim, since: number, until: number | undefined, floor: number, maxMs = Infinity): RollupSpan[] {
  const base = bucketMs(dim);
  const lo = bucketOf(dim, since);
  const end = until === undefined ? Infinity : bucketOf(dim, until) + base;
  const levels = (COARSE_LEVELS[dim] ?? []).filter((l) => l.ms <= maxMs && (maxMs === Infinity || maxMs % l.ms === 0));
  const out: RollupSpan[] = [];
  const cover = (from: number, to: number, i: number): void => {
    if (from >= to) return;
    if (i >= levels.length) {
      out.push({ stored: dim, ms: base, from, to });
      return;
    }
    const l = levels[i];
    const first = Math.ceil(Math.max(from, floor) / l.ms) * l.ms;
    const last = to === Infinity ? Infinity : Math.floor(to / l.ms) * l.ms;
    if (first >= last) return cover(from, to, i + 1);
    cover(from, first, i + 1);
    out.push({ stored: storedDim(dim, l), ms: l.ms, from: first, to: last });
    cover(last, to, i + 1);
  };
  cover(lo, end, 0);
  return out;
}

/** The length of one dimension's buckets. */
export function bucketMs(dim: RollupDim): number {
  return dim === 'minute' ? MINUTE_MS : HOUR_MS;
}

/** The start of the bucket holding `ts`. */
export function bucketOf(dim: RollupDim, ts: number): number {
  const b = bucketMs(dim);
  return Math.floor(ts / b) * b;
}

export interface RollupQuery {
  dim: RollupDim;
  /** Buckets from the one holding `since` … */
  since: number;
  /** … to the one holding `until` (default: all after `since`). */
  until?: number;
  /** Only these actions (default all). */
  actions?: readonly string[];
  /**
   * 'minute': the longest bucket a row may stand for (default one minute):
   * rows of coarser counters are given whose length divides it (an hour's
   * row for a timeline in steps of an hour or a day).
   */
  maxBucketMs?: number;
  /**
   * 'minute': one row per bucket, key and action (every row; `limit` is ignored).
   * Other dims: rows summed over the window, for the `limit` keys with the
   * highest total (over `actions`), each key's rows by action.
   */
  limit?: number;
}

export interface RollupRow {
  /** Start of the bucket (ms); only for dim 'minute' (a coarser counter's bucket when maxBucketMs allows it). */
  bucket?: number;
  key: string;
  action: string;
  n: number;
}

/** Longest key kept (a client IP, a domain, a rule name, a zone). */
const KEY_MAX = 255;
export const DEFAULT_ROLLUP_LIMIT = 20;
export const MAX_ROLLUP_LIMIT = 100_000;

export function rollupLimit(q: RollupQuery): number {
  return Math.min(Math.max(1, Math.floor(q.limit ?? DEFAULT_ROLLUP_LIMIT)), MAX_ROLLUP_LIMIT);
}

function key(text: string): string {
  return text.length > KEY_MAX ? text.slice(0, KEY_MAX) : text;
}

/** The zones a piece of evidence (its stored JSON text) names as listing the client, and those not consulted. */
export interface PieceZones {
  listed: string[];
  skipped: string[];
}

const NO_ZONES: PieceZones = { listed: [], skipped: [] };
const zoneMemo = new Lru<string, PieceZones>(5_000);
const ZONE_NAME = /([a-z0-9_][a-z0-9_.-]*\.[a-z0-9-]+) \(/g;

/**
 * The DNS list zones in one evidence entry's JSON text. checkDnsbl writes
 * its detail as `<ip> listed by z1 (codes), z2 (codes); score …; not
 * consulted: z3 (why), …` (src/checks/dnsbl.ts): the rollups read that
 * sentence, the only record the log keeps of which zone listed whom.
 */
export function zonesOfPiece(text: string): PieceZones {
  // Cheap tests first: nearly every piece is not a DNS list's.
  if (!text.includes(' listed by ') && !text.includes('not consulted: ')) return NO_ZONES;
  let z = zoneMemo.get(text);
  if (z !== undefined) return z;
  z = NO_ZONES;
  try {
    const e = JSON.parse(text) as { result?: unknown; detail?: unknown };
    const detail = typeof e.detail === 'string' ? e.detail : '';
    const skipAt = detail.indexOf('; not consulted: ');
    const listedPart = e.result === 'listed' && detail.includes(' listed by ') ? detail.slice(detail.indexOf(' listed by ') + 11, skipAt < 0 ? undefined : skipAt) : '';
    const skipPart = skipAt < 0 ? '' : detail.slice(skipAt + 17);
    const names = (s: string) => [...new Set([...s.matchAll(ZONE_NAME)].map((m) => m[1]))];
    const listed = names(listedPart.split(';')[0]);
    const skipped = names(skipPart);
    if (listed.length > 0 || skipped.length > 0) z = { listed, skipped };
  } catch {
    // not JSON: not a piece we wrote
  }
  zoneMemo.set(text, z);
  return z;
}

/**
 * Counts of a batch of events, to be added to the stored counters in one
 * go: one entry per distinct (dim, bucket, key, action) of the batch.
 */
export class RollupCounter {
  private counts = new Map<string, number>();

  get size(): number {
    return this.counts.size;
  }

  /** Count one (cleaned) event; `pieces` are its evidence entries' JSON texts. */
  add(e: Pick<DecisionEvent, 'ts' | 'clientIp' | 'from' | 'action' | 'rule' | 'wouldHave'>, pieces: readonly string[]): void {
    const hour = Math.floor(e.ts / HOUR_MS) * HOUR_MS;
    const action = e.action;
    this.inc('minute', Math.floor(e.ts / MINUTE_MS) * MINUTE_MS, action === 'defer' ? key(e.rule) : '', action);
    this.inc('rule', hour, key(e.rule), action);
    this.inc('client', hour, key(e.clientIp), action);
    if (e.from !== undefined) this.inc('domain', hour, key(e.from === '' ? '<>' : (domainOf(e.from) ?? e.from.toLowerCase())), action);
    for (const p of pieces) {
      const z = zonesOfPiece(p);
      for (const zone of z.listed) this.inc('zone', hour, key(zone), action);
      for (const zone of z.skipped) this.inc('zone-skip', hour, key(zone), action);
    }
    if (e.wouldHave) for (const w of e.wouldHave) this.inc('would-have', hour, key(String(w.rule)), String(w.action));
  }

  private inc(dim: RollupDim, bucket: number, k: string, action: string): void {
    this.bump(dim, bucket, k, action);
    const levels = COARSE_LEVELS[dim];
    if (levels !== undefined) for (const l of levels) this.bump(storedDim(dim, l), Math.floor(bucket / l.ms) * l.ms, k, action);
  }

  private bump(stored: string, bucket: number, k: string, action: string): void {
    const id = `${stored}\t${bucket}\t${k}\t${action}`;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  /** The counts gathered since the last take(), and start afresh. */
  take(): RollupIncrement[] {
    const out: RollupIncrement[] = [];
    for (const [id, n] of this.counts) {
      const [dim, bucket, k, action] = id.split('\t');
      out.push({ dim, bucket: Number(bucket), key: k, action, n });
    }
    this.counts = new Map();
    return out;
  }
}

export interface RollupIncrement {
  /** The stored dimension: a RollupDim or a coarser level of one (`client@day`). */
  dim: string;
  bucket: number;
  key: string;
  action: string;
  n: number;
}

/**
 * Sum rows of several buckets into the answer of a RollupQuery for a
 * dimension other than 'minute' (the backends that cannot group in their
 * query language): the `limit` keys with the highest total over `actions`.
 */
export function topRollupRows(rows: Iterable<{ key: string; action: string; n: number }>, q: RollupQuery): RollupRow[] {
  const wanted = q.actions === undefined ? undefined : new Set(q.actions);
  const byKey = new Map<string, Map<string, number>>();
  for (const r of rows) {
    if (wanted !== undefined && !wanted.has(r.action)) continue;
    let m = byKey.get(r.key);
    if (m === undefined) byKey.set(r.key, (m = new Map()));
    m.set(r.action, (m.get(r.action) ?? 0) + r.n);
  }
  const totals = [...byKey].map(([k, m]) => ({ k, m, total: [...m.values()].reduce((a, b) => a + b, 0) }));
  totals.sort((a, b) => b.total - a.total || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const out: RollupRow[] = [];
  for (const t of totals.slice(0, rollupLimit(q))) {
    for (const [action, n] of [...t.m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) out.push({ key: t.k, action, n });
  }
  return out;
}
