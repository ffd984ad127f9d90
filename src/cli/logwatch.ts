// `frontline logwatch`: follow the logs of the config's `logwatch.sources` and
// ban, or — with `--from-start FILE --dry-run` — replay an old log and print
// what would have been banned and why (one line per ban, or JSON lines).
//
// The ban sink (the store) is handed in by whoever registers the command, so
// this file knows no store: without one, only dry runs are possible.

import { createReadStream, readFileSync, statSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Command, Option } from 'commander';
import { parseDocument } from 'yaml';
import { ConfigError, loadConfig } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { createLogger, type Logger } from '../log.js';
import {
  FORMAT_NAMES,
  describeDecision,
  logWatchOptionsFromConfig,
  logwatchSchema,
  replay,
  resolveScenarios,
  startLogWatch,
  type BanSink,
  type Decision,
  type LogWatch,
  type LogwatchConfig,
} from '../intel/logwatch/index.js';
import { streamLines } from '../intel/logwatch/stream.js';

export interface LogwatchCliOptions {
  config?: string;
  fromStart?: string;
  dryRun?: boolean;
  format?: string;
  json?: boolean;
}

export interface LogwatchIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

export interface LogwatchCliDeps {
  /** Opens what bans (the store) for live runs and replays that are not dry runs. */
  openSink?: (configFile: string | undefined) => Promise<{ sink: BanSink; close(): Promise<void> }>;
  logger?: Logger;
}

/** A mistake in how the command was called (printed without a stack trace). */
export class LogwatchUsageError extends Error {}

function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/frontline' : './data';
}

/**
 * The `logwatch:` section and data_dir of a config file (no file: defaults).
 * Once the main schema has a `logwatch` key the whole file is validated by
 * loadConfig; until then the section is read and validated on its own.
 */
export function loadLogwatchConfig(file?: string): { logwatch: LogwatchConfig; dataDir: string } {
  if ('logwatch' in configSchema.shape) {
    const cfg = loadConfig(file) as unknown as { logwatch: LogwatchConfig; data_dir: string };
    return { logwatch: cfg.logwatch, dataDir: cfg.data_dir };
  }
  if (file === undefined) return { logwatch: logwatchSchema.parse({}), dataDir: defaultDataDir() };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read: ${(e as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `${file}: YAML syntax: ${e.message.split('\n')[0]}`));
  const raw = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  const result = logwatchSchema.safeParse(raw.logwatch ?? {});
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${file}: ${['logwatch', ...i.path.map(String)].join('.')}: ${i.message}`));
  }
  return { logwatch: result.data, dataDir: typeof raw.data_dir === 'string' ? raw.data_dir : defaultDataDir() };
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : '';
}

export function formatDecision(d: Decision, json: boolean): string {
  if (json) {
    return JSON.stringify({
      ip: d.ip,
      cidr: d.cidr,
      category: d.category,
      scenario: d.scenario,
      count: d.count,
      firstLine: d.firstLine,
      lastLine: d.lastLine,
      firstTime: iso(d.firstTime),
      lastTime: iso(d.lastTime),
      kinds: d.kinds,
      reason: describeDecision(d),
    });
  }
  return `${d.ip} category=${d.category} scenario=${d.scenario} count=${d.count} lines=${d.firstLine}-${d.lastLine} first=${iso(d.firstTime)} last=${iso(d.lastTime)} kinds=${d.kinds.join(',')}`;
}

/** `--from-start FILE`: replay it; prints one line per ban; returns the exit code. */
export async function replayCommand(opts: LogwatchCliOptions, io: LogwatchIo, deps: LogwatchCliDeps = {}): Promise<number> {
  const file = opts.fromStart!;
  const { logwatch: cfg } = loadLogwatchConfig(opts.config);
  const format = opts.format ?? 'auto';
  if (!(FORMAT_NAMES as readonly string[]).includes(format) && !cfg.patterns.some((p) => p.name === format)) {
    throw new LogwatchUsageError(`--format: unknown format ${JSON.stringify(format)} (expected ${FORMAT_NAMES.join(', ')} or a pattern name from the config)`);
  }
  let opened: Awaited<ReturnType<NonNullable<LogwatchCliDeps['openSink']>>> | undefined;
  if (!opts.dryRun) {
    if (!deps.openSink) throw new LogwatchUsageError('no store to ban into from this command: add --dry-run to see what would be banned');
    opened = await deps.openSink(opts.config);
  }
  let input: Readable;
  let reference = Date.now();
  if (file === '-') input = io.stdin;
  else {
    try {
      reference = statSync(file).mtimeMs;
    } catch (e) {
      throw new LogwatchUsageError(`--from-start: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    input = createReadStream(file, { highWaterMark: 1 << 20 });
  }
  const stats = { lines: 0, events: 0 };
  try {
    const decisions = await replay(streamLines(input, cfg.max_line_bytes), {
      format,
      scenarios: resolveScenarios(cfg.scenarios),
      patterns: cfg.patterns,
      maxLineBytes: cfg.max_line_bytes,
      maxTracked: cfg.max_tracked,
      ipv6Prefix: cfg.ipv6_prefix,
      ignore: cfg.ignore,
      // Year-less syslog stamps belong to the year that puts them before the file's last change.
      clock: { now: () => reference },
      source: file === '-' ? 'stdin' : file,
      stats,
    });
    for (const d of decisions) {
      io.stdout.write(`${formatDecision(d, opts.json === true)}\n`);
      if (opened) await opened.sink.ban({ cidr: d.cidr, reason: describeDecision(d), category: d.category, source: `log:${d.source}` });
    }
    const what = opts.dryRun ? 'would be banned (dry run: nothing banned)' : 'banned';
    io.stderr.write(`frontline logwatch: ${stats.lines} lines, ${stats.events} events, ${decisions.length} ${what}\n`);
  } finally {
    await opened?.close();
  }
  return 0;
}

/** Follow the configured sources until stopped. With --dry-run, print bans instead of making them (offsets are not saved). */
export async function followCommand(opts: LogwatchCliOptions, io: LogwatchIo, deps: LogwatchCliDeps = {}): Promise<{ watch: LogWatch; close(): Promise<void> }> {
  const { logwatch: cfg, dataDir } = loadLogwatchConfig(opts.config);
  if (cfg.sources.length === 0) throw new LogwatchUsageError('no logwatch.sources in the config: nothing to watch');
  const logger = deps.logger ?? createLogger({ stream: 'stderr', name: 'logwatch' });
  let sink: BanSink;
  let close = async () => undefined as void;
  if (opts.dryRun) {
    sink = { ban: async () => ({ refused: false }) };
  } else {
    if (!deps.openSink) throw new LogwatchUsageError('no store to ban into from this command: add --dry-run to print what would be banned');
    const opened = await deps.openSink(opts.config);
    sink = opened.sink;
    close = opened.close;
  }
  const base = logWatchOptionsFromConfig(cfg, dataDir);
  const watch = await startLogWatch({
    ...base,
    ...(opts.dryRun ? { stateFile: undefined, startAt: 'end' as const } : {}),
    sink,
    logger,
    stdin: io.stdin,
    onDecision: opts.dryRun ? (d) => io.stdout.write(`${formatDecision(d, opts.json === true)}\n`) : undefined,
  });
  return {
    watch,
    close: async () => {
      await watch.stop();
      await close();
    },
  };
}

function report(e: unknown, stderr: Writable): void {
  if (e instanceof ConfigError) stderr.write(`frontline: configuration error:\n${e.problems.map((p) => `  ${p}`).join('\n')}\n`);
  else if (e instanceof LogwatchUsageError) stderr.write(`frontline: ${e.message}\n`);
  else stderr.write(`frontline: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
}

/** Adds `frontline logwatch` to the program. */
export function registerLogwatchCommand(program: Command, deps: LogwatchCliDeps = {}): Command {
  return program
    .command('logwatch')
    .description('watch logs (sshd, Postfix, Dovecot, nginx, Apache, custom patterns) and ban attackers; --from-start FILE --dry-run replays an old log')
    .option('-c, --config <file>', 'YAML config file (its logwatch: section)')
    .option('--from-start <file>', "replay FILE from its first line ('-' = standard input) instead of following the configured sources")
    .option('--dry-run', 'print what would be banned and why; ban nothing')
    .addOption(new Option('--format <format>', 'log format of --from-start FILE (or a pattern name from the config)').default('auto'))
    .option('--json', 'print one JSON object per ban')
    .action(async (opts: LogwatchCliOptions) => {
      const io: LogwatchIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
      try {
        if (opts.fromStart !== undefined) {
          process.exitCode = await replayCommand(opts, io, deps);
          return;
        }
        const running = await followCommand(opts, io, deps);
        const stop = (signal: string) => {
          io.stderr.write(`frontline logwatch: ${signal}, stopping\n`);
          running.close().then(
            () => process.exit(0),
            (e) => {
              report(e, io.stderr);
              process.exit(1);
            },
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      } catch (e) {
        report(e, io.stderr);
        process.exitCode = 1;
      }
    });
}
