// What `frontline serve` runs beside the policy server to know the bad and the
// good before they knock (issue 5): the log watcher (bans into the store), the
// large senders' SPF walked into the `spf-walked` list, imported lists, and
// learning correspondents — from authenticated policy requests and from the
// Postfix `status=sent` lines the log watcher reads — with their SPF walked
// into the `correspondents` list.
//
// Two steps, because the policy needs the `correspondent` check before it is
// built, while the jobs need the policy's resolver and should only start once
// the server is listening: createIntelJobs (no side effects), then start().

import { resolve } from 'node:path';
import { loadConfig, type Config } from '../config/load.js';
import { systemClock, type Clock, type Envelope, type Verdict } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';
import { importSources, whitelistDomains } from '../intel/config.js';
import { Correspondents, StoreCorrespondents } from '../intel/correspondents/index.js';
import { ListImporter } from '../intel/lists-import/import.js';
import { logWatchOptionsFromConfig, startLogWatch, type LogLine, type LogWatch, type LogWatchSourceStats, type SourceConfig } from '../intel/logwatch/index.js';
import { startSchedule, type RunningSchedule, type ScheduledJob } from '../intel/schedule.js';
import { SpfWalkedList, type SpfListRun } from '../intel/spfwalk/whitelist.js';
import { storeListSink } from '../intel/store-sink.js';
import { SelfCheck } from '../intel/self-check.js';
import { parseZoneSpec } from '../checks/dnsbl.js';
import type { Store } from '../store/index.js';
import { openConfiguredStore } from './store.js';

export interface IntelDeps {
  store: Store;
  logger: Logger;
  clock?: Clock;
  /**
   * Run the jobs that act for the whole host: the log watcher, the SPF walks and the list imports
   * (default true). False in all workers of `serve --workers N` but one (src/cli/cluster.ts); the
   * self check and learning from decisions run in every worker.
   */
  hostJobs?: boolean;
}

export interface IntelJobs {
  /** The learned correspondents (their `check` goes into the policy); absent when intel.correspondents is off. */
  correspondents?: Correspondents;
  /** The policy server's decision listener: authenticated requests that were not refused teach correspondents. Never throws. */
  onDecision(verdict: Verdict, envelope: Envelope): void;
  /**
   * Start the log watcher and the scheduled walks and imports; `resolver` does their DNS.
   * Never rejects: a log watcher that cannot start (its state file unreadable) is logged as an
   * error and left off, so the policy server keeps answering.
   */
  start(resolver: Resolver): Promise<void>;
  /** Stop everything started; waits for running jobs and saves the log offsets. */
  stop(): Promise<void>;
  /** The log watcher's counts by source (empty when it is off), for /metrics. */
  logwatchStats(): LogWatchSourceStats[];
  /** Our outgoing addresses against the DNSBLs (intel.self_check); absent when off. */
  selfCheck?: SelfCheck;
}

const REFUSED = new Set(['reject', 'defer', 'tarpit']);

/** Formats whose lines can be Postfix's: the correspondents' `status=sent` lines are looked for there only. */
const MAIL_LOG_FORMATS = new Set(['auto', 'postfix']);

export function createIntelJobs(cfg: Config, deps: IntelDeps): IntelJobs {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger.child({ room: 'intel' });
  const sink = storeListSink(deps.store);
  const cc = cfg.intel.correspondents;
  const correspondents = cc.enabled
    ? new Correspondents({
        clock,
        store: new StoreCorrespondents(deps.store, cc.max_entries),
        ttlS: cc.ttl_s,
        freeMail: cc.free_mail,
        ignoreDomains: cc.ignore_domains,
        minCount: cc.min_count,
        requireAuth: cc.require_auth,
        includeLocal: cc.include_local,
      })
    : undefined;

  const learnFailed = (e: unknown) => log.warn({ err: (e as Error).message }, 'learning a correspondent failed');

  /** Mail log lines read by the log watcher: Postfix `status=sent` deliveries teach correspondents. */
  const onLines = (lines: readonly LogLine[], src: SourceConfig): void => {
    if (!correspondents || !MAIL_LOG_FORMATS.has(src.format)) return;
    for (const line of lines) {
      if (line.program !== undefined) {
        if (!line.program.startsWith('postfix')) continue;
        const sent = correspondents.log.message(line.program, line.message ?? line.text);
        if (sent) correspondents.learner.learnRecipient(sent.address).catch(learnFailed);
      } else if (line.text.includes(' postfix')) {
        correspondents.learnFromLogLine(line.text).catch(learnFailed);
      }
    }
  };

  let watch: LogWatch | undefined;
  let schedule: RunningSchedule | undefined;

  const sc = cfg.intel.self_check;
  const scZones = (sc.zones ?? cfg.checks.dnsbl.zones).map(parseZoneSpec);
  if (sc.enabled && scZones.length === 0) log.warn({}, 'intel.self_check is enabled but no zones are configured (intel.self_check.zones or checks.dnsbl.zones): not run');
  const selfCheck =
    sc.enabled && scZones.length > 0
      ? new SelfCheck({ addresses: sc.addresses, zones: scZones, timeoutMs: sc.timeout_ms, clock, intervalS: sc.interval_s }, log.child({ job: 'self-check' }))
      : undefined;

  const walkJob = (name: string, walked: SpfWalkedList, intervalS: number, skipWhenEmpty = false): ScheduledJob => ({
    name,
    intervalMs: intervalS * 1000,
    run: async () => {
      // A walk of nothing (a new store, or every correspondent expired) would empty the list that
      // earlier runs filled; its entries expire by themselves.
      if (skipWhenEmpty && (await correspondents!.learner.domainsToWalk(cc.min_count)).length === 0) return;
      report(log, await walked.runOnce());
    },
  });

  return {
    correspondents,
    selfCheck,

    onDecision(verdict, envelope) {
      if (!correspondents || !envelope.saslUser || REFUSED.has(verdict.action)) return;
      correspondents.noteFromAuthenticated(envelope, verdict.stage, learnFailed);
    },

    async start(resolver) {
      const jobs: ScheduledJob[] = [];
      const hostJobs = deps.hostJobs ?? true;
      const wl = cfg.intel.spf_whitelist;
      if (wl.enabled && hostJobs) {
        const walked = new SpfWalkedList(
          { list: wl.list, intervalS: wl.interval_s, sink, resolver, clock, walk: { maxLookupsPerDomain: wl.max_lookups, concurrency: wl.concurrency } },
          () => whitelistDomains(cfg.intel),
        );
        jobs.push(walkJob(`spf-whitelist:${wl.list}`, walked, wl.interval_s));
      }
      if (correspondents && hostJobs) {
        const walked = new SpfWalkedList({ list: cc.list, intervalS: cc.walk_interval_s, sink, resolver, clock }, () =>
          correspondents.learner.domainsToWalk(cc.min_count),
        );
        jobs.push(walkJob(`correspondents:${cc.list}`, walked, cc.walk_interval_s, true));
      }
      const sources = hostJobs ? importSources(cfg.intel) : [];
      if (sources.length > 0) {
        const importer = new ListImporter(sources, { sink, clock }, (r) => {
          const fields = { list: r.name, source: r.source, status: r.status, count: r.count, previous: r.previous, badLines: r.badLines.length, reason: r.reason };
          if (r.status === 'updated') log.info(fields, `list import ${r.name}: ${r.count} entries`);
          // A held copy waits for an admin: said at error level at every run until someone acts.
          else if (r.status === 'held') log.error(fields, `list import ${r.name} held: ${r.reason ?? ''}`);
          else log.warn(fields, `list import ${r.name} ${r.status}: ${r.reason ?? ''}`);
        });
        jobs.push(...importer.jobs());
      }
      if (selfCheck) jobs.push(selfCheck.job(resolver));
      if (jobs.length > 0) {
        schedule = startSchedule(jobs, { clock, onError: (job, e) => log.error({ job: job.name, err: (e as Error).message }, `intel job ${job.name} failed`) });
      }

      const lw = cfg.logwatch;
      if (lw.enabled && hostJobs) {
        if (lw.sources.length === 0) log.warn('logwatch.enabled but no logwatch.sources: nothing to watch');
        else {
          try {
            watch = await startLogWatch({
              ...logWatchOptionsFromConfig(lw, resolve(cfg.data_dir)),
              sink: deps.store,
              clock,
              logger: deps.logger.child({ room: 'logwatch' }),
              onLines: correspondents ? onLines : undefined,
            });
          } catch (e) {
            log.error({ err: (e as Error).message }, `logwatch could not start, logs are not watched: ${(e as Error).message}`);
          }
        }
      }
      log.info({ jobs: jobs.map((j) => j.name), logwatch: watch !== undefined, correspondents: correspondents !== undefined }, 'intel started');
    },

    async stop() {
      await schedule?.stop();
      await watch?.stop();
    },
    logwatchStats: () => watch?.stats() ?? [],
  };
}

/** `frontline logwatch` bans into the store `serve` uses (the change feed carries the bans to a running server). */
export async function openBanSink(configFile: string | undefined): Promise<{ sink: Store; close(): Promise<void> }> {
  const store = await openConfiguredStore(loadConfig(configFile));
  return { sink: store, close: () => store.close() };
}

/** Create and start at once (for callers that build their policy without the `correspondent` check). */
export async function startIntelJobs(cfg: Config, deps: IntelDeps & { resolver: Resolver }): Promise<IntelJobs> {
  const jobs = createIntelJobs(cfg, deps);
  await jobs.start(deps.resolver);
  return jobs;
}

function report(log: Logger, run: SpfListRun): void {
  const failed = run.domains.filter((d) => d.status !== 'ok');
  log.info(
    { list: run.list, entries: run.entries, domains: run.domains.length, failed: failed.map((d) => d.domain), kept: run.domains.reduce((n, d) => n + d.kept, 0) },
    `SPF walk into ${run.list}: ${run.entries} networks from ${run.domains.length} domains${failed.length > 0 ? `, ${failed.length} failed (previous networks kept)` : ''}`,
  );
  if (run.loadError) log.warn({ list: run.list, err: run.loadError }, `SPF walk into ${run.list}: could not read the previous entries`);
  for (const e of run.walk.errors) log.debug({ list: run.list, domain: e.domain, reason: e.reason }, 'SPF walk error');
}
