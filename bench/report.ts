// The report room's questions on a week of traffic: 1,000,000 decisions in
// the SQLite decision log (bench/lib/seed-decisions.ts, written through
// logEvent and the writer thread, as `serve` writes them), then
//   - the dashboard's Overview (ReportQueries.overview) for the last hour,
//     day and week (target < 300 ms);
//   - Why? searches through queryEvents: a returning client's IP, a /24, a
//     sender domain, a sender address (target < 300 ms);
//   - `frontline stats --since 7d` as a process: the compiled CLI (npm run
//     build), from start to exit (target < 2 s), and the same in process.
// Each figure is the median of BENCH_RUNS (default 3) runs.
//
//   npm run bench -- report
//   BENCH_REPORT_DIR=/tmp/x  keeps (and reuses, while under an hour old) the seeded store there
//   BENCH_REPORT_COUNT=1000000

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ReportQueries } from '../src/report/queries.js';
import { statsData } from '../src/report/stats.js';
import { ruleChecksOf } from '../src/cli/report-context.js';
import { loadConfig } from '../src/config/load.js';
import { openSeededStore } from './lib/seed-decisions.js';
import { updateReadme } from './lib/readme.js';

const COUNT = Number(process.env.BENCH_REPORT_COUNT ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const keep = process.env.BENCH_REPORT_DIR;
const dir = keep ?? mkdtempSync(join(tmpdir(), 'fl-bench-report-'));
mkdirSync(dir, { recursive: true });
const dbPath = join(dir, 'frontline.db');
const root = fileURLToPath(new URL('..', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** CPU time of this process (ms), which moves far less with the machine's load than the wall clock. */
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const cpu = new Map<number, number>();
async function time(what: string, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  const cms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    await fn();
    ms.push(performance.now() - t0);
    cms.push(cpuMs() - c0);
  }
  const m = median(ms);
  cpu.set(cpu.size, median(cms));
  console.log(`${what}: median ${m.toFixed(1)} ms (runs: ${ms.map((x) => x.toFixed(0)).join(', ')}; CPU ${cms.map((x) => x.toFixed(0)).join(', ')} ms)`);
  return m;
}

const store = await openSeededStore(dbPath, COUNT);
const load0 = loadavg()[0].toFixed(2);
const rows = (store.eventsDatabase.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
console.log(`decision log: ${rows} events; rollup rows: ${(store.eventsDatabase.prepare('SELECT count(*) AS n FROM event_rollups').get() as { n: number }).n}`);

const config = loadConfig(undefined);
const q = new ReportQueries({ store, ruleChecks: ruleChecksOf(config) });
const results: Array<[string, number, string]> = [];
results.push(['Overview, last hour (1-minute steps)', await time('overview 1h', () => q.overview(q.last(3600))), '< 300 ms']);
results.push(['Overview, last day (10-minute steps, as the dashboard)', await time('overview 24h', () => q.overview(q.last(86_400), { stepMs: 600_000 })), '< 300 ms']);
results.push(['Overview, last week (hourly steps, as the dashboard)', await time('overview 7d', () => q.overview(q.last(7 * 86_400), { stepMs: 3_600_000 })), '< 300 ms']);

// A returning client (the seed's busiest), its /24, a busy sender domain, a rare one, an address.
const busy = (store.eventsDatabase.prepare("SELECT key FROM event_rollups WHERE dim = 'client' GROUP BY key ORDER BY sum(n) DESC LIMIT 1").get() as { key: string }).key;
const net = `${busy.split('.').slice(0, 3).join('.')}.0/24`;
results.push([`Why? by IP (${busy})`, await time('why ip', () => store.queryEvents({ ip: busy, limit: 100 })), '< 300 ms']);
results.push([`Why? by network (${net})`, await time('why cidr', () => store.queryEvents({ cidr: net, limit: 100 })), '< 300 ms']);
results.push(['Why? by sender domain (busy: d1.example)', await time('why domain busy', () => store.queryEvents({ domain: 'd1.example', limit: 100 })), '< 300 ms']);
results.push(['Why? by sender domain (rare: d4999.example)', await time('why domain rare', () => store.queryEvents({ domain: 'd4999.example', limit: 100 })), '< 300 ms']);
results.push(['Why? by sender address (user7@d3.example)', await time('why from', () => store.queryEvents({ from: 'user7@d3.example', limit: 100 })), '< 300 ms']);
results.push(['stats --since 7d, in process', await time('stats 7d in process', () => statsData(q, q.last(7 * 86_400))), '']);
// What the command counts: every seeded decision is inside its week.
const counted = (await statsData(q, q.last(7 * 86_400))).total as number;
await store.close();

// The command as an admin runs it: the compiled CLI, process start to exit.
const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
if (build.status !== 0) throw new Error('npm run build failed');
const cfg = join(dir, 'bench.yaml');
writeFileSync(cfg, `data_dir: ${dir}\n`);
let out = '';
const cli = await time('frontline stats --since 7d (process)', async () => {
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'stats', '--since', '7d', '-c', cfg], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`stats failed: ${r.stderr}`);
  out = r.stdout;
});
results.push(['`frontline stats --since 7d` (compiled, process start to exit)', cli, '< 2 s']);
console.log(out.split('\n').slice(0, 12).join('\n'));

const table = [
  `\`npm run bench -- report\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${rows.toLocaleString('en')} decisions over 7 days (bench/lib/seed-decisions.ts; \`stats --since 7d\` counted ${counted.toLocaleString('en')}), 5,000 bans, SQLite; median of ${RUNS} runs; load average ${load0} before, ${loadavg()[0].toFixed(2)} after`,
  '',
  '| question | median (wall clock) | CPU time (median) | target |',
  '| --- | --- | --- | --- |',
  // The command's CPU is its own process's, not measured here.
  ...results.map(([w, ms, t], i) => `| ${w} | ${ms.toFixed(0)} ms | ${w.startsWith('`frontline') ? '—' : `${(cpu.get(i) ?? 0).toFixed(0)} ms`} | ${t} |`),
].join('\n');
console.log(`\n${table}`);
if (process.env.BENCH_README !== '0') updateReadme('report', table);
if (!keep) rmSync(dir, { recursive: true, force: true });
