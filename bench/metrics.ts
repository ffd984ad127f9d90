// `npm run bench -- metrics`: what /metrics costs. In one run, round by
// round (BENCH_RUNS, default 3), two `frontline serve --workers 2` from
// source, alike but for `web.metrics` (true / false), take the repeated
// policy-server workload (bench/lib/policy-cases.ts, 16 connections); the
// medians of their decisions/s are compared (target: metrics on within 5%
// of off). Then, on the server with metrics on and its counters full,
// BENCH_SCRAPES (default 30) scrapes of GET /metrics are timed, each summed
// over both workers by the cluster primary (target: median < 50 ms).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadZoneYaml, startFixtureDns } from '../test/helpers/fixture-dns.js';
import { startServe } from '../test/helpers/cli.js';
import { rcptRequest } from '../test/helpers/policy-client.js';
import { encodeAttributes, runPolicyLoad, type LoadRequest } from './lib/policy-load.js';
import { CASES } from './lib/policy-cases.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 30);
const WORLD = new URL('../test/fixtures/world.yaml', import.meta.url).pathname;

const FIXED = CASES.map((k) => {
  const { instance: _i, recipient: _r, client_port: _p, ...rest } = rcptRequest(k.attrs);
  return encodeAttributes(rest as Record<string, string>);
});
function request(n: number, id: number): LoadRequest {
  const c = n % CASES.length;
  return { wire: `${FIXED[c]}recipient=user${n % 1000}@dest.example\ninstance=${id}.${n}.bench\nclient_port=${10000 + (n % 50000)}\n\n`, ok: (a) => CASES[c].expect.test(a) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dns = await startFixtureDns(loadZoneYaml(WORLD));
const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-bench-metrics-'));
const rates: Record<'on' | 'off', number[]> = { on: [], off: [] };
const scrapesMs: number[] = [];
let lastText = '';
try {
  for (let run = 0; run < RUNS; run++) {
    for (const mode of run % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      const config = join(tmp, `${mode}-${run}.yaml`);
      writeFileSync(config, `log:\n  level: info\n  file: /dev/null\nheaders:\n  authserv_id: mx.bench.test\nworkers: 2\nweb:\n  metrics: ${mode === 'on'}\n`);
      const s = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0', '--data-dir', join(tmp, `data-${mode}-${run}`)], {
        timeoutMs: 180_000,
      });
      try {
        const r = await runPolicyLoad({ host: '127.0.0.1', port: s.port, connections: 16, warmupS: 3, seconds: SECONDS, next: request });
        if (r.wrong > 0) throw new Error(`${r.wrong} wrong answers, e.g. ${r.wrongExamples.join(' | ')}`);
        const rate = r.sorted.length / r.elapsed;
        rates[mode].push(rate);
        console.log(`run ${run + 1} metrics ${mode}: ${rate.toFixed(0)} decisions/s`);
        if (mode === 'on' && run === RUNS - 1) {
          const url = /web (http:\/\/\S+?)(?:,|\s|$)/.exec(s.stderr())![1];
          for (let i = 0; i < SCRAPES; i++) {
            const t0 = performance.now();
            const res = await fetch(`${url}/metrics`);
            lastText = await res.text();
            scrapesMs.push(performance.now() - t0);
            if (res.status !== 200) throw new Error(`scrape: HTTP ${res.status}`);
          }
        }
      } finally {
        await s.stop();
      }
    }
  }
} finally {
  await dns.close();
  rmSync(tmp, { recursive: true, force: true });
}
const on = median(rates.on);
const off = median(rates.off);
const diff = ((on - off) / off) * 100;
const scrape = median(scrapesMs);
const sorted = [...scrapesMs].sort((a, b) => a - b);
console.log(`\ndecisions/s, median of ${RUNS}: metrics on ${on.toFixed(0)}, off ${off.toFixed(0)} (${diff >= 0 ? '+' : ''}${diff.toFixed(1)}%; target: within 5%) ${Math.abs(Math.min(diff, 0)) <= 5 ? 'MET' : 'NOT MET'}`);
console.log(`GET /metrics (2 workers, ${lastText.split('\n').length} lines, ${(lastText.length / 1024).toFixed(0)} KiB): median ${scrape.toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms over ${SCRAPES} (target < 50 ms) ${scrape < 50 ? 'MET' : 'NOT MET'}`);
console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${os.cpus().length} CPUs`);
