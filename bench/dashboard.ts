// The dashboard's pages as an admin's browser gets them, on a week of
// traffic: 1,000,000 decisions in the SQLite decision log, seeded by the
// same helper as `bench -- report` (bench/lib/seed-decisions.ts), then
// whole HTTP answers through fastify (inject: routing, the query layer,
// HTML rendering) for
//   - the Overview for the last hour, day and week (target < 300 ms);
//   - Why? by a returning client's IP, its /24, a rare sender domain and a
//     sender address (target < 300 ms).
// Each figure is the median of BENCH_RUNS (default 3) runs.
//
//   npm run bench -- dashboard
//   BENCH_REPORT_DIR=/tmp/x  keeps (and reuses, while under an hour old) the seeded store there (shared with bench -- report)
//   BENCH_REPORT_COUNT=1000000

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { ReportQueries } from '../src/report/queries.js';
import { ruleChecksOf } from '../src/cli/report-context.js';
import { loadConfig } from '../src/config/load.js';
import { dashboardPlugin } from '../src/report/web/dashboard/plugin.js';
import { rulesOf } from '../src/report/web/dashboard/index.js';
import { openSeededStore } from './lib/seed-decisions.js';
import { updateReadme } from './lib/readme.js';

const COUNT = Number(process.env.BENCH_REPORT_COUNT ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const keep = process.env.BENCH_REPORT_DIR;
const dir = keep ?? mkdtempSync(join(tmpdir(), 'fl-bench-dashboard-'));
mkdirSync(dir, { recursive: true });
const dbPath = join(dir, 'frontline.db');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const store = await openSeededStore(dbPath, COUNT);
const rows = (store.eventsDatabase.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
const config = loadConfig(undefined);
const app = Fastify();
await app.register(dashboardPlugin, { store, rules: rulesOf(config), report: new ReportQueries({ store, ruleChecks: ruleChecksOf(config) }) });
await app.ready();

const load0 = loadavg()[0].toFixed(2);
/** CPU time of the process (ms), which moves far less with the machine's load than the wall clock. */
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const cpu: number[] = [];
async function page(what: string, url: string): Promise<number> {
  const ms: number[] = [];
  const cms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    const res = await app.inject({ method: 'GET', url });
    ms.push(performance.now() - t0);
    cms.push(cpuMs() - c0);
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
    bytes = res.body.length;
  }
  const m = median(ms);
  cpu.push(median(cms));
  console.log(`${what} (${url}, ${bytes} bytes): median ${m.toFixed(1)} ms (runs: ${ms.map((x) => x.toFixed(0)).join(', ')}; CPU ${cms.map((x) => x.toFixed(0)).join(', ')} ms)`);
  return m;
}

const busy = (store.eventsDatabase.prepare("SELECT key FROM event_rollups WHERE dim = 'client' GROUP BY key ORDER BY sum(n) DESC LIMIT 1").get() as { key: string }).key;
const net = `${busy.split('.').slice(0, 3).join('.')}.0/24`;
const results: Array<[string, number]> = [
  ['Overview, last hour', await page('overview 1h', '/')],
  ['Overview, last 24 hours', await page('overview 24h', '/?range=day')],
  ['Overview, last 7 days', await page('overview 7d', '/?range=week')],
  [`Why? by IP (${busy}, the busiest client)`, await page('why ip', `/why?q=${busy}&since=all`)],
  [`Why? by network (${net})`, await page('why cidr', `/why?q=${encodeURIComponent(net)}&since=all`)],
  ['Why? by sender or recipient domain (rare: d4999.example)', await page('why domain', '/why?q=d4999.example&kind=domain&since=all')],
  ['Why? by sender address (user7@d3.example)', await page('why from', `/why?q=${encodeURIComponent('user7@d3.example')}&kind=from&since=all`)],
];
await app.close();
await store.close();

const table = [
  `\`npm run bench -- dashboard\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${rows.toLocaleString('en')} decisions over 7 days (bench/lib/seed-decisions.ts), 5,000 bans, SQLite; whole HTTP answers (fastify inject); median of ${RUNS} runs; load average ${load0} before, ${loadavg()[0].toFixed(2)} after`,
  '',
  '| page | median (wall clock) | CPU time (median) | target |',
  '| --- | --- | --- | --- |',
  ...results.map(([w, ms], i) => `| ${w} | ${ms.toFixed(0)} ms | ${cpu[i].toFixed(0)} ms | < 300 ms |`),
].join('\n');
console.log(`\n${table}`);
if (process.env.BENCH_README !== '0') updateReadme('dashboard', table);
if (!keep) rmSync(dir, { recursive: true, force: true });
