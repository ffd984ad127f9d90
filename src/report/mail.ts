// Mailing the report through the local MTA (nodemailer over SMTP, by
// default to 127.0.0.1:25 without authentication: the MTA on this host
// relays it as it relays any local mail).

import nodemailer from 'nodemailer';
import type { DailyReport } from './daily.js';
import { reportHtml, reportSubject, reportText } from './daily-format.js';

export interface ReportMailOptions {
  to: string[];
  from: string;
  /** The MTA: host and port (default 127.0.0.1:25). */
  host?: string;
  port?: number;
  /** Name of this host in the subject and the text. */
  hostname: string;
}

/** Send the report as one message with a text and an HTML part; resolves with the MTA's message id. */
export async function mailReport(r: DailyReport, opts: ReportMailOptions): Promise<string> {
  const transport = nodemailer.createTransport({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 25,
    secure: false,
    // The local MTA: STARTTLS when it offers it, but a self-signed certificate is no reason not to deliver.
    tls: { rejectUnauthorized: false },
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 60_000,
  });
  try {
    const info = await transport.sendMail({
      from: opts.from,
      to: opts.to,
      subject: reportSubject(r, opts.hostname),
      text: reportText(r, opts.hostname),
      html: reportHtml(r, opts.hostname),
      headers: { 'Auto-Submitted': 'auto-generated' },
    });
    return String(info.messageId);
  } finally {
    transport.close();
  }
}
