// Log watching: follow log files, standard input and the journal; find
// events with each source's format; count them in scenarios; send the bans
// to a sink (the store). `replay` runs old lines through the same formats and
// scenarios in log time and returns what would have been banned (dry runs).

import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { systemClock, type Clock } from '../../core/types.js';
import type { Logger } from '../../log.js';
import { resolveScenarios, type LogwatchConfig, type PatternConfig, type SourceConfig } from './config.js';
import type { CustomPatternSpec } from './formats/custom.js';
import { localInterfaceAddresses } from '../../store/own-addresses.js';
import { IgnoreList } from './ip.js';
import { JournalSource } from './journal.js';
import { cutText, type LogLine } from './line.js';
import { Pipeline } from './pipeline.js';
import { ScenarioEngine, type Decision, type Scenario } from './scenarios.js';
import { refusal, type BanRequest, type BanSink } from './sink.js';
import { OffsetStore } from './state.js';
import { readStreamLines } from './stream.js';
import { FileTail } from './tail.js';

export type { BanRequest, BanSink } from './sink.js';
export type { Decision, Scenario } from './scenarios.js';
export type { LogLine } from './line.js';
export { logwatchSchema, resolveScenarios, defaultLogwatchConfig, type LogwatchConfig, type SourceConfig } from './config.js';
export { DEFAULT_SCENARIOS } from './defaults.js';
export { FORMAT_NAMES } from './formats/index.js';

const DEFAULT_IGNORE = ['127.0.0.0/8', '::1/128'];

export interface LogWatchOptions {
  sources: readonly SourceConfig[];
  /** Scenarios in force (default: the default set). */
  scenarios?: readonly Scenario[];
  patterns?: readonly CustomPatternSpec[];
  sink: BanSink;
  clock?: Clock;
  logger: Logger;
  /** Offsets and journal cursors; undefined = kept in memory only. */
  stateFile?: string;
  pollIntervalMs?: number;
  maxLineBytes?: number;
  maxTracked?: number;
  ipv6Prefix?: number;
  startAt?: 'end' | 'start';
  /** Networks never banned by log watching (default loopback). */
  ignore?: readonly string[];
  /** Standard input for `type: stdin` sources (default process.stdin). */
  stdin?: Readable;
  /** Called with every decision, before the sink (dry runs print them). */
  onDecision?: (d: Decision) => void;
  /**
   * Called with every batch of lines read, before the formats see them, with
   * the source they came from (serve learns correspondents from the mail
   * log's `status=sent` lines). Must not throw or block.
   */
  onLines?: (lines: readonly LogLine[], source: SourceConfig) => void;
}

export interface LogWatch {
  /** Read every file source now (tests; the timer does this every poll interval). */
  poll(): Promise<void>;
  /** Wait until lines already read from the journal and stdin are processed. */
  settled(): Promise<void>;
  stop(): Promise<void>;
  /** Lines read, events found and bans asked for, by source (its name, or its path), since start. */
  stats(): LogWatchSourceStats[];
}

export interface LogWatchSourceStats {
  source: string;
  lines: number;
  events: number;
  bans: number;
}

/** The options `startLogWatch` takes, from the `logwatch:` config section. */
export function logWatchOptionsFromConfig(cfg: LogwatchConfig, dataDir: string): Omit<LogWatchOptions, 'sink' | 'logger' | 'clock'> {
  return {
    sources: cfg.sources,
    scenarios: resolveScenarios(cfg.scenarios),
    patterns: cfg.patterns as PatternConfig[],
    stateFile: cfg.state_file ?? resolve(dataDir, 'logwatch-state.json'),
    pollIntervalMs: cfg.poll_interval_ms,
    maxLineBytes: cfg.max_line_bytes,
    maxTracked: cfg.max_tracked,
    ipv6Prefix: cfg.ipv6_prefix,
    startAt: cfg.start_at,
    ignore: cfg.ignore,
  };
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** The reason stored with a ban: scenario, what was counted, over how long, and where. ASCII only: it ends up in SMTP replies. */
export function describeDecision(d: Decision): string {
  const lines = d.firstLine <= 0 ? '' : d.firstLine === d.lastLine ? `, line ${d.firstLine}` : `, lines ${d.firstLine}-${d.lastLine}`;
  return `logwatch ${d.scenario}: ${d.count} x ${d.kinds.join('/')} in ${duration(d.lastTime - d.firstTime)} (${d.source}${lines})`;
}

/**
 * The configured networks and this host's own addresses (every interface's, read once, at start):
 * a daemon logs them as the client when a local program connects (a webmail makes Dovecot write
 * `rip=` with the host's address). The store refuses to ban them too; here they are not even counted.
 */
function ignoreList(configured: readonly string[] | undefined, logger?: Logger): IgnoreList {
  const own = localInterfaceAddresses().map(({ address }) => (address.includes(':') ? `${address}/128` : `${address}/32`));
  logger?.debug({ addresses: own }, 'logwatch: the host\'s own addresses are never counted');
  return new IgnoreList([...(configured ?? DEFAULT_IGNORE), ...own]);
}

export function banRequest(d: Decision): BanRequest {
  return { cidr: d.cidr, reason: describeDecision(d), category: d.category, source: `log:${d.source}` };
}

export async function startLogWatch(opts: LogWatchOptions): Promise<LogWatch> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger;
  const maxLineBytes = opts.maxLineBytes ?? 4096;
  const engine = new ScenarioEngine(opts.scenarios ?? resolveScenarios(), {
    maxTracked: opts.maxTracked,
    ipv6Prefix: opts.ipv6Prefix,
    ignore: ignoreList(opts.ignore, logger),
  });
  const offsets = await OffsetStore.open(opts.stateFile, logger);
  const tails: FileTail[] = [];
  const journals: JournalSource[] = [];
  const background: Array<Promise<unknown>> = [];
  let stdinDone: Promise<void> = Promise.resolve();

  const pipelines: Array<{ source: string; pipeline: Pipeline }> = [];
  const bans = new Map<string, number>();
  const deliver = async (decisions: Decision[]): Promise<void> => {
    for (const d of decisions) {
      bans.set(d.source, (bans.get(d.source) ?? 0) + 1);
      opts.onDecision?.(d);
      const request = banRequest(d);
      try {
        const why = refusal(await opts.sink.ban(request));
        if (why) logger.info({ cidr: d.cidr, scenario: d.scenario, why }, 'logwatch ban refused');
        else logger.info({ cidr: d.cidr, category: d.category, scenario: d.scenario, count: d.count }, 'logwatch ban');
      } catch (e) {
        logger.error({ cidr: d.cidr, scenario: d.scenario, err: (e as Error).message }, 'logwatch ban failed');
      }
    }
  };

  const consumer = (pipeline: Pipeline, src: SourceConfig) => async (lines: readonly LogLine[]) => {
    if (opts.onLines) {
      try {
        opts.onLines(lines, src);
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'logwatch: line listener threw');
      }
    }
    const decisions: Decision[] = [];
    for (const line of lines) pipeline.feed(line, decisions);
    if (decisions.length > 0) await deliver(decisions);
  };

  const pipeline = (format: string, source: string): Pipeline => {
    const p = new Pipeline({ format, patterns: opts.patterns, engine, clock, time: 'clock', source });
    pipelines.push({ source, pipeline: p });
    return p;
  };

  const followed = new Set<string>();
  for (const src of opts.sources) {
    if (src.type === 'file') {
      for (const path of src.paths) {
        // One reader per file: two would share (and fight over) one saved offset.
        if (followed.has(resolve(path))) continue;
        followed.add(resolve(path));
        const p = pipeline(src.format, src.name ?? path);
        tails.push(new FileTail({ path, offsets, maxLineBytes, startAt: opts.startAt, onLines: consumer(p, src), logger }));
      }
    } else if (src.type === 'journal') {
      const p = pipeline(src.format, src.name ?? 'journal');
      journals.push(
        new JournalSource({
          journalctl: src.journalctl,
          units: src.units,
          startAt: opts.startAt,
          maxLineBytes,
          offsets,
          stateKey: `journal:${src.units.join(',')}`,
          onLines: consumer(p, src),
          logger,
        }),
      );
    } else {
      const p = pipeline(src.format, src.name ?? 'stdin');
      const input = opts.stdin ?? process.stdin;
      stdinDone = readStreamLines(input, maxLineBytes, consumer(p, src)).then(
        () => logger.info('logwatch: standard input ended'),
        (e) => logger.error({ err: (e as Error).message }, 'logwatch: reading standard input failed'),
      );
      background.push(stdinDone);
    }
  }

  for (const t of tails) t.start(opts.pollIntervalMs ?? 1000);
  // Resolve once every file is placed (at its end, or its saved offset): a line written after
  // startLogWatch returns is then always read. (A failed first poll is logged by the tail.)
  await Promise.all(tails.map((t) => t.poll().catch(() => undefined)));
  for (const j of journals) j.start();
  logger.info({ files: tails.map((t) => t.path), journal: journals.length, stdin: background.length }, 'logwatch started');

  return {
    poll: async () => {
      for (const t of tails) await t.poll();
    },
    settled: async () => {
      await stdinDone;
      for (const j of journals) await j.drained();
    },
    stats: () => pipelines.map(({ source, pipeline }) => ({ source, lines: pipeline.lines, events: pipeline.events, bans: bans.get(source) ?? 0 })),
    stop: async () => {
      await Promise.all([...tails.map((t) => t.stop()), ...journals.map((j) => j.stop())]);
      await offsets.save();
    },
  };
}

export interface ReplayOptions {
  /** `auto` (default), a built-in format, or a pattern name. */
  format?: string;
  scenarios?: readonly Scenario[];
  patterns?: readonly CustomPatternSpec[];
  maxLineBytes?: number;
  maxTracked?: number;
  ipv6Prefix?: number;
  ignore?: readonly string[];
  /** The reference for year-less syslog stamps, and the time of lines without a stamp (default: now). */
  clock?: Clock;
  /** Names the source in decisions (default `replay`). */
  source?: string;
  /** Filled in with counts as the replay runs. */
  stats?: { lines: number; events: number };
}

/** Run old lines through formats and scenarios in log time; what would have been banned, in order. */
export async function replay(lines: AsyncIterable<string | LogLine> | Iterable<string | LogLine>, opts: ReplayOptions = {}): Promise<Decision[]> {
  const maxLineBytes = opts.maxLineBytes ?? 4096;
  const engine = new ScenarioEngine(opts.scenarios ?? resolveScenarios(), {
    maxTracked: opts.maxTracked,
    ipv6Prefix: opts.ipv6Prefix,
    ignore: ignoreList(opts.ignore),
  });
  const pipeline = new Pipeline({
    format: opts.format ?? 'auto',
    patterns: opts.patterns,
    engine,
    clock: opts.clock ?? systemClock,
    time: 'log',
    source: opts.source ?? 'replay',
  });
  const decisions: Decision[] = [];
  let n = 0;
  for await (const item of lines) {
    n++;
    if (typeof item === 'string') {
      const { text, cut } = cutText(item, maxLineBytes);
      pipeline.feed({ text, cut, lineNo: n }, decisions);
    } else pipeline.feed(item, decisions);
  }
  if (opts.stats) {
    opts.stats.lines = pipeline.lines;
    opts.stats.events = pipeline.events;
  }
  return decisions;
}
