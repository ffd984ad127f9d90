// Periodic jobs (SPF walks, list imports). The decision "what is due now" is
// a pure function of an injected clock, so tests step time instead of
// sleeping; `startSchedule` is the thin timer loop that `serve` runs.

import type { Clock } from '../core/types.js';

export interface ScheduledJob {
  name: string;
  intervalMs: number;
  run(): Promise<void>;
}

/** When each job last ran and is next due. A job is due at once when first seen. */
export class IntervalSchedule {
  private readonly next = new Map<string, number>();

  constructor(readonly jobs: ScheduledJob[]) {
    for (const j of jobs) {
      if (!(j.intervalMs > 0)) throw new Error(`job ${j.name}: interval must be positive, got ${j.intervalMs}`);
    }
  }

  /** Jobs due at `now`, in the order given. */
  due(now: number): ScheduledJob[] {
    return this.jobs.filter((j) => (this.next.get(j.name) ?? -Infinity) <= now);
  }

  /** Record that `job` started at `now`: it is due again one interval later. */
  started(job: ScheduledJob, now: number): void {
    this.next.set(job.name, now + job.intervalMs);
  }

  /** Milliseconds from `now` until the next job is due (0 if one is due). */
  waitMs(now: number): number {
    let soonest = Infinity;
    for (const j of this.jobs) soonest = Math.min(soonest, this.next.get(j.name) ?? -Infinity);
    return Math.max(0, soonest - now);
  }
}

export interface RunningSchedule {
  /** Stop the timer and wait for running jobs to finish. */
  stop(): Promise<void>;
}

export interface StartScheduleOptions {
  clock: Clock;
  /** Told when a job throws (the schedule keeps going). */
  onError?: (job: ScheduledJob, e: unknown) => void;
  /** Longest sleep between checks, so a changed clock is noticed. Default 60 s. */
  maxSleepMs?: number;
}

/**
 * Run jobs on their intervals: each at once, then every interval after it
 * started. A job still running when it falls due again is not started twice.
 */
export function startSchedule(jobs: ScheduledJob[], opts: StartScheduleOptions): RunningSchedule {
  const schedule = new IntervalSchedule(jobs);
  const running = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const tick = (): void => {
    if (stopped) return;
    const now = opts.clock.now();
    for (const job of schedule.due(now)) {
      if (running.has(job.name)) continue;
      schedule.started(job, now);
      const p = job
        .run()
        .catch((e) => opts.onError?.(job, e))
        .finally(() => running.delete(job.name));
      running.set(job.name, p);
    }
    const wait = Math.min(schedule.waitMs(opts.clock.now()), opts.maxSleepMs ?? 60_000);
    timer = setTimeout(tick, Math.max(wait, 10));
    timer.unref();
  };
  tick();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await Promise.all(running.values());
    },
  };
}
