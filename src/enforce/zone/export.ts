// `frontline zone export --format rbldnsd|bind|plain`: the zone as a file
// for those who serve it with rbldnsd or BIND at larger scale, or feed a
// blocklist reader. A snapshot: listings made later need another export.
//
// - rbldnsd: one `combined` dataset (ip4trie + ip6trie, which take any
//   prefix), $SOA/$NS/$TTL, `!` exclusions for my_networks and the allow
//   zone's entries (whitelists win there too). rbldnsd gives one A and TXT
//   per address (the longest prefix): a CIDR listed for two reasons is one
//   line with the lowest code and both texts.
// - bind: a zone file; a prefix becomes the wildcards of the octet (nibble)
//   boundary at or below it (namesOfNetwork); each record's TTL stays below
//   the time its listing has left, as the live zone's do.
// - plain: one CIDR per line.

import { parseNetwork } from '../../core/cidr.js';
import { listingTtl, type AnswerContext, type ZoneId } from './answer.js';
import { txtText } from './codes.js';
import type { Listing } from './data.js';
import { namesOfNetwork } from './names.js';

export const EXPORT_FORMATS = ['rbldnsd', 'bind', 'plain'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type Row = { cidr: string } & Listing;

/** One row per CIDR: codes and texts of the same CIDR merged. */
function merged(rows: readonly Row[]): Array<{ cidr: string; listings: Listing[] }> {
  const by = new Map<string, Listing[]>();
  for (const r of rows) {
    const l = by.get(r.cidr);
    if (l) l.push(r);
    else by.set(r.cidr, [r]);
  }
  return [...by].map(([cidr, listings]) => ({ cidr, listings })).sort((a, b) => (a.cidr < b.cidr ? -1 : a.cidr > b.cidr ? 1 : 0));
}

const TEST_POINTS: Row[] = [
  { cidr: '127.0.0.2/32', code: 2, text: 'RFC 5782 test point', expiresAt: Infinity },
  { cidr: '::ffff:7f00:2/128', code: 2, text: 'RFC 5782 test point', expiresAt: Infinity },
];

/** The text of zone `id` in `format`, at `now`. */
export function exportZone(ctx: AnswerContext, id: ZoneId, format: ExportFormat, now: number, opts: { neverBlock?: readonly string[] } = {}): string {
  const zone = ctx.zones.find((z) => z.id === id);
  if (!zone) throw new Error(`no ${id === 'wl' ? 'allow' : 'block'} zone configured (zone.${id}_name)`);
  const rows = ctx.data.entries(id, now);
  const when = new Date(now).toISOString();
  const head = `frontline zone export: ${zone.apex} (${id === 'bl' ? 'block' : 'allow'} zone), ${when}, ${rows.length} entries`;
  if (format === 'plain') return [`# ${head}`, ...merged(rows).map((r) => r.cidr)].join('\n') + '\n';
  const serial = ctx.data.serial >>> 0;
  const all = merged([...TEST_POINTS, ...rows]);
  if (format === 'rbldnsd') {
    const v4: string[] = [];
    const v6: string[] = [];
    const value = (ls: Listing[]) => `:${Math.min(...ls.map((l) => l.code))}:${txtText(ls.map((l) => l.text).join(' / ')).replace(/\$/g, '?')}`;
    for (const r of all) (r.cidr.includes(':') ? v6 : v4).push(`${r.cidr} ${value(r.listings)}`);
    if (id === 'bl') {
      const listed = new Set(all.map((r) => r.cidr));
      const excluded = [...(opts.neverBlock ?? []), ...ctx.data.entries('wl', now).map((r) => r.cidr)];
      for (const c of new Set(excluded)) {
        const n = parseNetwork(c);
        if (!n || listed.has(c)) continue;
        (n.v6 ? v6 : v4).push(`!${c}`);
      }
    }
    return [
      `# ${head}`,
      `$SOA ${ctx.ttlS} ${ctx.ns}. ${zone.hostmaster}. ${serial} 3600 600 604800 ${ctx.negativeTtlS}`,
      `$NS ${ctx.ttlS} ${ctx.ns}.`,
      `$TTL ${ctx.ttlS}`,
      `$DATASET ip4trie:frontline-v4 @`,
      ...v4,
      `$DATASET ip6trie:frontline-v6 @`,
      ...v6,
      '',
    ].join('\n');
  }
  // bind
  const lines = [
    `; ${head}`,
    `$ORIGIN ${zone.apex}.`,
    `$TTL ${ctx.ttlS}`,
    `@ ${ctx.ttlS} IN SOA ${ctx.ns}. ${zone.hostmaster}. ${serial} 3600 600 604800 ${ctx.negativeTtlS}`,
    `@ ${ctx.ttlS} IN NS ${ctx.ns}.`,
  ];
  for (const r of all) {
    const n = parseNetwork(r.cidr);
    const names = n && namesOfNetwork(n);
    if (!names) {
      lines.push(`; ${r.cidr}: too wide for wildcards, left out`);
      continue;
    }
    const ttl = listingTtl(r.listings, now, ctx.ttlS);
    const codes = [...new Set(r.listings.map((l) => l.code))].sort((a, b) => a - b);
    for (const name of names) {
      for (const c of codes) lines.push(`${name} ${ttl} IN A 127.0.0.${c}`);
      for (const l of r.listings) lines.push(`${name} ${ttl} IN TXT ${JSON.stringify(txtText(l.text))}`);
    }
  }
  return lines.join('\n') + '\n';
}
