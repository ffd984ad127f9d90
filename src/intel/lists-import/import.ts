// Imported lists on a schedule, as OpenBSD's spamd-setup does: each source
// is fetched, parsed and written into its named list with an expiry. Three
// guards keep a bad day at the source from becoming a bad day here:
//
// - a failed fetch (network, HTTP error, unreadable file) changes nothing:
//   the last good copy stays until its entries expire;
// - a copy with no valid entry at all is a failed fetch too;
// - a copy that shrank below `maxShrink` or grew above `maxGrow` times the
//   last good size is held back and reported, not applied, until an admin
//   accepts it (`frontline list import accept NAME`, or `accept(name)` in
//   process) or a later fetch is back within the ratio. While a copy is held
//   the last good one is kept alive (its expiry renewed at every run), so a
//   list never empties itself while it waits for an admin's eye.

import type { Clock } from '../../core/types.js';
import type { ListSink } from '../list-sink.js';
import type { ScheduledJob } from '../schedule.js';
import { describeLocation, fetchListText, type FetchOptions, type ListLocation } from './fetch.js';
import { parseIpList, type BadLine, type ParseOptions } from './parse.js';

export interface ImportSource {
  /** The list written (a store list name). */
  name: string;
  location: ListLocation;
  intervalS: number;
  /** Entries expire this long after the fetch that wrote them. Default 3 × intervalS. */
  expireS?: number;
  /** Hold back a copy smaller than this fraction of the last good one. Default 0.5. */
  maxShrink?: number;
  /** Hold back a copy larger than this multiple of the last good one. Default 3. */
  maxGrow?: number;
  /** Seconds to wait for a URL (overrides deps.fetch.timeoutMs). */
  timeoutS?: number;
}

export interface ImportDeps {
  sink: ListSink;
  clock: Clock;
  fetch?: FetchOptions;
  parse?: ParseOptions;
}

export interface ImportState {
  /** Entries in the last copy applied; undefined until known (read back from the sink on first use). */
  lastGoodCount?: number;
  lastGoodAt?: number;
  /** A copy held back by the ratio guard, kept so it can be accepted without fetching again. */
  held?: { entries: string[]; at: number; reason: string };
}

export type ImportStatus = 'updated' | 'failed' | 'held';

export interface ImportReport {
  name: string;
  source: string;
  status: ImportStatus;
  at: number;
  /** Entries in this fetch (0 when it failed). */
  count: number;
  /** Entries in the last good copy before this run. */
  previous: number;
  badLines: BadLine[];
  /** Why the fetch failed, or why the copy was held back. */
  reason?: string;
}

export function sourceTag(name: string): string {
  return `import:${name}`;
}

async function previousCount(src: ImportSource, deps: ImportDeps, state: ImportState): Promise<number> {
  // While a copy is held, an admin may accept one from another process (the
  // CLI): read the list again rather than trust the count remembered here.
  if (state.lastGoodCount !== undefined && state.held === undefined) return state.lastGoodCount;
  try {
    const now = deps.clock.now();
    const live = (await deps.sink.list(src.name)).filter((e) => e.expiresAt === undefined || e.expiresAt > now);
    state.lastGoodCount = live.length;
  } catch {
    state.lastGoodCount = 0;
  }
  return state.lastGoodCount;
}

function expiryOf(src: ImportSource, now: number): number {
  return now + (src.expireS ?? 3 * src.intervalS) * 1000;
}

/** Renew the expiry of the import's live entries (the last good copy), leaving the list's other entries as they are. */
async function keepAlive(src: ImportSource, deps: ImportDeps, now: number): Promise<void> {
  const source = sourceTag(src.name);
  const expiresAt = expiryOf(src, now);
  const live = (await deps.sink.list(src.name)).filter((e) => e.expiresAt === undefined || e.expiresAt > now);
  await deps.sink.replaceList(
    src.name,
    live.map((e) => (e.source === source ? { ...e, expiresAt } : e)),
  );
}

async function apply(src: ImportSource, deps: ImportDeps, state: ImportState, entries: string[], now: number): Promise<void> {
  const expiresAt = expiryOf(src, now);
  const source = sourceTag(src.name);
  await deps.sink.replaceList(
    src.name,
    entries.map((value) => ({ value, source, expiresAt })),
  );
  state.lastGoodCount = entries.length;
  state.lastGoodAt = now;
  state.held = undefined;
}

/** Fetch one source and apply it unless a guard says no. `force` skips the ratio guard. */
export async function runImportOnce(src: ImportSource, deps: ImportDeps, state: ImportState, opts: { force?: boolean } = {}): Promise<ImportReport> {
  const where = describeLocation(src.location);
  const previous = await previousCount(src, deps, state);
  const base = { name: src.name, source: where, previous };
  let text: string;
  try {
    text = await fetchListText(src.location, src.timeoutS === undefined ? deps.fetch : { ...deps.fetch, timeoutMs: src.timeoutS * 1000 });
  } catch (e) {
    return { ...base, status: 'failed', at: deps.clock.now(), count: 0, badLines: [], reason: (e as Error).message };
  }
  const now = deps.clock.now();
  const parsed = parseIpList(text, where, deps.parse);
  const count = parsed.entries.length;
  if (count === 0 && (parsed.dataLines > 0 || previous > 0)) {
    const why = parsed.dataLines > 0 ? `no valid entry in ${parsed.dataLines} line(s)` : 'the list is empty';
    return { ...base, status: 'failed', at: now, count, badLines: parsed.bad, reason: `${why}; last good copy kept` };
  }
  if (previous > 0 && !opts.force) {
    const ratio = count / previous;
    const maxShrink = src.maxShrink ?? 0.5;
    const maxGrow = src.maxGrow ?? 3;
    if (ratio < maxShrink || ratio > maxGrow) {
      const pct = Math.round(ratio * 100);
      const reason = `${count} entries is ${pct}% of the last good ${previous} (allowed ${Math.round(maxShrink * 100)}%–${Math.round(maxGrow * 100)}%): held back; the last good copy stays in force until \`frontline list import accept ${src.name}\``;
      state.held = { entries: parsed.entries, at: now, reason };
      await keepAlive(src, deps, now);
      return { ...base, status: 'held', at: now, count, badLines: parsed.bad, reason };
    }
  }
  await apply(src, deps, state, parsed.entries, now);
  return { ...base, status: 'updated', at: now, count, badLines: parsed.bad };
}

/** All configured imports with their state: jobs for the scheduler, and accepting held copies. */
export class ListImporter {
  readonly states = new Map<string, ImportState>();

  constructor(
    readonly sources: ImportSource[],
    private readonly deps: ImportDeps,
    /** Told of every run (log it; held and failed runs need an admin's eye). */
    private readonly onReport: (r: ImportReport) => void = () => undefined,
  ) {
    const names = new Set<string>();
    for (const s of sources) {
      if (names.has(s.name)) throw new Error(`list import "${s.name}" is configured twice`);
      names.add(s.name);
      this.states.set(s.name, {});
    }
  }

  private find(name: string): [ImportSource, ImportState] {
    const src = this.sources.find((s) => s.name === name);
    if (!src) throw new Error(`no list import named "${name}"`);
    return [src, this.states.get(name)!];
  }

  async runOnce(name: string, opts: { force?: boolean } = {}): Promise<ImportReport> {
    const [src, state] = this.find(name);
    const report = await runImportOnce(src, this.deps, state, opts);
    this.onReport(report);
    return report;
  }

  /** Apply the copy the ratio guard held back; false when nothing is held. */
  async accept(name: string): Promise<boolean> {
    const [src, state] = this.find(name);
    if (!state.held) return false;
    await apply(src, this.deps, state, state.held.entries, this.deps.clock.now());
    return true;
  }

  jobs(): ScheduledJob[] {
    return this.sources.map((s) => ({
      name: `import:${s.name}`,
      intervalMs: s.intervalS * 1000,
      run: async () => {
        await this.runOnce(s.name);
      },
    }));
  }
}
