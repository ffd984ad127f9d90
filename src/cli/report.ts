// `frontline report`: the daily report (src/report/daily.ts) as text, HTML or
// JSON on stdout, or `--mail` to `report.mail_to` through the local MTA.

import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Config } from '../config/load.js';
import { buildDailyReport, type DailyReport } from '../report/daily.js';
import { formatReport, REPORT_FORMATS, type ReportFormat } from '../report/daily-format.js';
import { mailReport } from '../report/mail.js';
import type { Store } from '../store/types.js';
import { InputError } from './input-error.js';
import { parseDuration } from './duration.js';
import { reportQueries, ruleChecksOf } from './report-context.js';
import { processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';
import { printable } from './terminal-text.js';

export interface ReportCliOptions extends StoreCommandOptions {
  since?: string;
  format?: string;
  mail?: boolean;
}

/** The report over the `seconds` before `until` (default now), from the configured store. */
export async function dailyReport(store: Store, config: Config, seconds: number, until?: number): Promise<DailyReport> {
  const q = await reportQueries(store, config);
  const w = until === undefined ? q.last(seconds) : { since: until - seconds * 1000, until };
  return buildDailyReport(w, { store, queries: q, ruleChecks: ruleChecksOf(config) });
}

/** Mail a report as `report:` says (mail_to, mail_from, smtp). */
export async function mailDailyReport(r: DailyReport, config: Config): Promise<string> {
  const [host, port] = splitHostPort(config.report.smtp);
  const me = hostname();
  return mailReport(r, { to: config.report.mail_to, from: config.report.mail_from ?? `frontline@${me}`, host, port, hostname: me });
}

function splitHostPort(text: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new InputError(`report.smtp: expected host:port, got ${JSON.stringify(text)}`);
  return [m[1], Number(m[2] ?? 25)];
}

export async function report(opts: ReportCliOptions, io: CommandIo = processIo): Promise<number> {
  let seconds: number | undefined;
  let format: ReportFormat;
  try {
    if (opts.since !== undefined) seconds = parseDuration(opts.since, '--since');
    format = (opts.json ? 'json' : (opts.format ?? 'text')) as ReportFormat;
    if (!REPORT_FORMATS.includes(format)) throw new InputError(`--format: expected text, html or json, got ${JSON.stringify(opts.format)}`);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    io.stderr.write(`frontline: ${printable(e.message)}\n`);
    return 1;
  }
  return withStore(opts, io, async (store, config, io) => {
    const r = await dailyReport(store, config, seconds ?? parseDuration(config.report.since, 'report.since'));
    if (!opts.mail) {
      io.stdout.write(formatReport(r, format, hostname()));
      return 0;
    }
    if (config.report.mail_to.length === 0) throw new InputError('--mail: report.mail_to is empty in the config: nobody to mail the report to');
    const id = await mailDailyReport(r, config);
    io.stdout.write(`report mailed to ${config.report.mail_to.join(', ')} (${id})\n`);
    return 0;
  });
}

export function registerReportCommand(program: Command, fail: (e: unknown) => never): Command {
  return storeOptions(
    program
      .command('report')
      .description('the daily report: new bans, repeat offenders, top refused, test-mode rules, zones out of use, false positive candidates')
      .option('--since <duration>', 'the period (default report.since, 24h)')
      .option('--format <format>', 'text, html or json (default text)')
      .option('--mail', 'mail it to report.mail_to through the local MTA (report.smtp) instead of printing it'),
  ).action((opts: ReportCliOptions) => runCommand(report(opts), fail));
}
