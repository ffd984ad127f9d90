// Reading a peer's feed document: what it may carry into this store. A
// malformed entry is skipped and counted; an entry that could lock us out or
// ban the world — wider than a ban may be (0.0.0.0/0 …), or overlapping
// this host's addresses, my_networks, never-ban or an allow list — refuses
// the whole copy: a peer that suddenly lists those is broken or hostile, and
// its last good copy stays in force.

import { readNetwork, formatNetwork } from '../../core/cidr.js';
import type { BanRefusal } from '../../store/index.js';
import type { FeedEntry } from './wire.js';

export const MAX_ENTRIES = 1_000_000;
const TEXT_MAX = 200;

export interface PeerCopy {
  full: boolean;
  cursor: string;
  entries: FeedEntry[];
  removed: string[];
  /** Malformed entries skipped, and the first few of them, for the log. */
  skipped: number;
  skippedExamples: string[];
  /** Entries already expired (dropped silently). */
  expired: number;
}

export type PeerCopyResult = { ok: true; copy: PeerCopy } | { ok: false; why: string };

/** Peer text, made safe for our logs and store: no control characters, bounded. */
function cleanText(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
  if (!t) return undefined;
  return t.length > TEXT_MAX ? `${t.slice(0, TEXT_MAX - 1)}…` : t;
}

function canonical(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length > 64) return undefined;
  const r = readNetwork(v);
  if (!r.ok || r.hostBitsSet) return undefined;
  return formatNetwork(r.net);
}

/**
 * `refusal(cidr)`: why this store would never ban the CIDR (the store's own
 * banRefusal), or undefined. Too wide or overlapping our fixed networks
 * refuses the copy; overlapping an allow-list entry only keeps that entry
 * from banning here (the store refuses it then), so the rest still counts.
 */
export function readPeerCopy(body: string, feed: string, now: number, refusal: (cidr: string) => BanRefusal | undefined): PeerCopyResult {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return { ok: false, why: 'not JSON (an error page?)' };
  }
  if (typeof doc !== 'object' || doc === null) return { ok: false, why: 'not a feed document' };
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) return { ok: false, why: `feed version ${JSON.stringify(d.version)}, expected 1` };
  if (d.feed !== feed) return { ok: false, why: `the document is feed ${JSON.stringify(d.feed)}, not ${JSON.stringify(feed)}` };
  if (typeof d.cursor !== 'string' || d.cursor.length > 100) return { ok: false, why: 'no cursor' };
  if (typeof d.full !== 'boolean' || !Array.isArray(d.entries) || !Array.isArray(d.removed)) return { ok: false, why: 'not a feed document (full, entries, removed)' };
  if (d.entries.length + d.removed.length > MAX_ENTRIES) return { ok: false, why: `more than ${MAX_ENTRIES} entries` };

  const copy: PeerCopy = { full: d.full, cursor: d.cursor, entries: [], removed: [], skipped: 0, skippedExamples: [], expired: 0 };
  const skip = (what: unknown) => {
    copy.skipped++;
    if (copy.skippedExamples.length < 5) copy.skippedExamples.push(JSON.stringify(what)?.slice(0, 100) ?? String(what));
  };
  for (const raw of d.entries as unknown[]) {
    const e = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
    const cidr = canonical(e.cidr);
    if (!cidr) {
      skip(raw);
      continue;
    }
    let expiresAt: number | undefined;
    if (e.expiresAt !== undefined) {
      if (typeof e.expiresAt !== 'number' || !Number.isFinite(e.expiresAt)) {
        skip(raw);
        continue;
      }
      if (e.expiresAt <= now) {
        copy.expired++;
        continue;
      }
      expiresAt = e.expiresAt;
    }
    const refused = refusal(cidr);
    if (refused && refused.by !== 'list') return { ok: false, why: `lists ${cidr}, which is never banned here: ${refused.why}` };
    const entry: FeedEntry = { cidr };
    if (expiresAt !== undefined) entry.expiresAt = expiresAt;
    const category = cleanText(e.category);
    const reason = cleanText(e.reason);
    if (category) entry.category = category;
    if (reason) entry.reason = reason;
    copy.entries.push(entry);
  }
  for (const raw of d.removed as unknown[]) {
    const cidr = canonical(raw);
    if (cidr) copy.removed.push(cidr);
    else skip(raw);
  }
  return { ok: true, copy };
}
