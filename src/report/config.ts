// The `report:` section of the config: whom the daily report is mailed to,
// through the local MTA, by `frontline report --mail` (from cron) or by
// `frontline serve` itself on `schedule` (docs/report.md).

import { z } from 'zod';
import { parseSchedule } from './schedule.js';

const address = z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, { message: 'expected an e-mail address' });

const schedule = z.string().superRefine((s, ctx) => {
  try {
    parseSchedule(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const reportSchema = z
  .strictObject({
    /** Recipients of the mailed report; empty = not mailed. */
    mail_to: z.array(address).default([]),
    /** The report's sender; null = frontline@<this host's name>. */
    mail_from: address.nullable().default(null),
    /** The period the report covers, e.g. 24h or 7d. */
    since: z.string().regex(/^\d+[smhdw]$/, { message: 'expected a duration like 24h or 7d' }).default('24h'),
    /** The local MTA the report is handed to (SMTP, no authentication). */
    smtp: z.string().min(1).default('127.0.0.1:25'),
    /** When `frontline serve` mails it: `daily 06:00`, `weekly mon 07:30` (local time, or `… UTC`); null = it does not. */
    schedule: schedule.nullable().default(null),
  })
  .superRefine((r, ctx) => {
    if (r.schedule !== null && r.mail_to.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['schedule'], message: 'a schedule needs report.mail_to: nobody to mail the report to' });
    }
  });

export type ReportConfig = z.output<typeof reportSchema>;
