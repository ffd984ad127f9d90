// `frontline stats`: decisions by outcome, refusals by vector, top rules,
// clients, sender domains and countries, bans by category and source — the
// numbers the dashboard shows, from the same query layer (src/report/).

import type { Command } from 'commander';
import { statsData, statsText, STATS_BY, type StatsBy } from '../report/stats.js';
import { InputError } from './input-error.js';
import { printable } from './terminal-text.js';
import { parseDuration } from './duration.js';
import { reportQueries } from './report-context.js';
import { positiveInt, printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface StatsCliOptions extends StoreCommandOptions {
  since?: string;
  by?: string;
  limit?: string;
}

export async function stats(opts: StatsCliOptions, io: CommandIo = processIo): Promise<number> {
  // Flags are checked before the store is opened: a typo changes nothing and opens nothing.
  let seconds: number;
  let limit: number;
  try {
    seconds = parseDuration(opts.since ?? '24h', '--since');
    if (opts.by !== undefined && !(STATS_BY as readonly string[]).includes(opts.by)) {
      throw new InputError(`--by: expected one of ${STATS_BY.join(', ')}, got ${JSON.stringify(opts.by)}`);
    }
    limit = positiveInt(opts.limit, '--limit') ?? 10;
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    io.stderr.write(`frontline: ${printable(e.message)}\n`);
    return 1;
  }
  const by = opts.by as StatsBy | undefined;
  return withStore(opts, io, async (store, config, io) => {
    const q = await reportQueries(store, config);
    const data = await statsData(q, q.last(seconds), { by, limit: Math.min(limit, 10_000) });
    if (opts.json) printJson(io, data);
    else io.stdout.write(statsText(data, { by }));
    return 0;
  });
}

export function registerStatsCommand(program: Command, fail: (e: unknown) => never): Command {
  return storeOptions(
    program
      .command('stats')
      .description('decisions by outcome, refusals by vector, top rules, clients, domains, countries; bans by category and source')
      .option('--since <duration>', 'this long ago until now (90s, 15m, 2h, 7d; default 24h)')
      .option('--by <what>', `one table in full: ${STATS_BY.join(', ')}`)
      .option('--limit <n>', 'rows per top list (default 10)'),
  ).action((opts: StatsCliOptions) => runCommand(stats(opts), fail));
}
