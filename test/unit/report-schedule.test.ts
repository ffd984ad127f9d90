// report.schedule: the schedule's forms and errors (named file:line:key by
// the config loader), the scheduler on a clock the test moves (one send per
// slot, a log line per send and per failure, retries that never outlive the
// next slot, a slot another host claimed), and the real job: the report
// built from a store and mailed to an SMTP server on loopback, once for
// two "hosts" sharing one store (SQLite file, and Redis).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSchedule } from '../../src/report/schedule.js';
import { ReportScheduler, type ScheduledReportJob } from '../../src/report/scheduler.js';
import { parseConfig } from '../../src/config/load.js';
import { scheduledReportJob, storePerCall } from '../../src/cli/report-schedule.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { TimerClock } from '../helpers/fake-clock.js';
import { captureLogger } from '../helpers/log-capture.js';
import { startSink } from '../helpers/smtp-sink.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { requireBinary } from '../helpers/binaries.js';

const utc = (s: string) => Date.parse(`${s}Z`);
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', '');

describe('report.schedule: the forms', () => {
  test('daily and weekly, with seconds, in UTC: the next time strictly after', () => {
    const daily = parseSchedule('daily 06:00 UTC');
    assert.equal(iso(daily.next(utc('2026-12-07T05:59:59'))), '2026-12-07T06:00:00');
    assert.equal(iso(daily.next(utc('2026-12-07T06:00:00'))), '2026-12-08T06:00:00', 'strictly after: not the same instant again');
    assert.equal(iso(daily.next(utc('2026-12-31T23:00:00'))), '2027-01-01T06:00:00');
    assert.equal(iso(parseSchedule('Daily 6:05:30 utc').next(utc('2026-12-07T06:05:00'))), '2026-12-07T06:05:30');
    // 2026-12-07 is a Monday.
    const weekly = parseSchedule('weekly mon 07:30 UTC');
    assert.equal(iso(weekly.next(utc('2026-12-07T07:00:00'))), '2026-12-07T07:30:00');
    assert.equal(iso(weekly.next(utc('2026-12-07T07:30:00'))), '2026-12-14T07:30:00');
    assert.equal(iso(parseSchedule('weekly Sunday 23:59 UTC').next(utc('2026-12-07T00:00:00'))), '2026-12-13T23:59:00');
  });

  test('local time as cron reads it: across the spring-forward gap and the fall-back repeat (TZ Europe/Berlin)', () => {
    const before = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      const s = parseSchedule('daily 02:30');
      // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist, the report comes at 03:30 CEST (01:30 UTC).
      assert.equal(iso(s.next(utc('2026-03-28T22:00:00'))), '2026-03-29T01:30:00');
      // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 is passed twice, the report comes once, the first time.
      const first = s.next(utc('2026-10-24T22:00:00'));
      assert.equal(iso(first), '2026-10-25T00:30:00');
      assert.equal(iso(s.next(first)), '2026-10-26T01:30:00');
      assert.equal(iso(parseSchedule('daily 06:00').next(utc('2026-12-07T04:00:00'))), '2026-12-07T05:00:00', 'CET is UTC+1');
    } finally {
      if (before === undefined) delete process.env.TZ;
      else process.env.TZ = before;
    }
  });

  test('anything else is refused with what to write; a cron line with its translation', () => {
    const bad: Array<[string, RegExp]> = [
      ['every day', /expected "daily HH:MM" or "weekly DAY HH:MM"/],
      ['daily', /expected "daily HH:MM"/],
      ['daily 24:00', /expected a time of day HH:MM/],
      ['daily 6', /expected a time of day/],
      ['daily 06:60', /expected a time of day/],
      ['weekly funday 06:00', /unknown day "funday"/],
      ['weekly 06:00', /expected "daily HH:MM" or "weekly DAY HH:MM"/],
      ['daily 06:00 CET', /expected "daily HH:MM"/],
      ['0 7 * * *', /cron syntax is not read here: write "daily 07:00"/],
      ['30 6 * * 1', /write "weekly mon 06:30"/],
      ['*/15 * * * *', /run `frontline report --mail` from cron/],
      ['daily 06:00' + ' '.repeat(100), /at most 64 characters/],
    ];
    for (const [text, why] of bad) assert.throws(() => parseSchedule(text), why, text);
  });

  test('in the config: errors name file:line:key; a schedule needs mail_to', () => {
    assert.equal(parseConfig('', 'x.yaml').report.schedule, null);
    const ok = parseConfig('report:\n  mail_to: [postmaster@example.org]\n  schedule: daily 06:00\n', 'x.yaml');
    assert.equal(ok.report.schedule, 'daily 06:00');
    assert.throws(() => parseConfig('report:\n  mail_to: [postmaster@example.org]\n  schedule: every morning\n', 'x.yaml'), /x\.yaml:3:13: report\.schedule: expected "daily HH:MM" or "weekly DAY HH:MM"/);
    assert.throws(() => parseConfig('report:\n  mail_to: [postmaster@example.org]\n  schedule: "0 6 * * *"\n', 'x.yaml'), /x\.yaml:3:\d+: report\.schedule: cron syntax is not read here: write "daily 06:00"/);
    assert.throws(() => parseConfig('report:\n  schedule: daily 06:00\n', 'x.yaml'), /x\.yaml:2:\d+: report\.schedule: a schedule needs report\.mail_to/);
    assert.throws(() => parseConfig('report:\n  mail_to: [postmaster@example.org]\n  schedule: 600\n', 'x.yaml'), /x\.yaml:3:\d+: report\.schedule: expected a string/);
  });
});

/** A job whose claims and sends the test scripts. */
function scriptedJob(sends: Array<'ok' | Error>, claims: boolean[] = []): ScheduledReportJob & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async claim(slot) {
      calls.push(`claim ${iso(slot)}`);
      return claims.shift() ?? true;
    },
    async send(slot) {
      calls.push(`send ${iso(slot)}`);
      const r = sends.shift() ?? 'ok';
      if (r instanceof Error) throw r;
      return { to: ['postmaster@example.org'], messageId: `<${slot}@mta>` };
    },
  };
}

function scheduler(job: ScheduledReportJob, clock: TimerClock, text = 'daily 06:00 UTC') {
  const log = captureLogger('info');
  const s = new ReportScheduler({ schedule: parseSchedule(text), job, clock, logger: log.logger });
  return { s, log, msgs: () => log.lines.map((l) => `${l.msg}${l.slot ? ` ${String(l.slot)}` : ''}`) };
}

describe('the scheduler, on a clock the test moves', () => {
  test('sends once at each slot, one log line per send, nothing before', async () => {
    const clock = new TimerClock(utc('2026-12-07T05:00:00'));
    const job = scriptedJob([]);
    const { s, log, msgs } = scheduler(job, clock);
    s.start();
    assert.equal(iso(s.nextDue), '2026-12-07T06:00:00');
    await clock.advanceTo(utc('2026-12-07T05:59:59'));
    assert.deepEqual(job.calls, [], 'nothing before the time');
    await clock.advance(1000);
    await s.settled();
    assert.deepEqual(job.calls, ['claim 2026-12-07T06:00:00', 'send 2026-12-07T06:00:00']);
    assert.deepEqual(msgs(), ['report mailed to postmaster@example.org 2026-12-07T06:00:00.000Z']);
    assert.equal(log.lines[0].messageId, `<${utc('2026-12-07T06:00:00')}@mta>`);
    assert.equal(log.lines[0].next, '2026-12-08T06:00:00.000Z');
    await clock.advanceTo(utc('2026-12-09T07:00:00'));
    await s.settled();
    assert.deepEqual((job.calls as string[]).filter((c) => c.startsWith('send')), ['send 2026-12-07T06:00:00', 'send 2026-12-08T06:00:00', 'send 2026-12-09T06:00:00']);
    assert.equal(log.lines.length, 3);
    await s.stop();
    await clock.advanceTo(utc('2026-12-11T07:00:00'));
    assert.equal(job.calls.length, 6, 'nothing after stop');
    assert.equal(clock.pending, 0);
  });

  test('a failed send is logged and retried (5, 10, 20 min…), never thrown; the slot is claimed once', async () => {
    const clock = new TimerClock(utc('2026-12-07T05:00:00'));
    const job = scriptedJob([new Error('connect ECONNREFUSED 127.0.0.1:25'), new Error('421 4.3.2 shutting down'), 'ok']);
    const { s, log, msgs } = scheduler(job, clock);
    s.start();
    await clock.advanceTo(utc('2026-12-07T06:00:00'));
    await s.settled();
    assert.deepEqual(msgs(), ['report mail failed; retrying 2026-12-07T06:00:00.000Z']);
    assert.equal(log.lines[0].err, 'connect ECONNREFUSED 127.0.0.1:25');
    assert.equal(log.lines[0].retryAt, '2026-12-07T06:05:00.000Z');
    assert.equal(log.lines[0].level, 40, 'a warning');
    await clock.advanceTo(utc('2026-12-07T06:04:59'));
    assert.equal(job.calls.length, 2, 'no retry before its time');
    await clock.advanceTo(utc('2026-12-07T06:05:00'));
    await s.settled();
    assert.equal(log.lines[1].retryAt, '2026-12-07T06:15:00.000Z', 'the wait doubles');
    await clock.advanceTo(utc('2026-12-07T06:15:00'));
    await s.settled();
    assert.deepEqual(job.calls, ['claim 2026-12-07T06:00:00', 'send 2026-12-07T06:00:00', 'send 2026-12-07T06:00:00', 'send 2026-12-07T06:00:00']);
    assert.deepEqual(msgs().slice(2), ['report mailed to postmaster@example.org 2026-12-07T06:00:00.000Z']);
    assert.equal(iso(s.nextDue), '2026-12-08T06:00:00');
    await s.stop();
  });

  test('retries stop when the next slot is due: that report is the next one', async () => {
    const clock = new TimerClock(utc('2026-12-07T05:00:00'));
    const down = new Error('connect ECONNREFUSED 127.0.0.1:25');
    const job = scriptedJob(Array.from({ length: 40 }, () => down));
    const { s, log } = scheduler(job, clock);
    s.start();
    await clock.advanceTo(utc('2026-12-08T06:00:00'));
    await s.settled();
    const forFirst = log.lines.filter((l) => l.slot === '2026-12-07T06:00:00.000Z');
    // At 06:00, then 5, 10, 20, 40 min later, then hourly: 07:15 … 05:15 the next day, the last try.
    const retries = forFirst.map((l) => String(l.retryAt ?? '').slice(11, 16));
    assert.deepEqual(retries.slice(0, 6), ['06:05', '06:15', '06:35', '07:15', '08:15', '09:15']);
    assert.deepEqual(retries.slice(-2), ['05:15', '']);
    assert.equal(forFirst.length, 1 + 4 + 22);
    assert.equal(forFirst.at(-1)!.msg, 'report mail failed; not retried: the next report is due first');
    assert.ok(log.lines.every((l) => l.level === 40), 'every failure a warning, one line each');
    assert.ok(job.calls.includes('claim 2026-12-08T06:00:00'), 'the next slot is tried in its turn');
    await s.stop();
  });

  test('a slot another host claimed is left to it, with one line; a claim that fails is retried', async () => {
    const clock = new TimerClock(utc('2026-12-07T05:00:00'));
    const job = scriptedJob([], [false]);
    const { s, msgs } = scheduler(job, clock);
    s.start();
    await clock.advanceTo(utc('2026-12-07T06:00:00'));
    await s.settled();
    assert.deepEqual(job.calls, ['claim 2026-12-07T06:00:00']);
    assert.deepEqual(msgs(), ['report: another host sharing the store mails this one 2026-12-07T06:00:00.000Z']);
    await s.stop();

    const job2 = scriptedJob([]);
    job2.claim = async () => {
      job2.calls.push('claim');
      if (job2.calls.length === 1) throw new Error('store: redis unreachable');
      return true;
    };
    const t2 = scheduler(job2, clock);
    t2.s.start();
    await clock.advanceTo(utc('2026-12-08T06:05:00'));
    await t2.s.settled();
    assert.deepEqual(job2.calls, ['claim', 'claim', 'send 2026-12-08T06:00:00']);
    assert.deepEqual(t2.msgs(), ['report mail failed; retrying 2026-12-08T06:00:00.000Z', 'report mailed to postmaster@example.org 2026-12-08T06:00:00.000Z']);
    await t2.s.stop();
  });

  test('a send still running when the next timer is due is not started twice', async () => {
    const clock = new TimerClock(utc('2026-12-07T05:00:00'));
    let release!: () => void;
    const job = scriptedJob([]);
    const send = job.send.bind(job);
    job.send = async (slot) => {
      await new Promise<void>((r) => (release = r));
      return send(slot);
    };
    const { s } = scheduler(job, clock);
    s.start();
    await clock.advanceTo(utc('2026-12-07T06:30:00'));
    assert.equal(clock.pending, 0, 'no timer while a send runs');
    release();
    await s.settled();
    assert.deepEqual(job.calls, ['claim 2026-12-07T06:00:00', 'send 2026-12-07T06:00:00']);
    assert.equal(clock.pending, 1);
    await s.stop();
  });

  test('stop gives a send in progress a grace period, not the MTA\'s timeouts', async () => {
    const clock = new TimerClock(utc('2026-12-07T05:00:00'));
    const job = scriptedJob([]);
    job.send = () => new Promise(() => undefined);
    const { s } = scheduler(job, clock);
    s.start();
    await clock.advanceTo(utc('2026-12-07T06:00:00'));
    const t0 = Date.now();
    await s.stop(200);
    assert.ok(Date.now() - t0 < 5_000, 'stop returned');
    assert.equal(clock.pending, 0, 'no timer after stop');
  });
});

describe('the job: the report from the store, mailed over SMTP', () => {
  const configFor = (dir: string, smtpPort: number, store = '') =>
    parseConfig(`data_dir: ${dir}\n${store}report:\n  mail_to: [postmaster@dest.test]\n  mail_from: frontline@mx.dest.test\n  smtp: 127.0.0.1:${smtpPort}\n  schedule: daily 06:00 UTC\n  since: 24h\n`, 'x.yaml');

  /** Two hosts (two schedulers, each with its own store handle) due at the same slot; the sink counts the mail. */
  async function twoHosts(t: { after: (fn: () => unknown) => void }, store: string) {
    const sink = await startSink({ relay: false });
    t.after(() => sink.close());
    const dir = mkdtempSync(join(tmpdir(), 'fl-report-schedule-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const config = configFor(dir, sink.port, store);
    const slot = utc('2026-12-07T06:00:00');
    // A decision inside the window the report covers (the 24 h before the slot).
    const seed = await openConfiguredStore(config);
    await seed.logEvent({ ts: slot - 3_600_000, clientIp: '203.0.113.9', from: 'x@spam.example', rcpts: ['u@dest.test'], stage: 'rcpt', action: 'reject', rule: 'dnsbl', evidence: [] });
    await seed.close();
    const clock = new TimerClock(slot - 60_000);
    const hosts = [captureLogger('info'), captureLogger('info')].map((log) => {
      const s = new ReportScheduler({ schedule: parseSchedule(config.report.schedule!), job: scheduledReportJob(config, storePerCall(config, log.logger)), clock, logger: log.logger });
      s.start();
      return { s, log };
    });
    await clock.advanceTo(slot);
    for (const h of hosts) await h.s.settled();
    const lines = hosts.flatMap((h) => h.log.lines.filter((l) => l.room === undefined || l.room !== 'store').map((l) => l.msg));
    for (const h of hosts) await h.s.stop();
    return { sink, lines };
  }

  test('SQLite: the report of the 24 h before the slot reaches the MTA, once for two schedulers on one store', async (t) => {
    const { sink, lines } = await twoHosts(t, '');
    assert.equal(sink.messages.length, 1, lines.join('\n'));
    const text = sink.messages[0].data.toString('utf8');
    assert.deepEqual(sink.messages[0].rcpts, ['postmaster@dest.test']);
    assert.match(text, /^Subject: frontline report for .*: 1 refused, 0 accepted/m);
    assert.match(text, /^Auto-Submitted: auto-generated/m);
    assert.deepEqual(lines.sort(), ['report mailed to postmaster@dest.test', 'report: another host sharing the store mails this one']);
  });

  test('Redis: two hosts sharing the store mail it once', { skip: requireBinary('redis-server') ? undefined : 'redis-server not installed' }, async (t) => {
    const redis = (await startRedis()) as PrivateRedis;
    t.after(() => redis.close());
    const { sink, lines } = await twoHosts(t, `store:\n  backend: redis\n  redis:\n    url: ${redis.url}\n`);
    assert.equal(sink.messages.length, 1, lines.join('\n'));
    assert.match(sink.messages[0].data.toString('utf8'), /^Subject: frontline report for .*: 1 refused/m);
    assert.deepEqual(lines.sort(), ['report mailed to postmaster@dest.test', 'report: another host sharing the store mails this one']);
  });
});
