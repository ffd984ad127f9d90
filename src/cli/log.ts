// `frontline log`: the decision log — every verdict the policy server and
// the gate acted on, newest first — queried by client IP, domain (sender's
// or a recipient's), time, rule and action.

import type { Command } from 'commander';
import { normaliseIp } from '../dns/reverse.js';
import type { DecisionEvent, EventQuery } from '../store/index.js';
import { InputError } from './input-error.js';
import { isoTime, parseSince } from './duration.js';
import { columns, positiveInt, printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface LogOptions extends StoreCommandOptions {
  ip?: string;
  domain?: string;
  /** `1h`, `2d` (ago) or an ISO date. */
  since?: string;
  until?: string;
  rule?: string;
  action?: string;
  wouldHave?: boolean;
  limit?: string;
}

/** The store query the flags describe. */
export function logQuery(opts: LogOptions, now: number): EventQuery {
  const q: EventQuery = {};
  if (opts.ip !== undefined) {
    try {
      q.ip = normaliseIp(opts.ip);
    } catch {
      throw new InputError(`--ip: ${JSON.stringify(opts.ip)} is not an IP address`);
    }
  }
  if (opts.domain !== undefined) q.domain = opts.domain.trim().toLowerCase().replace(/\.$/, '');
  if (opts.since !== undefined) q.since = parseSince(opts.since, now, '--since');
  if (opts.until !== undefined) q.until = parseSince(opts.until, now, '--until');
  if (opts.rule !== undefined) q.rule = opts.rule;
  if (opts.action !== undefined) q.action = opts.action;
  if (opts.wouldHave === true) q.wouldHave = true;
  q.limit = positiveInt(opts.limit, '--limit') ?? 100;
  return q;
}

function row(e: DecisionEvent): string[] {
  const reply = e.code !== undefined ? `${e.action} ${e.code}` : e.action;
  const from = e.from === undefined ? '' : e.from === '' ? '<>' : e.from;
  const score = e.score === undefined ? '' : String(e.score);
  return [isoTime(e.ts), e.clientIp, e.stage, reply, e.rule, score, wouldHaveText(e), from, e.rcpts.join(','), e.text ?? ''];
}

/** Test-mode findings, one `rule→action code` each: what the verdict would have been with those rules on. */
function wouldHaveText(e: DecisionEvent): string {
  return (e.wouldHave ?? []).map((w) => `${w.rule}→${w.action}${w.code !== undefined ? ` ${w.code}` : ''}`).join(', ');
}

export function log(opts: LogOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const events = await store.queryEvents(logQuery(opts, Date.now()));
    if (opts.json) printJson(io, events);
    else if (events.length === 0) io.stdout.write('no decisions match\n');
    else io.stdout.write(columns(['time', 'client', 'stage', 'action', 'rule', 'score', 'would have', 'from', 'rcpt', 'text'], events.map(row)));
    return 0;
  });
}

export function registerLogCommand(program: Command, fail: (e: unknown) => never): Command {
  return storeOptions(
    program
      .command('log')
      .description('the decision log, newest first')
      .option('--ip <ip>', 'client IP')
      .option('--domain <domain>', "sender's or a recipient's domain")
      .option('--since <time>', 'from this long ago (90s, 15m, 2h, 7d) or an ISO date')
      .option('--until <time>', 'up to this long ago or an ISO date')
      .option('--rule <name>', 'decided by this rule')
      .option('--action <action>', 'accept, reject, defer, tag, tarpit, continue')
      .option('--would-have', 'only decisions where a rule in test mode would have acted')
      .option('--limit <n>', 'at most this many (default 100, max 10000)'),
  ).action((opts: LogOptions) => runCommand(log(opts), fail));
}
