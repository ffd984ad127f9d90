// Main-thread cost of the SQLite decision log (docs/store.md): what logging a
// decision costs the event loop that answers Postfix, and how long it can
// stall that loop.
//
//   npm run bench -- decision-log
//   node --import tsx bench/decision-log.ts [src dir] [runs]
//
// [src dir]: this tree's src/ by default; give a `git archive REV src` copy
// to measure an older version the same way (before/after).
// For each run: open a store in a temp dir, warm up (2,000 events, the thread
// started), then log 20,000 decision-like events paced at 20,000/s (20 per
// millisecond of elapsed time, from a setImmediate loop), await the last
// promise, and report
//   - main-thread µs per event: the main thread's CPU time (/proc/self/task/<pid>/schedstat,
//     ns on CPU; the writer thread is another task) minus the same load against a
//     no-op logEvent, over 20,000;
//   - the longest event-loop stall: the longest gap between two turns of the
//     pacing loop (wall clock: includes the machine's own noise, see the
//     baseline), and monitorEventLoopDelay's max (1 ms resolution).
//   - the longest single logEvent call (the one that posts a full batch, or the old flush).
// Two callers: store.logEvent directly, and DecisionLog.record (what serve uses).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const src = process.argv[2] ?? fileURLToPath(new URL('../src', import.meta.url));
const RUNS = Number(process.argv[3] ?? 5);
const N = 20_000;
const RATE_PER_MS = 20;

type Ev = {
  ts: number;
  sessionId?: string;
  clientIp: string;
  helo?: string;
  from?: string;
  rcpts: string[];
  stage: string;
  action: string;
  code?: number;
  rule: string;
  text?: string;
  evidence: Array<{ check: string; result: string; detail?: string; ms?: number }>;
};

const { SqliteStore } = (await import(join(src, 'store/sqlite/store.ts'))) as typeof import('../src/store/sqlite/store.js');
const { DecisionLog } = (await import(join(src, 'store/decision-log.ts'))) as typeof import('../src/store/decision-log.js');

function event(i: number): Ev {
  return {
    ts: Date.now(),
    sessionId: `3F2A${i.toString(16)}`,
    clientIp: `198.51.${(i >> 8) & 255}.${i & 255}`,
    helo: `mail${i & 63}.sender.example`,
    from: `bounce-${i}@sender.example`,
    rcpts: [`user${i & 1023}@dest.example`],
    stage: 'rcpt',
    action: 'continue',
    rule: 'default',
    evidence: [
      { check: 'banned', result: 'pass', ms: 0 },
      { check: 'dnsbl', result: 'pass', detail: 'zen.spamhaus.org: not listed', ms: 0 },
      { check: 'spf', result: 'pass', detail: 'sender.example: pass (ip4:198.51.0.0/16)', ms: 0 },
      { check: 'fcrdns', result: 'pass', detail: `mail${i & 63}.sender.example`, ms: 0 },
      { check: 'helo', result: 'pass', ms: 0 },
      { check: 'greylist', result: 'pass', detail: 'triplet seen 2 times, passed', ms: 0 },
    ],
  };
}

type Log = (e: Ev) => unknown;

/** CPU time of the main thread (its task id is the process id), ns. */
function mainCpuNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

/** Log N events at RATE_PER_MS; returns main-thread active ms and stalls. */
async function load(log: Log, settle: () => Promise<unknown>): Promise<{ activeMs: number; wallMs: number; maxGapMs: number; maxCallMs: number; maxDelayMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const cpu0 = mainCpuNs();
  const t0 = performance.now();
  let sent = 0;
  let last = t0;
  let maxGap = 0;
  let maxCall = 0;
  const tick = (): void => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  };
  await new Promise<void>((resolve) => {
    const turn = (): void => {
      tick();
      const now = performance.now();
      const due = Math.min(N, Math.floor((now - t0) * RATE_PER_MS));
      while (sent < due) {
        const e = event(sent++);
        const c0 = performance.now();
        log(e);
        maxCall = Math.max(maxCall, performance.now() - c0);
      }
      if (sent >= N) resolve();
      else setTimeout(turn, 1);
    };
    setTimeout(turn, 1);
  });
  // Keep watching the loop while the tail is written.
  const tail = settle();
  const watch = setInterval(tick, 1);
  await tail;
  clearInterval(watch);
  const cpuMs = (mainCpuNs() - cpu0) / 1e6;
  h.disable();
  return { activeMs: cpuMs, wallMs: performance.now() - t0, maxGapMs: maxGap, maxCallMs: maxCall, maxDelayMs: h.max / 1e6 };
}

const silent = { info() {}, warn() {}, error() {} };
const rows: string[] = [];
const results: Record<string, Array<{ us: number; maxGapMs: number; maxCallMs: number; maxDelayMs: number }>> = {};

for (let run = 0; run < RUNS; run++) {
  // Baseline: the generator and pacing loop alone.
  const shared = Promise.resolve();
  const base = await load(() => shared, () => shared);
  console.log(`run ${run} baseline (no-op logEvent): main CPU ${base.activeMs.toFixed(0)} ms; longest stall ${base.maxGapMs.toFixed(1)} ms , loop delay max ${base.maxDelayMs.toFixed(1)} ms`);
  (results['baseline'] ??= []).push({ us: 0, maxGapMs: base.maxGapMs, maxCallMs: base.maxCallMs, maxDelayMs: base.maxDelayMs });

  for (const caller of ['store.logEvent', 'DecisionLog.record'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'fl-evload-'));
    const store = await SqliteStore.open({ backend: 'sqlite', path: join(dir, 'frontline.db'), pollMs: 0 }, { purgeIntervalSeconds: 0, logger: silent });
    let logFn: Log;
    let settle: () => Promise<unknown>;
    if (caller === 'store.logEvent') {
      let lastP: Promise<unknown> = Promise.resolve();
      logFn = (e) => (lastP = store.logEvent(e));
      settle = () => lastP;
    } else {
      const dl = new DecisionLog(store, silent);
      // A verdict/envelope pair as the policy server would record it.
      logFn = (e) =>
        dl.record(
          { stage: 'rcpt', action: 'continue', rule: e.rule, evidence: e.evidence, code: undefined, text: undefined } as never,
          { clientIp: e.clientIp, helo: e.helo, from: e.from, rcpts: e.rcpts, sessionId: e.sessionId } as never,
        );
      settle = () => dl.flush();
    }
    // Warm up: the JIT, and the writer thread started.
    for (let i = 0; i < 2000; i++) logFn(event(i));
    await settle();
    await store.queryEvents({ limit: 1 });
    const r = await load(logFn, settle);
    const count = (await store.queryEvents({ limit: 10_000, since: 0 })).length;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    if (count < 10_000) throw new Error(`only ${count} events stored`);
    const us = ((r.activeMs - base.activeMs) * 1000) / N;
    (results[caller] ??= []).push({ us, maxGapMs: r.maxGapMs, maxCallMs: r.maxCallMs, maxDelayMs: r.maxDelayMs });
    rows.push(
      `run ${run} ${caller.padEnd(18)} main ${us.toFixed(1).padStart(5)} µs/event (main CPU ${r.activeMs.toFixed(0)} ms, baseline ${base.activeMs.toFixed(0)} ms, wall ${r.wallMs.toFixed(0)} ms); longest stall ${r.maxGapMs.toFixed(1)} ms (longest call ${r.maxCallMs.toFixed(2)} ms), loop delay max ${r.maxDelayMs.toFixed(1)} ms`,
    );
    console.log(rows[rows.length - 1]);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [caller, rs] of Object.entries(results)) {
  console.log(
    `${src}: ${caller}: median ${median(rs.map((r) => r.us)).toFixed(1)} µs/event on the main thread; longest stall median ${median(rs.map((r) => r.maxGapMs)).toFixed(1)} ms, worst ${Math.max(...rs.map((r) => r.maxGapMs)).toFixed(1)} ms; longest call median ${median(rs.map((r) => r.maxCallMs)).toFixed(1)} ms, worst ${Math.max(...rs.map((r) => r.maxCallMs)).toFixed(1)} ms; loop delay max median ${median(rs.map((r) => r.maxDelayMs)).toFixed(1)} ms`,
  );
}
