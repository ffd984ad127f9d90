// One source's way from lines to decisions: find the events of each line with
// the source's format, give each a time (the injected clock when following
// live; the line's own stamp in replays, so windows are in log time), and
// count them in the shared scenario engine.

import type { Clock } from '../../core/types.js';
import { createLineParser, type LineParser, type LogEvent } from './formats/index.js';
import type { CustomPatternSpec } from './formats/custom.js';
import type { LogLine } from './line.js';
import type { Decision, ScenarioEngine } from './scenarios.js';
import { LogTimeParser } from './timestamp.js';

export interface PipelineOptions {
  /** `auto`, a built-in format or a custom pattern name. */
  format: string;
  patterns?: readonly CustomPatternSpec[];
  engine: ScenarioEngine;
  clock: Clock;
  /** `clock`: events happen now (live). `log`: at the line's time stamp (replays). */
  time: 'clock' | 'log';
  /** Names the source in decisions (`/var/log/auth.log`, `journal`, `stdin`). */
  source: string;
}

export class Pipeline {
  lines = 0;
  events = 0;
  private readonly parse: LineParser;
  private readonly found: LogEvent[] = [];
  private readonly times: LogTimeParser;
  private lastTime: number | undefined;

  constructor(private readonly opts: PipelineOptions) {
    this.parse = createLineParser(opts.format, opts.patterns);
    this.times = new LogTimeParser(() => opts.clock.now());
  }

  /** Process one line; bans it completes are pushed to `out`. */
  feed(line: LogLine, out: Decision[]): void {
    this.lines++;
    const found = this.found;
    found.length = 0;
    const stamp = this.parse(line, found);
    if (found.length === 0) return;
    this.events += found.length;
    for (const event of found) {
      const time = this.timeOf(line, event.stamp ?? stamp);
      this.opts.engine.observe(event, time, line.lineNo, this.opts.source, out);
    }
  }

  private timeOf(line: LogLine, stamp: string | undefined): number {
    if (this.opts.time === 'clock') return this.opts.clock.now();
    const t = line.time ?? (stamp === undefined ? undefined : this.times.parse(stamp));
    if (t !== undefined) this.lastTime = t;
    return t ?? this.lastTime ?? this.opts.clock.now();
  }
}
