// Plain-text IP lists as published (Spamhaus DROP, spamd-setup sources,
// firewall feeds): one entry per line — an address, a CIDR, or a range
// `first - last` — with comments after `#` or `;` anywhere on a line. Bad
// lines are reported with their source and line number and skipped; they
// never spoil the good ones.

import { formatNet, parseAddress, parseCidr, rangeToNets } from '../cidr.js';

export interface BadLine {
  source: string;
  /** 1-based. */
  line: number;
  /** The line as read (cut to 200 characters). */
  text: string;
  reason: string;
}

export interface ParsedList {
  /** Canonical CIDRs (`192.0.2.0/24`, `192.0.2.7/32`), de-duplicated, in the order first seen. */
  entries: string[];
  bad: BadLine[];
  /** Lines that held an entry or a bad entry (not blank, not only a comment). */
  dataLines: number;
}

export interface ParseOptions {
  /** Lines longer than this are bad (never a real entry). Default 1000. */
  maxLineLength?: number;
  /** Stop after this many entries (reported once as a bad line). Default 1,000,000. */
  maxEntries?: number;
  /** Bad lines kept in the report (the rest are only counted). Default 100. */
  maxBadReported?: number;
}

const RANGE = /^(\S+)\s*-\s*(\S+)$/;

/** One entry's networks, or the reason it is not one. */
function parseEntry(text: string): string[] | string {
  const range = RANGE.exec(text);
  if (range && !range[1].includes('/') && !range[2].includes('/')) {
    const a = parseAddress(range[1]);
    const b = parseAddress(range[2]);
    if (!a || !b) return `not an address range: ${text}`;
    if (a[0] !== b[0]) return `range mixes IPv4 and IPv6: ${text}`;
    if (a[1] > b[1]) return `range ends before it starts: ${text}`;
    return rangeToNets(a[0], a[1], b[1]).map(formatNet);
  }
  if (/\s/.test(text)) return `expected one address, CIDR or range, got: ${text}`;
  const net = parseCidr(text);
  return net ? [formatNet(net)] : `not an IP address or CIDR: ${text}`;
}

export function parseIpList(text: string, source: string, opts: ParseOptions = {}): ParsedList {
  const maxLine = opts.maxLineLength ?? 1000;
  const maxEntries = opts.maxEntries ?? 1_000_000;
  const maxBad = opts.maxBadReported ?? 100;
  const seen = new Set<string>();
  const bad: BadLine[] = [];
  let badCount = 0;
  let dataLines = 0;
  const report = (line: number, raw: string, reason: string): void => {
    badCount++;
    if (bad.length < maxBad) bad.push({ source, line, text: raw.slice(0, 200), reason });
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.length > maxLine) {
      dataLines++;
      report(i + 1, raw, `line longer than ${maxLine} characters`);
      continue;
    }
    const cut = raw.search(/[#;]/);
    const body = (cut < 0 ? raw : raw.slice(0, cut)).trim();
    if (body === '') continue;
    dataLines++;
    const parsed = parseEntry(body);
    if (typeof parsed === 'string') {
      report(i + 1, raw, parsed);
      continue;
    }
    let full = false;
    for (const cidr of parsed) {
      if (seen.size >= maxEntries && !seen.has(cidr)) {
        full = true;
        break;
      }
      seen.add(cidr);
    }
    if (full) {
      report(i + 1, raw, `more than ${maxEntries} entries: the rest of the list is ignored`);
      break;
    }
  }
  if (badCount > bad.length) bad.push({ source, line: 0, text: '', reason: `${badCount - bad.length} more bad lines not shown` });
  return { entries: [...seen], bad, dataLines };
}
