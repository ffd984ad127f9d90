// `frontline serve --workers N`: one policy engine per CPU. The primary
// process only supervises: it forks N workers (node:cluster), each of which
// runs `serve` (policy server, gate, store, DNS cache, evidence
// cache of its own), shares the listening sockets through the primary
// (round-robin, so Postfix's long-lived connections are dealt out evenly),
// restarts a worker that dies (with backoff; before all are up, in its turn
// among those still to start, so there are never more than N), and on
// SIGTERM/SIGINT stops them all and exits once they have.
//
// What is per worker and so not shared: the DNS and evidence caches, and the
// open Postfix transactions (a connection stays with its worker, so a message
// is judged by one worker unless Postfix reconnects in the middle of it).
//
// What runs once for the host: the daily report (here, in the primary), and
// the jobs that act for the whole host, in the worker of slot 0 only (the
// primary gives each worker a slot in its environment, and a replacement the
// slot of the worker it replaces): the log watcher, the SPF walks and list
// imports, the firewall, the pulls of peers' feeds and the ban census of
// /metrics. Run by every worker, the log watcher would read each line once
// per worker (a correspondent counted N times, each ban asked for N times)
// and the others fetch, reconcile and count N times. While slot 0 is being
// replaced (1 s or more) they wait. The self check stays in every worker: its
// result is in memory, for the dashboard page a worker answers.

import { parseMilterAddress } from '../milter/listen-address.js';
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Logger } from 'pino';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { removeStaleSocket } from '../core/unix-socket.js';
import type { ServeOptions } from './serve.js';
import { splitList } from './runtime.js';
import { loadWebAuth } from '../report/web/auth.js';
import { newSessionKey, SESSION_KEY_ENV } from '../report/web/dashboard/auth.js';
import { webListenAddress } from '../report/web/config.js';
import { servePrimaryScrapes } from '../report/metrics/cluster.js';
import { startReportSchedule, storePerCall } from './report-schedule.js';

export type WorkersSetting = number | 'auto';

/** How many workers a setting means: `auto` is one per CPU the process may use. */
export function workerCount(setting: WorkersSetting): number {
  if (setting === 'auto') return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  return setting;
}

/**
 * Node flags for the workers.
 *
 * A larger young generation: a decision allocates many short-lived objects
 * (request attributes, evidence, the log line), and the scavenger was ~7–12%
 * of a worker's CPU in profiles. With 64 MB, bench/policy-server.ts measured
 * 153 µs of CPU per decision against 170–188 µs in paired runs; later runs
 * with 16, 32 and 64 MB were within the machine's noise of each other in
 * CPU. Once the rest of the p99 was gone, the young generation's size set
 * it: 128 MB against 64 MB in three pairs of three runs, p99 4.30–5.05 ms
 * against 4.80–5.31, the rate the same; 16 MB gave 5.76–6.43 ms
 * (docs/performance.md). A worker's RSS stayed ~300–335 MB either way.
 *
 * No parallel scavenge: V8's young-generation scavenger shares its work
 * with helper threads that, with one worker per core, only take CPU from
 * the other workers; on the 2-vCPU bench machine they cost ~14 µs per
 * decision (four helpers at 3–4 µs each, from /proc) while the worker's own
 * thread did no more work without them. Only the scavenge: the old
 * generation is still marked concurrently, so its pauses stay short
 * (`--single-threaded-gc`, which turns that off too, saved no more;
 * docs/performance.md).
 *
 * A flag already given (NODE_OPTIONS or the command line) wins.
 */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = (flag: string): boolean => [...execArgv, nodeOptions].some((a) => a.includes(flag));
  const out = [...execArgv];
  if (!given('--max-semi-space-size')) out.push('--max-semi-space-size=128');
  if (!given('parallel-scavenge') && !given('single-threaded-gc')) out.push('--no-parallel-scavenge');
  return out;
}

/** `--workers` as given on the command line. */
export function parseWorkersFlag(s: string): WorkersSetting {
  if (s === 'auto') return 'auto';
  if (!/^[1-9]\d*$/.test(s)) throw new Error(`--workers: expected a whole number >= 1 or "auto", got "${s}"`);
  return Number(s);
}

/** The environment variable in which the primary gives each worker its slot, 0 to N-1. */
const SLOT_ENV = 'FRONTLINE_WORKER_SLOT';

/** Whether this process runs the host-wide jobs: serve without workers, or the worker in slot 0. */
export function runsHostJobs(): boolean {
  return !cluster.isWorker || process.env[SLOT_ENV] === '0';
}

/** Messages a worker sends its primary. */
interface WorkerMessage {
  frontline: 'say';
  line: string;
}

function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && (m as WorkerMessage).frontline === 'say' && typeof (m as WorkerMessage).line === 'string';
}

/**
 * What `serve` prints (the ready line…): in a worker it goes to the primary,
 * which prints it once for all; elsewhere undefined (serve's default, stderr).
 */
export function clusterSay(): ((line: string) => void) | undefined {
  if (!cluster.isWorker) return undefined;
  return (line) => process.send?.({ frontline: 'say', line } satisfies WorkerMessage);
}

export interface SupervisorOptions {
  workers: number;
  /** First restart delay; doubled for each worker that dies young, up to maxBackoffMs. Default 1000. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A worker that lived this long resets the backoff. Default 30000. */
  healthyAfterMs?: number;
  /** Workers still running this long after SIGTERM are killed. Default 15000. */
  stopGraceMs?: number;
  logger: Logger;
  say: (line: string) => void;
}

/**
 * `serve` with workers > 1: run the primary (and return true); false when
 * this process should serve itself (one worker, or this is a worker).
 */
export async function serveClustered(opts: ServeOptions & { workers?: string }, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<boolean> {
  if (cluster.isWorker) return false;
  const config = loadConfig(opts.config, { policyListen: opts.policyListen, dns: splitList(opts.dns), webListen: opts.webListen });
  const workers = workerCount(opts.workers !== undefined ? parseWorkersFlag(opts.workers) : config.workers);
  if (workers <= 1) return false;
  // Refused here, once, rather than by every worker in turn: a web listener off loopback without web.auth.
  loadWebAuth(config.web);
  // One key for the dashboard's session cookies, inherited by every worker (any of them may answer a page).
  process.env[SESSION_KEY_ENV] ??= newSessionKey();
  // A worker taking a /metrics scrape asks this process for every worker's counts.
  if (config.web.metrics && webListenAddress(config.web) !== undefined) servePrimaryScrapes();
  // A socket file left by a dead server is removed here, once: workers share the primary's socket.
  const socket = opts.policySocket ?? config.listen.policy_socket;
  if (socket) await removeStaleSocket(socket);
  const milter = parseMilterAddress(opts.milterListen ?? config.milter.listen ?? '');
  if (milter?.kind === 'unix') await removeStaleSocket(milter.path);
  const logger = createLogger({ level: config.log.level, file: config.log.file, name: 'frontline' });
  // The daily report on report.schedule is mailed from here, once, not by every worker (each opens the store for a send).
  if (opts.dataDir !== undefined) config.data_dir = opts.dataDir;
  startReportSchedule(config, { withStore: storePerCall(config, logger), logger });
  await supervise({ workers, logger, say });
  return true;
}

/**
 * Fork the workers one after another (the next when the last is ready),
 * print the ready line when all are up, restart the ones that die, stop them
 * all on a signal. Until all are up, a replacement waits its turn in that
 * sequence too, and the sequence forks only the workers still missing: a
 * worker that was ready and died is the replacement's to fill, not another's.
 */
export function supervise(opts: SupervisorOptions): Promise<void> {
  const backoffMs = opts.backoffMs ?? 1000;
  const maxBackoffMs = opts.maxBackoffMs ?? 30000;
  const healthyAfterMs = opts.healthyAfterMs ?? 30000;
  const stopGraceMs = opts.stopGraceMs ?? 15000;
  const log = opts.logger.child({ room: 'cluster' });
  const started = new Map<Worker, number>();
  const slots = new Map<Worker, number>();
  const ready = new Set<Worker>();
  /** Slots whose replacement waits out its backoff. */
  const restarting = new Set<number>();
  /** Slots whose backoff is over, waiting (until all are up) for the worker being started. */
  const due: number[] = [];
  const said = new Set<string>();
  let allReady = false;
  let stopping = false;
  let exitCode = 0;
  let delay = backoffMs;

  cluster.setupPrimary({ execArgv: workerExecArgv() });
  return new Promise<void>((resolve) => {
    const freeSlot = (): number => {
      const taken = new Set([...slots.values(), ...restarting, ...due]);
      let slot = 0;
      while (taken.has(slot)) slot++;
      return slot;
    };
    const fork = (slot: number): void => {
      const w = cluster.fork({ [SLOT_ENV]: String(slot) });
      started.set(w, Date.now());
      slots.set(w, slot);
      w.on('message', (m: unknown) => {
        if (!isWorkerMessage(m)) return;
        if (m.line.startsWith('frontline ready')) {
          ready.add(w);
          if (allReady) {
            log.info({ worker: w.id, workerPid: w.process.pid }, 'worker ready');
          } else if (ready.size === opts.workers) {
            allReady = true;
            log.info({ workers: opts.workers }, 'all workers ready');
            opts.say(`${m.line}, ${opts.workers} workers`);
          } else {
            startNext();
          }
          return;
        }
        // Each worker says the same things (gate address…): once is enough.
        if (!said.has(m.line)) {
          said.add(m.line);
          opts.say(m.line);
        }
      });
    };

    cluster.on('exit', (w, code, signal) => {
      const lived = Date.now() - (started.get(w) ?? Date.now());
      const wasReady = ready.has(w);
      const slot = slots.get(w) ?? 0;
      started.delete(w);
      ready.delete(w);
      slots.delete(w);
      if (stopping) {
        if (started.size === 0) finish(exitCode);
        return;
      }
      if (!allReady && !wasReady) {
        // A worker that cannot start (bad config, address in use) will not start the next time either.
        opts.say(`frontline: a worker exited before it was ready (${signal ?? `exit ${code}`}); stopping`);
        stop(1);
        return;
      }
      if (lived >= healthyAfterMs) delay = backoffMs;
      log.error({ worker: w.id, workerPid: w.process.pid, code, signal, restartInMs: delay }, 'worker died; restarting it');
      opts.say(`frontline: worker ${w.process.pid} died (${signal ?? `exit ${code}`}); restarting in ${delay} ms`);
      const wait = delay;
      delay = Math.min(maxBackoffMs, delay * 2);
      // Not unref'd: with every worker gone, this timer is what keeps the primary alive.
      restarting.add(slot);
      setTimeout(() => {
        restarting.delete(slot);
        if (stopping) return;
        if (allReady) {
          fork(slot);
        } else {
          due.push(slot);
          startNext();
        }
      }, wait);
    });

    // Until all are up: one worker starting at a time (two opening a new SQLite store at once can get
    // SQLITE_BUSY), a replacement first, then a new slot only while fewer than N are running or waiting.
    const startNext = (): void => {
      if (stopping || allReady) return;
      if ([...started.keys()].some((w) => !ready.has(w))) return;
      const slot = due.shift() ?? (started.size + restarting.size < opts.workers ? freeSlot() : undefined);
      if (slot !== undefined) fork(slot);
    };

    const finish = (code: number): void => {
      log.info({ code }, 'all workers stopped');
      process.exitCode = code;
      let done = false;
      const end = (): void => {
        if (done) return;
        done = true;
        resolve();
        process.exit(code);
      };
      opts.logger.flush(() => end());
      setTimeout(end, 2000).unref();
    };
    const stop = (code: number): void => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      if (started.size === 0) {
        finish(code);
        return;
      }
      for (const w of started.keys()) w.process.kill('SIGTERM');
      setTimeout(() => {
        for (const w of started.keys()) w.process.kill('SIGKILL');
      }, stopGraceMs).unref();
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      opts.say(`frontline: ${signal}, stopping ${started.size} workers`);
      stop(0);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);

    // One at a time: each opens the store (SQLite schema, WAL) while no sibling is doing the same.
    fork(0);
  });
}
