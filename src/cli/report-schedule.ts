// The daily report mailed by `frontline serve` on `report.schedule`: the job
// the scheduler (src/report/scheduler.ts) runs, over the store serve has
// open, or over one opened for each send (the cluster primary, which opens
// no store of its own while it only supervises).

import type { Config } from '../config/load.js';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/types.js';
import { parseSchedule } from '../report/schedule.js';
import { ReportScheduler, type ScheduledReportJob } from '../report/scheduler.js';
import type { Store } from '../store/types.js';
import { parseDuration } from './duration.js';
import { dailyReport, mailDailyReport } from './report.js';
import { openConfiguredStore } from './store.js';

/** Runs `fn` with a store, opened for the call or the one already open. */
export type WithStore = <T>(fn: (store: Store) => Promise<T>) => Promise<T>;

/**
 * A slot is claimed by taking the one token of a bucket named after it:
 * atomic on both backends (a Lua script on Redis, a transaction on SQLite),
 * so of the hosts sharing a store exactly one gets it. The bucket refills in
 * 8 days, and is dropped once full again (Redis TTL, SQLite purge).
 */
const CLAIM = { capacity: 1, refillPerSecond: 1 / (8 * 86_400) };

export function scheduledReportJob(config: Config, withStore: WithStore): ScheduledReportJob {
  const seconds = parseDuration(config.report.since, 'report.since');
  return {
    claim: (slot) => withStore(async (store) => (await store.rateTake(`report-schedule:${slot}`, CLAIM)).allowed),
    send: (slot) =>
      withStore(async (store) => {
        const r = await dailyReport(store, config, seconds, slot);
        return { to: config.report.mail_to, messageId: await mailDailyReport(r, config) };
      }),
  };
}

/** A WithStore that opens the configured store for each call and closes it after. */
export function storePerCall(config: Config, logger: Logger): WithStore {
  return async (fn) => {
    const store = await openConfiguredStore(config, { logger: logger.child({ room: 'store' }), purge: false });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };
}

/** Start mailing the report on report.schedule; undefined when there is none. */
export function startReportSchedule(config: Config, opts: { withStore: WithStore; logger: Logger; clock?: Clock }): ReportScheduler | undefined {
  if (config.report.schedule === null) return undefined;
  const scheduler = new ReportScheduler({
    schedule: parseSchedule(config.report.schedule),
    job: scheduledReportJob(config, opts.withStore),
    clock: opts.clock ?? systemClock,
    logger: opts.logger.child({ room: 'report' }),
  });
  scheduler.start();
  opts.logger.info({ room: 'report', schedule: config.report.schedule, to: config.report.mail_to, next: new Date(scheduler.nextDue).toISOString() }, 'report: mailed on schedule');
  return scheduler;
}
