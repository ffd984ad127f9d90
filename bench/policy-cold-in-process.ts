// The cold workload's decisions in process, without the policy protocol's
// sockets: the compiled PolicyServer.answer() on bench/lib/traffic.ts's
// cold requests (every request a new client), 16 in flight, greylisting on
// (delay 1 s), the SQLite store and its decision log, the decision line to
// /dev/null; DNS from the fixture DNS server in a process of its own
// (bench/lib/dns-process.ts), as in bench/policy-server.ts. Prints the CPU
// per decision of this process's threads (the main thread, the decision
// log's writer, V8's helpers), read from /proc: on a shared machine CPU
// time moves far less with the load than the wall-clock rate does.
//
//   npm run bench -- policy-cold-in-process
//   BENCH_DECISIONS=20000 …  decisions measured (after 3,000 to warm up)
//   BENCH_DIST=<tree>/dist … measure another build (A/B)
// Printed only; bench/README.md is not rewritten.

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../test/helpers/cli.js';
import { buildServer } from './lib/build.js';
import { startDnsProcess } from './lib/dns-process.js';
import { FRONTLINE_JUDGE, trafficRequests } from './lib/traffic.js';

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 20_000);
const IN_FLIGHT = 16;
const WORLD = fileURLToPath(new URL('../test/fixtures/world.yaml', import.meta.url));
const DIST = process.env.BENCH_DIST ?? join(REPO_ROOT, 'dist');
if (!process.env.BENCH_DIST) buildServer();
/** A module of the compiled server, typed by its source. */
const product = <T>(path: string): Promise<T> => import(pathToFileURL(join(DIST, path)).href) as Promise<T>;
const { parseConfig } = await product<typeof import('../src/config/load.js')>('config/load.js');
const { buildRuntime } = await product<typeof import('../src/cli/runtime.js')>('cli/runtime.js');
const { createLogger } = await product<typeof import('../src/log.js')>('log.js');
const { PolicyServer } = await product<typeof import('../src/postfix/policy-server.js')>('postfix/policy-server.js');
const { SqliteStore } = await product<typeof import('../src/store/sqlite/store.js')>('store/sqlite/store.js');
const { DecisionLog } = await product<typeof import('../src/store/decision-log.js')>('store/decision-log.js');

/** CPU seconds of each thread of this process, by "tid name". */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function attributesOf(wire: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of wire.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const dns = await startDnsProcess(WORLD, { traffic: true });
const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-cold-'));
const cfg = parseConfig(`dns: { servers: ["${dns.server}"] }\nheaders: { authserv_id: mx.bench.test }\ngreylist: { enabled: true, delay_s: 1 }\n`, 'bench.yaml');
const logger = createLogger({ level: 'info', file: '/dev/null' });
const store = await SqliteStore.open({ backend: 'sqlite', path: join(tmp, 'frontline.db') });
const log = new DecisionLog(store, logger);
const runtime = buildRuntime(cfg, logger, store);
const server = new PolicyServer({ policy: runtime.policy, logger, acceptReply: cfg.postfix.accept_reply, onFault: cfg.postfix.on_fault, onDecision: (v, e, s) => log.record(v, e, s) });
runtime.policy.start();
// answer() wants the connection only for its peer name and its transaction.
const conn = { peer: 'bench', lastKey: undefined } as unknown as Parameters<typeof server.answer>[1];
const next = trafficRequests('cold', FRONTLINE_JUDGE.cold);
let n = 0;
let wrong = 0;
const run = async (count: number): Promise<void> => {
  const until = n + count;
  const lane = async (id: number): Promise<void> => {
    while (n < until) {
      const r = next(n++, id);
      if (!r.ok(await server.answer(attributesOf(r.wire) as Parameters<typeof server.answer>[0], conn))) wrong++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => lane(i)));
};
await run(3000);
// Collections in the measured window: how often decisions' garbage makes V8 scavenge and mark the old generation.
const gc = { minor: 0, major: 0, ms: 0 };
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = ((e as unknown as { detail?: { kind?: number } }).detail)?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    gc.ms += e.duration;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
const cpu0 = process.cpuUsage();
const threads0 = threadCpu();
const t0 = performance.now();
await run(DECISIONS);
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const threads = threadCpu();
gcObserver.disconnect();
console.log(
  `cold in process (${DIST}): ${DECISIONS.toLocaleString('en-US')} decisions, ${Math.round(DECISIONS / elapsed)}/s, process CPU ${((cpu.user + cpu.system) / DECISIONS).toFixed(0)} µs per decision (user ${(cpu.user / DECISIONS).toFixed(0)}, kernel ${(cpu.system / DECISIONS).toFixed(0)}), wrong ${wrong}, load ${os.loadavg()[0].toFixed(1)}`,
);
console.log(
  `  GC per 10,000 decisions: ${((gc.minor * 10_000) / DECISIONS).toFixed(1)} scavenges, ${((gc.major * 10_000) / DECISIONS).toFixed(1)} mark-compacts; main-thread pauses ${((gc.ms * 1000) / DECISIONS).toFixed(0)} µs per decision; heap used ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB`,
);
for (const [k, v] of threads) {
  const us = ((v - (threads0.get(k) ?? 0)) * 1e6) / DECISIONS;
  if (us >= 1) console.log(`  thread ${k}: ${us.toFixed(0)} µs per decision${k.startsWith(`${process.pid} `) ? ' (main)' : ''}`);
}
await log.flush();
await server.close();
runtime.close();
await store.close();
await dns.close();
rmSync(tmp, { recursive: true, force: true });
if (wrong > 0) process.exitCode = 1;
