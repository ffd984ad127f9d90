// `frontline replay --config new.yaml`: the logged decisions re-evaluated
// under a proposed policy (src/report/replay.ts), and what would change.

import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createResolver, type CachedResolver } from '../dns/index.js';
import { replayDecisions, type ReplayExample, type ReplayOutcome, type ReplayReport } from '../report/replay.js';
import { InputError } from './input-error.js';
import { isoTime, parseSince } from './duration.js';
import { columns, positiveInt, printJson, processIo, runCommand, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface ReplayCliOptions extends StoreCommandOptions {
  /** The configuration in force (its check settings tell stale evidence). */
  current?: string;
  since?: string;
  until?: string;
  limit?: string;
  examples?: string;
  liveDns?: boolean;
}

function outcome(o: ReplayOutcome): string {
  return `${o.action}${o.code !== undefined ? ` ${o.code}` : ''} (${o.rule})`;
}

function who(x: ReplayExample): string {
  const from = x.from === undefined ? '' : x.from === '' ? ' <>' : ` ${x.from}`;
  const rcpt = x.rcpts.length > 0 ? ` → ${x.rcpts.join(',')}` : '';
  return `${isoTime(x.ts)} ${x.clientIp}${x.clientPtr ? ` [${x.clientPtr}]` : ''}${from}${rcpt}`;
}

/** The report as text: the totals, then one table per part. Every cell goes through columns(), which escapes it. */
export function replayText(r: ReplayReport): string {
  const out: string[] = [];
  const window = `${r.since !== undefined ? isoTime(r.since) : 'the start of the log'} to ${r.until !== undefined ? isoTime(r.until) : 'now'}`;
  out.push(
    columns(
      ['decisions', 'count'],
      [
        ['replayed', String(r.replayed)],
        ['unchanged', String(r.unchanged)],
        ['same action, other rule or code', String(r.otherRule)],
        ['changed', String(r.changed)],
        ['not reproducible', String(r.notReproducible)],
        ['logged before replay data was kept', String(r.oldRecords)],
      ],
    ),
  );
  const notes = [`window: ${window}${r.limited ? ' (limit reached: older decisions not replayed)' : ''}`, `DNS: ${r.liveDns ? 'live queries for evidence not logged' : 'logged evidence only'}`];
  for (const s of r.skippedRules) notes.push(`rule ${s.rule} skipped: ${s.reason}`);
  for (const w of r.warnings) notes.push(`warning: ${w}`);
  out.push(columns(['note'], notes.map((n) => [n])));
  if (r.changes.length > 0) {
    out.push(columns(['count', 'was', 'would be', 'examples'], r.changes.map((c) => [String(c.count), outcome(c.from), outcome(c.to), c.examples.map(who).join('; ')])));
    out.push(columns(['rule', 'changed'], r.byRule.map((b) => [b.rule, String(b.count)])));
  } else {
    out.push('no decision changes\n');
  }
  if (r.unreproducible.length > 0) {
    out.push(columns(['not reproducible', 'count', 'examples'], r.unreproducible.map((u) => [u.reason, String(u.count), u.examples.map(who).join('; ')])));
  }
  return out.join('\n');
}

export async function replay(opts: ReplayCliOptions, io: CommandIo = processIo): Promise<number> {
  if (opts.config === undefined) throw new InputError('replay: --config FILE (the proposed policy) is required');
  // Both files are checked before the store is opened: a bad one names file:line:key and changes nothing.
  const current = opts.current === undefined ? undefined : loadConfig(opts.current);
  const now = Date.now();
  const since = parseSince(opts.since ?? '7d', now, '--since');
  const until = opts.until === undefined ? undefined : parseSince(opts.until, now, '--until');
  const limit = positiveInt(opts.limit, '--limit');
  const examples = positiveInt(opts.examples, '--examples');
  return await withStore(opts, io, async (store, proposed, io) => {
    let resolver: CachedResolver | undefined;
    try {
      if (opts.liveDns === true) {
        const dns = proposed.dns;
        resolver = createResolver({ servers: dns.servers, timeoutMs: dns.timeout_ms, retries: dns.retries, cache: { minTtl: dns.cache.min_ttl, maxTtl: dns.cache.max_ttl, negativeTtl: dns.cache.negative_ttl, maxEntries: dns.cache.max_entries } });
      }
      const report = await replayDecisions({ store, proposed, current, since, until, limit, examples, liveResolver: resolver });
      if (opts.json) printJson(io, report);
      else io.stdout.write(replayText(report));
      return 0;
    } finally {
      resolver?.close();
    }
  });
}

export function registerReplayCommand(program: Command, fail: (e: unknown) => never): Command {
  return program
    .command('replay')
    .description('re-evaluate logged decisions under a proposed policy and show what would change')
    .requiredOption('-c, --config <file>', 'the proposed config (YAML; its store section names the log to replay)')
    .option('--current <file>', 'the config in force: checks whose settings differ do not reuse logged evidence')
    .option('--data-dir <dir>', 'state directory (as serve --data-dir)')
    .option('--since <time>', 'decisions from this long ago (90s, 15m, 2h, 7d) or an ISO date (default 7d)')
    .option('--until <time>', 'up to this long ago or an ISO date')
    .option('--limit <n>', 'at most this many decisions, the newest (default 100000, max 1000000)')
    .option('--examples <n>', 'example senders and clients per line (default 5)')
    .option('--live-dns', 'query DNS for evidence the log lacks (else such decisions are reported as not reproducible)')
    .option('--json', 'print JSON')
    .action((opts: ReplayCliOptions) => runCommand(replay(opts), fail));
}
