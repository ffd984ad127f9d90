// This build's decision against another build's, taken in turns: each
// compiled server's PolicyServer.answer() (envelope, policy walk, reply,
// decision line, the SQLite store's decision log, the learned
// correspondents hearing every decision, as `serve` wires them) on the
// policy-server bench's five envelopes with warm caches, each build in a
// process of its own (no shared heap or garbage collector), driven in short
// alternating rounds. CPU is the process's own (getrusage: every thread, in
// microseconds), read at the end of each round, so the writer thread's
// commits after a round count for it. On a machine shared with other work,
// rounds taken turn about meet the same load; the figure is the median of
// the rounds' ratios. It is the common-path figure of the policy-server
// bench (BENCH_BASELINE_ENTRY) without sockets, whose /proc CPU readings
// are too coarse when a busy machine leaves the servers a few hundred
// decisions a second.
//
//   BENCH_BASELINE_DIST=<other tree>/dist npm run bench -- policy-ab
//   BENCH_DECISIONS=2000 BENCH_ROUNDS=40 …   decisions per round, rounds per build
//   BENCH_PROFILE=1 …   CPU profiles of each build (node --cpu-prof) to $TMPDIR/frontline-ab/
//
// Printed only; bench/README.md is not rewritten.

import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadZoneYaml, startFixtureDns } from '../test/helpers/fixture-dns.js';
import { rcptRequest } from '../test/helpers/policy-client.js';
import { REPO_ROOT } from '../test/helpers/cli.js';
import { buildServer } from './lib/build.js';
import { CASES } from './lib/policy-cases.js';

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
const PROFILE = process.env.BENCH_PROFILE === '1';
const CHILD = process.env.BENCH_AB_CHILD;

type ToChild = { run: number } | { close: true };
type FromChild = { ready: true } | { done: number; cpuUs: number } | { closed: true } | { error: string };

/** In a child: one build, answering rounds until told to close. */
async function child(dist: string, dnsServer: string): Promise<void> {
  const product = <T>(path: string): Promise<T> => import(pathToFileURL(join(dist, path)).href) as Promise<T>;
  const { parseConfig } = await product<typeof import('../src/config/load.js')>('config/load.js');
  const { buildRuntime } = await product<typeof import('../src/cli/runtime.js')>('cli/runtime.js');
  const { createLogger } = await product<typeof import('../src/log.js')>('log.js');
  const { PolicyServer } = await product<typeof import('../src/postfix/policy-server.js')>('postfix/policy-server.js');
  const { SqliteStore } = await product<typeof import('../src/store/sqlite/store.js')>('store/sqlite/store.js');
  const { DecisionLog } = await product<typeof import('../src/store/decision-log.js')>('store/decision-log.js');
  const { createIntelJobs } = await product<typeof import('../src/cli/intel-jobs.js')>('cli/intel-jobs.js');
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-ab-'));
  const cfg = parseConfig(`dns: { servers: ["${dnsServer}"] }\nheaders: { authserv_id: mx.bench.test }\n`, 'bench.yaml');
  const logger = createLogger({ level: 'info', file: '/dev/null' });
  const store = await SqliteStore.open({ backend: 'sqlite', path: join(tmp, 'frontline.db') });
  const log = new DecisionLog(store, logger);
  const intel = createIntelJobs(cfg, { store, logger });
  const runtime = buildRuntime(cfg, logger, store, { correspondents: intel.correspondents });
  const server = new PolicyServer({
    policy: runtime.policy,
    logger,
    acceptReply: cfg.postfix.accept_reply,
    onFault: cfg.postfix.on_fault,
    onDecision: (v, e, s) => {
      log.record(v, e, s);
      intel.onDecision(v, e);
    },
  });
  const conn = { peer: 'bench', lastKey: undefined } as unknown as Parameters<typeof server.answer>[1];
  let seq = 0;
  const round = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++, seq++) {
      const c = CASES[seq % CASES.length];
      const attrs = rcptRequest({ ...c.attrs, recipient: `user${seq % 1000}@dest.example`, instance: `${seq}.bench` });
      const a = server.answer(attrs, conn);
      const action = typeof a === 'string' ? a : await a;
      if (!c.expect.test(action)) throw new Error(`wrong answer ${action}`);
      // Let timers and the writer thread's acknowledgements in, as a server's event loop would.
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
  };
  await round(5000);
  const send = (m: FromChild): void => void process.send!(m);
  let last = process.cpuUsage();
  process.on('message', (m: ToChild) => {
    if ('run' in m) {
      round(m.run).then(
        () => {
          // From the end of this build's last round: what its threads did meanwhile (the writer's commits) is its own.
          const now = process.cpuUsage();
          send({ done: m.run, cpuUs: now.user - last.user + (now.system - last.system) });
          last = now;
        },
        (e: unknown) => send({ error: String(e) }),
      );
    } else {
      void (async () => {
        await log.flush();
        await server.close();
        runtime.close();
        await store.close();
        rmSync(tmp, { recursive: true, force: true });
        send({ closed: true });
        process.disconnect();
      })();
    }
  });
  send({ ready: true });
}

interface Build {
  name: 'this' | 'baseline';
  ask: (m: ToChild) => Promise<FromChild>;
  cpuUs: number[];
}

function start(name: Build['name'], dist: string, dnsServer: string, profDir: string): Promise<Build> {
  const proc = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, BENCH_AB_CHILD: dist, BENCH_AB_DNS: dnsServer },
    execArgv: ['--import', 'tsx', ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let waiting: ((m: FromChild) => void) | undefined;
  proc.on('message', (m: FromChild) => {
    if ('error' in m) throw new Error(`${name}: ${m.error}`);
    const w = waiting;
    waiting = undefined;
    w?.(m);
  });
  const next = (): Promise<FromChild> => new Promise((resolve) => (waiting = resolve));
  return next().then(() => ({
    name,
    cpuUs: [],
    ask: (m) => {
      const p = next();
      proc.send(m);
      return p;
    },
  }));
}

async function main(): Promise<void> {
  const baseline = process.env.BENCH_BASELINE_DIST;
  if (!baseline) {
    console.log('  policy-ab: nothing to compare; set BENCH_BASELINE_DIST=<other tree>/dist (a `git worktree` of the older commit, built there)');
    return;
  }
  buildServer();
  const dns = await startFixtureDns(loadZoneYaml(fileURLToPath(new URL('../test/fixtures/world.yaml', import.meta.url))));
  const profDir = join(os.tmpdir(), 'frontline-ab');
  if (PROFILE) mkdirSync(profDir, { recursive: true });
  const builds = [await start('this', join(REPO_ROOT, 'dist'), dns.server, profDir), await start('baseline', baseline, dns.server, profDir)];
  console.log(`policy A/B, a process per build: ${DECISIONS.toLocaleString('en-US')} decisions × ${ROUNDS} rounds each, turn about; load average ${os.loadavg()[0].toFixed(2)}`);
  // A first round each, unmeasured: it carries the warm-up's deferred work.
  for (const b of builds) await b.ask({ run: DECISIONS });
  for (let r = 0; r < ROUNDS; r++) {
    for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
      const m = await b.ask({ run: DECISIONS });
      if ('cpuUs' in m) b.cpuUs.push(m.cpuUs / DECISIONS);
    }
  }
  for (const b of builds) await b.ask({ close: true });
  await dns.close();
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const [mine, base] = builds;
  const ratios = mine.cpuUs.map((u, i) => u / base.cpuUs[i]);
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  for (const b of builds) console.log(`  ${b.name.padEnd(8)} ${med(b.cpuUs).toFixed(1)} µs of CPU per decision (median of ${ROUNDS} rounds; mean ${(sum(b.cpuUs) / ROUNDS).toFixed(1)})`);
  console.log(`  this build: ${(med(ratios) * 100).toFixed(1)}% of the baseline's CPU per decision (median of the rounds' ratios; ratio of the totals ${((sum(mine.cpuUs) / sum(base.cpuUs)) * 100).toFixed(1)}%); load average ${os.loadavg()[0].toFixed(2)}`);
  if (PROFILE) console.log(`  CPU profiles in ${profDir}`);
}

if (CHILD) await child(CHILD, process.env.BENCH_AB_DNS!);
else await main();
