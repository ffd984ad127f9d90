// Mails the daily report on `report.schedule` from inside `frontline serve`
// (docs/report.md, "Mailed by serve"). Time comes from an injected clock, so
// tests move it; the work (claiming the slot, building and mailing the
// report) from an injected job, so this file only decides when.
//
// - Each due time (a *slot*) is claimed once in the store before the first
//   try: hosts sharing a Redis store each run the schedule, and the first to
//   claim the slot sends it; the others log that and wait for the next one.
// - A failed send is logged and tried again (5 min, doubling up to an hour)
//   until it goes or the next slot is due; it never throws out of here.
// - One log line per send, per failure, per slot left to another host.
// - Slots missed while serve was not running are not sent late: a restart
//   would otherwise mail the same report twice.

import { afterOn, type Clock } from '../core/types.js';
import type { ReportSchedule } from './schedule.js';

export interface ScheduledReportJob {
  /** Take the slot for this host; false when another host sharing the store took it. */
  claim(slot: number): Promise<boolean>;
  /** Build the report of the period ending at `slot` and mail it; resolves with whom and the MTA's message id. */
  send(slot: number): Promise<{ to: string[]; messageId: string }>;
}

export interface SchedulerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ReportSchedulerOptions {
  schedule: ReportSchedule;
  job: ScheduledReportJob;
  clock: Clock;
  logger: SchedulerLogger;
  /** First retry after a failure (default 5 minutes), doubled each time up to maxRetryMs (default 1 hour). */
  retryMs?: number;
  maxRetryMs?: number;
}

/**
 * Longest single wait: the timer is re-armed at least this often, so a
 * wall clock set forward or back (NTP at boot) moves the send with it.
 */
const MAX_WAIT_MS = 5 * 60_000;

export class ReportScheduler {
  private cancel?: () => void;
  private stopped = false;
  private running?: Promise<void>;
  /** The slot being sent (claimed, not yet mailed), its next try and backoff. */
  private pending?: { slot: number; retryAt: number; delayMs: number; claimed: boolean };
  private due = 0;

  constructor(private readonly opts: ReportSchedulerOptions) {}

  /** The next time the report is due (epoch ms), for the ready line and tests. */
  get nextDue(): number {
    return this.pending?.retryAt ?? this.due;
  }

  start(): void {
    this.due = this.opts.schedule.next(this.opts.clock.now());
    this.arm();
  }

  /**
   * Stop the timer and give a send in progress up to `graceMs` (default 10 s)
   * to finish: serve closes the store next, and a stop must not wait out the
   * MTA's timeouts. A send cut short is logged as a failure.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([this.running, grace]);
    clearTimeout(timer);
  }

  /** Resolves when no send is in progress. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private arm(): void {
    if (this.stopped) return;
    const wait = Math.max(0, Math.min(this.nextDue - this.opts.clock.now(), MAX_WAIT_MS));
    this.cancel = afterOn(this.opts.clock, wait, () => this.wake());
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.opts.clock.now() < this.nextDue) {
      this.arm();
      return;
    }
    this.running = this.attempt().finally(() => {
      this.running = undefined;
      this.arm();
    });
  }

  private async attempt(): Promise<void> {
    const { job, clock, logger, schedule } = this.opts;
    const now = clock.now();
    const p = (this.pending ??= { slot: this.due, retryAt: this.due, delayMs: this.opts.retryMs ?? 300_000, claimed: false });
    const slot = new Date(p.slot).toISOString();
    // The next slot, computed from the one being sent: a retry never outlives it.
    this.due = schedule.next(Math.max(now, p.slot));
    try {
      if (!p.claimed) {
        p.claimed = await job.claim(p.slot);
        if (!p.claimed) {
          logger.info({ slot, next: new Date(this.due).toISOString() }, 'report: another host sharing the store mails this one');
          this.pending = undefined;
          return;
        }
      }
      const sent = await job.send(p.slot);
      logger.info({ slot, to: sent.to, messageId: sent.messageId, next: new Date(this.due).toISOString() }, `report mailed to ${sent.to.join(', ')}`);
      this.pending = undefined;
    } catch (err) {
      const retryAt = clock.now() + p.delayMs;
      const giveUp = retryAt >= this.due;
      logger.warn(
        { slot, err: (err as Error).message, retryAt: giveUp ? undefined : new Date(retryAt).toISOString(), next: new Date(this.due).toISOString() },
        giveUp ? 'report mail failed; not retried: the next report is due first' : 'report mail failed; retrying',
      );
      if (giveUp) {
        this.pending = undefined;
      } else {
        p.retryAt = retryAt;
        p.delayMs = Math.min(p.delayMs * 2, this.opts.maxRetryMs ?? 3_600_000);
      }
    }
  }
}
