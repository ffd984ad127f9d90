// The `report:` section of the config: whom `frontline report --mail` (run
// from cron) mails the daily report to, through the local MTA (docs/report.md).

import { z } from 'zod';

const address = z.string().regex(/^[^\s@<>]+@[^\s@<>]+$/, { message: 'expected an e-mail address' });

export const reportSchema = z.strictObject({
  /** Recipients of the mailed report; empty = not mailed. */
  mail_to: z.array(address).default([]),
  /** The report's sender; null = frontline@<this host's name>. */
  mail_from: address.nullable().default(null),
  /** The period the report covers, e.g. 24h or 7d. */
  since: z.string().regex(/^\d+[smhdw]$/, { message: 'expected a duration like 24h or 7d' }).default('24h'),
  /** The local MTA the report is handed to (SMTP, no authentication). */
  smtp: z.string().min(1).default('127.0.0.1:25'),
});

export type ReportConfig = z.output<typeof reportSchema>;
