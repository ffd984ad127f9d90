// What a feed looks like on the wire, both ways: the JSON document served at
// /feed/v1/<name>.json (a full copy, or the changes since a cursor) and the
// plain text at /feed/v1/<name>.txt (one CIDR per line, for anything that
// reads a blocklist URL).

/** One listed network. Times are Unix milliseconds. */
export interface FeedEntry {
  cidr: string;
  /** When the listing ends (bans, expiring list entries); absent = until removed. */
  expiresAt?: number;
  category?: string;
  reason?: string;
}

export interface FeedDocument {
  version: 1;
  feed: string;
  /** Pass back as ?since= to get only what changed after this document. */
  cursor: string;
  /** true: `entries` is the whole feed (replace your copy); false: apply `entries` and `removed` to it. */
  full: boolean;
  entries: FeedEntry[];
  removed: string[];
}

export const FEED_PATH = '/feed/v1/';

/** The plain text form: a comment line, then one CIDR per line. */
export function feedText(feed: string, entries: readonly FeedEntry[], now: number): string {
  const lines = [`# frontline feed ${feed}: ${entries.length} entries, ${new Date(now).toISOString()}`];
  for (const e of entries) lines.push(e.cidr);
  return `${lines.join('\n')}\n`;
}
