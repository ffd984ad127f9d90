// IP → AS number from a local table, so "block AS N" works without DNS.
//
// Format: the public iptoasn.com dumps (ip2asn-v4.tsv, ip2asn-v6.tsv,
// ip2asn-combined.tsv, ip2asn-v4-u32.tsv; optionally .gz), one range per
// line, tab-separated:
//   range_start  range_end  AS_number  country_code  AS_description
// AS 0 ("Not routed") lines are skipped quietly. Bad lines (unparsable,
// start > end, overlapping an earlier range) are reported with file and line
// and skipped; they never empty the table.
//
// Representation: sorted, disjoint ranges in typed arrays, found by binary
// search (~19 steps for 500,000 ranges). The dataset's ranges are arbitrary
// (1.0.1.0–1.0.3.255 is not a CIDR), so turning them into CIDRs for the trie
// would multiply the entries (each range splits into up to 62 prefixes) for
// no gain: a range lookup is exact, needs 12 bytes per IPv4 range and is
// built by one sort.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { isMappedV4, parseV4, parseV6 } from './ip.js';

export interface AsnInfo {
  asn: number;
  country: string;
  description: string;
}

export interface BadLine {
  file: string;
  line: number;
  text: string;
  why: string;
}

interface Range4 {
  start: number;
  end: number;
  asn: number;
  line: number;
  text: string;
}

interface Range6 {
  start: Uint32Array;
  end: Uint32Array;
  asn: number;
  line: number;
  text: string;
}

function cmp6(a: Uint32Array, ai: number, b: Uint32Array, bi: number): number {
  for (let k = 0; k < 4; k++) {
    const x = a[ai + k];
    const y = b[bi + k];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export class AsnTable {
  private readonly q6 = new Uint32Array(4);

  private constructor(
    private readonly s4: Uint32Array,
    private readonly e4: Uint32Array,
    private readonly a4: Uint32Array,
    private readonly s6: Uint32Array,
    private readonly e6: Uint32Array,
    private readonly a6: Uint32Array,
    private readonly info: Map<number, { country: string; description: string }>,
  ) {}

  static empty(): AsnTable {
    const z = new Uint32Array(0);
    return new AsnTable(z, z, z, z, z, z, new Map());
  }

  /** Build from parsed lines; overlapping ranges are reported through `bad` and skipped. */
  static build(r4: Range4[], r6: Range6[], info: Map<number, { country: string; description: string }>, file: string, bad: BadLine[]): AsnTable {
    r4.sort((a, b) => a.start - b.start || a.line - b.line);
    const keep4: Range4[] = [];
    for (const r of r4) {
      const prev = keep4[keep4.length - 1];
      if (prev && r.start <= prev.end) bad.push({ file, line: r.line, text: r.text, why: `overlaps the range on line ${prev.line}` });
      else keep4.push(r);
    }
    r6.sort((a, b) => cmp6(a.start, 0, b.start, 0) || a.line - b.line);
    const keep6: Range6[] = [];
    for (const r of r6) {
      const prev = keep6[keep6.length - 1];
      if (prev && cmp6(r.start, 0, prev.end, 0) <= 0) bad.push({ file, line: r.line, text: r.text, why: `overlaps the range on line ${prev.line}` });
      else keep6.push(r);
    }
    const s6 = new Uint32Array(keep6.length * 4);
    const e6 = new Uint32Array(keep6.length * 4);
    keep6.forEach((r, i) => {
      s6.set(r.start, i * 4);
      e6.set(r.end, i * 4);
    });
    return new AsnTable(
      Uint32Array.from(keep4, (r) => r.start),
      Uint32Array.from(keep4, (r) => r.end),
      Uint32Array.from(keep4, (r) => r.asn),
      s6,
      e6,
      Uint32Array.from(keep6, (r) => r.asn),
      info,
    );
  }

  /** Number of ranges (IPv4 + IPv6). */
  get size(): number {
    return this.s4.length + this.a6.length;
  }

  /** AS number announcing `ip`, or 0 when unknown (or not an IP). */
  asnOf(ip: string): number {
    const a = parseV4(ip);
    if (a >= 0) return this.find4(a);
    const q = this.q6;
    if (!parseV6(ip, q)) return 0;
    if (isMappedV4(q)) return this.find4(q[3]);
    return this.find6(q);
  }

  lookup(ip: string): AsnInfo | undefined {
    const asn = this.asnOf(ip);
    if (asn === 0) return undefined;
    const i = this.info.get(asn);
    return { asn, country: i?.country ?? '', description: i?.description ?? '' };
  }

  private find4(a: number): number {
    const s = this.s4;
    let lo = 0;
    let hi = s.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid] <= a) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && a <= this.e4[at] ? this.a4[at] : 0;
  }

  private find6(q: Uint32Array): number {
    let lo = 0;
    let hi = this.a6.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp6(this.s6, mid * 4, q, 0) <= 0) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && cmp6(q, 0, this.e6, at * 4) <= 0 ? this.a6[at] : 0;
  }
}

/** Parse one address column: dotted IPv4, IPv6, or a decimal uint32 (the -u32 files). */
function parseAddr(text: string): { v6: false; a: number } | { v6: true; w: Uint32Array } | undefined {
  if (/^\d{1,10}$/.test(text)) {
    const n = Number(text);
    return n <= 0xffffffff ? { v6: false, a: n } : undefined;
  }
  const a = parseV4(text);
  if (a >= 0) return { v6: false, a };
  const w = new Uint32Array(4);
  if (!parseV6(text, w)) return undefined;
  return isMappedV4(w) ? { v6: false, a: w[3] } : { v6: true, w };
}

/** Parse table text (already read); for tests and small files. */
export function parseAsnText(text: string, file = '<text>'): { table: AsnTable; bad: BadLine[] } {
  const p = new AsnParser(file);
  text.split(/\r?\n/).forEach((l) => p.line(l));
  return p.finish();
}

class AsnParser {
  private readonly r4: Range4[] = [];
  private readonly r6: Range6[] = [];
  private readonly info = new Map<number, { country: string; description: string }>();
  readonly bad: BadLine[] = [];
  private n = 0;

  constructor(private readonly file: string) {}

  line(raw: string): void {
    this.n++;
    const text = raw.replace(/\r$/, '');
    if (text.trim() === '' || text.startsWith('#')) return;
    const reject = (why: string) => this.bad.push({ file: this.file, line: this.n, text: text.slice(0, 200), why });
    const cols = text.split('\t');
    if (cols.length < 3) return void reject(`expected 5 tab-separated columns, found ${cols.length}`);
    const [startText, endText, asnText, country = '', description = ''] = cols;
    if (!/^\d{1,10}$/.test(asnText.trim()) || Number(asnText) > 0xffffffff) return void reject(`bad AS number ${JSON.stringify(asnText)}`);
    const asn = Number(asnText);
    const start = parseAddr(startText.trim());
    const end = parseAddr(endText.trim());
    if (!start) return void reject(`bad range start ${JSON.stringify(startText)}`);
    if (!end) return void reject(`bad range end ${JSON.stringify(endText)}`);
    if (start.v6 !== end.v6) return void reject('range start and end are of different address families');
    if (asn === 0) return; // "Not routed"
    if (!start.v6 && !end.v6) {
      if (start.a > end.a) return void reject('range start is after its end');
      this.r4.push({ start: start.a, end: end.a, asn, line: this.n, text });
    } else if (start.v6 && end.v6) {
      if (cmp6(start.w, 0, end.w, 0) > 0) return void reject('range start is after its end');
      this.r6.push({ start: start.w, end: end.w, asn, line: this.n, text });
    }
    if (!this.info.has(asn)) this.info.set(asn, { country: country.trim(), description: description.trim() });
  }

  finish(): { table: AsnTable; bad: BadLine[] } {
    for (const r of this.r4) r.text = r.text.slice(0, 200);
    const table = AsnTable.build(this.r4, this.r6, this.info, this.file, this.bad);
    this.bad.sort((a, b) => a.line - b.line);
    return { table, bad: this.bad };
  }
}

/** Read a table file (plain or .gz), streaming. Rejects only when the file cannot be read. */
export async function loadAsnTable(path: string): Promise<{ table: AsnTable; bad: BadLine[] }> {
  const input = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened;
  const stream = path.endsWith('.gz') ? input.pipe(createGunzip()) : input;
  const p = new AsnParser(path);
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of rl) p.line(line);
  return p.finish();
}

/**
 * The table in use, replaced only by a load that yields at least one range:
 * a missing, unreadable or all-bad file leaves the previous table in place.
 */
export class AsnDatabase {
  table = AsnTable.empty();

  constructor(private readonly report: (bad: BadLine) => void = () => {}) {}

  /** AS number announcing `ip` in the table in use, or 0 when unknown. */
  asnOf(ip: string): number {
    return this.table.asnOf(ip);
  }

  /** AS number and country of `ip` in the table in use. */
  lookup(ip: string): AsnInfo | undefined {
    return this.table.lookup(ip);
  }

  /** Load `path`; returns whether the table was replaced. Bad lines go to `report`. */
  async load(path: string): Promise<{ replaced: boolean; ranges: number; bad: number; error?: string }> {
    let loaded: { table: AsnTable; bad: BadLine[] };
    try {
      loaded = await loadAsnTable(path);
    } catch (e) {
      return { replaced: false, ranges: this.table.size, bad: 0, error: `${path}: ${(e as Error).message}` };
    }
    for (const b of loaded.bad) this.report(b);
    if (loaded.table.size === 0) {
      return { replaced: false, ranges: this.table.size, bad: loaded.bad.length, error: `${path}: no usable ranges; keeping the previous table` };
    }
    this.table = loaded.table;
    return { replaced: true, ranges: loaded.table.size, bad: loaded.bad.length };
  }
}
