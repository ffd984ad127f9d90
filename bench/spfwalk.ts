// Time to walk 150 domains' SPF records, served by the fixture DNS server on
// loopback through the production resolver (cold cache each run). Each domain
// has ip4/ip6 terms, a, mx (two hosts, A and AAAA), a private include chain
// with a:host/28 and mx//64, and one of ten includes shared with others.
//
//   node --import tsx bench/spfwalk.ts    (npm run bench -- spfwalk)
//   BENCH_README=0 …   print only, leave bench/README.md alone

import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Zone } from '../src/dns/zone.js';
import { createResolver } from '../src/dns/index.js';
import type { Resolver } from '../src/dns/types.js';
import { walkSpf } from '../src/intel/spfwalk/walk.js';
import { mergeCidrs } from '../src/intel/spfwalk/merge.js';
import { startFixtureDns } from '../test/helpers/fixture-dns.js';
import { updateReadme } from './lib/readme.js';

export interface SpfwalkBenchRow {
  domains: number;
  concurrency: number;
  /** Delay added before each query, to stand in for a real resolver's round trip. */
  rttMs: number;
  /** Median of the runs, milliseconds. */
  ms: number;
  queries: number;
  networks: number;
  merged: number;
  unwalkable: number;
  errors: number;
}

export function benchWorld(n: number): Zone {
  const data: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const d = `d${i}.bench.example`;
    const hi = i.toString(16);
    data[d] = [
      { TXT: `v=spf1 ip4:10.${i}.0.0/24 ip4:10.${i}.1.0/24 ip6:2001:db8:${hi}::/48 a mx include:_spf.${d} include:shared${i % 10}.bench.example ~all` },
      { A: `192.0.${i}.1` },
      { MX: [10, `mx1.${d}`] },
      { MX: [20, `mx2.${d}`] },
    ];
    data[`mx1.${d}`] = [{ A: `198.18.${i}.1` }, { AAAA: `2001:db8:1:${hi}::1` }];
    data[`mx2.${d}`] = [{ A: `198.18.${i}.2` }, { AAAA: `2001:db8:1:${hi}::2` }];
    data[`out.${d}`] = [{ A: `198.19.${i}.17` }];
    data[`_spf.${d}`] = [{ TXT: `v=spf1 ip4:172.16.${i}.0/24 a:out.${d}/28 mx:${d}//64 include:_spf2.${d} -ip4:172.16.${i}.7` }];
    data[`_spf2.${d}`] = [{ TXT: `v=spf1 ip6:2001:db8:ffff:${hi}::/64 ip4:172.17.${i}.0/25 ip4:172.17.${i}.128/25 exists:%{i}._e.${d}` }];
  }
  for (let k = 0; k < 10; k++) data[`shared${k}.bench.example`] = [{ TXT: `v=spf1 ip4:100.64.${k}.0/24 ip6:2001:db8:aaaa:${k}::/64` }];
  return new Zone(data);
}

/** A resolver whose every answer comes `ms` later. */
function delayed(r: Resolver, ms: number): Resolver {
  if (ms === 0) return r;
  const wait = () => new Promise((done) => setTimeout(done, ms));
  return {
    a: async (n) => (await wait(), r.a(n)),
    aaaa: async (n) => (await wait(), r.aaaa(n)),
    txt: async (n) => (await wait(), r.txt(n)),
    mx: async (n) => (await wait(), r.mx(n)),
    ptr: async (n) => (await wait(), r.ptr(n)),
  };
}

const DEFAULT_CASES: Array<{ concurrency: number; rttMs: number }> = [
  { concurrency: 1, rttMs: 0 },
  { concurrency: 16, rttMs: 0 },
  { concurrency: 64, rttMs: 0 },
  { concurrency: 16, rttMs: 10 },
  { concurrency: 64, rttMs: 10 },
];

export async function benchSpfwalk(opts: { domains?: number; cases?: Array<{ concurrency: number; rttMs: number }>; runs?: number } = {}): Promise<SpfwalkBenchRow[]> {
  const n = opts.domains ?? 150;
  const fx = await startFixtureDns(benchWorld(n));
  const names = Array.from({ length: n }, (_, i) => `d${i}.bench.example`);
  const rows: SpfwalkBenchRow[] = [];
  try {
    for (const { concurrency, rttMs } of opts.cases ?? DEFAULT_CASES) {
      const times: number[] = [];
      let row: Omit<SpfwalkBenchRow, 'ms'> | undefined;
      for (let run = 0; run < (opts.runs ?? (rttMs > 0 ? 3 : 5)); run++) {
        const resolver = createResolver({ servers: [fx.server], timeoutMs: 2000, retries: 1 });
        const before = fx.queries.length;
        const t0 = performance.now();
        const result = await walkSpf(names, delayed(resolver, rttMs), { concurrency });
        const merged = mergeCidrs(result.networks.map((x) => x.cidr));
        times.push(performance.now() - t0);
        resolver.close();
        row = {
          domains: n,
          concurrency,
          rttMs,
          queries: fx.queries.length - before,
          networks: result.networks.length,
          merged: merged.length,
          unwalkable: result.unwalkable.length,
          errors: result.errors.length,
        };
      }
      times.sort((a, b) => a - b);
      rows.push({ ...row!, ms: Math.round(times[Math.floor(times.length / 2)] * 10) / 10 });
    }
  } finally {
    await fx.close();
  }
  return rows;
}

export function formatSpfwalkTable(rows: SpfwalkBenchRow[]): string {
  const head = ['domains', 'concurrency', 'added RTT ms', 'walk+merge ms (median)', 'DNS queries', 'networks', 'merged', 'unwalkable', 'errors'];
  const body = rows.map((r) => [r.domains, r.concurrency, r.rttMs, r.ms, r.queries, r.networks, r.merged, r.unwalkable, r.errors].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await benchSpfwalk();
  process.stdout.write('SPF walk: 150 domains from the fixture DNS server (loopback, cold cache)\n');
  process.stdout.write(`${formatSpfwalkTable(rows)}\n`);
  if (process.env.BENCH_README !== '0') {
    updateReadme(
      'spfwalk',
      [
        'Command: `npm run bench -- spfwalk` (150 domains from the fixture DNS server on loopback through the production resolver, cold cache each run; each domain: ip4/ip6, a, mx with two hosts, a private include chain with a:host/28, mx//64 and exists, one of ten shared includes). "added RTT" delays every answer, standing in for a real resolver.',
        `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}.`,
        '',
        formatSpfwalkTable(rows),
      ].join('\n'),
    );
  }
}
