// Walked SPF networks kept in a named list on a schedule: the large-sender
// whitelist (`spf-walked`) and the correspondents' networks (`correspondents`)
// both run through here.
//
// Every entry expires two intervals after the walk that found it. A domain
// whose walk fails (DNS fault, lookup limit, bad record) keeps its previous
// networks until those expire, beside whatever the failed walk did find: a
// DNS outage never empties the list, and a domain that really stopped
// publishing drops out after two intervals.

import type { Clock } from '../../core/types.js';
import type { Resolver } from '../../dns/types.js';
import type { ListEntry, ListSink } from '../list-sink.js';
import { mergeCidrs } from './merge.js';
import { walkSpf, type DomainSummary, type WalkOptions, type WalkResult } from './walk.js';

export const SPF_SOURCE_PREFIX = 'spf:';

export interface SpfListOptions {
  /** The list written: `spf-walked`, `correspondents`. */
  list: string;
  /** Seconds between walks; entries expire after twice this. */
  intervalS: number;
  sink: ListSink;
  resolver: Resolver;
  clock: Clock;
  walk?: WalkOptions;
}

/** What the job remembers between runs: per walked domain, its networks and their expiry. */
export interface SpfListState {
  domains: Map<string, Map<string, number>>;
  /** Read back from the sink once, so a restart during a DNS outage keeps the list too. */
  loaded: boolean;
}

export function newSpfListState(): SpfListState {
  return { domains: new Map(), loaded: false };
}

export interface DomainRun extends DomainSummary {
  /** Networks written from this walk (merged). */
  fresh: number;
  /** Networks kept from earlier walks because this one failed. */
  kept: number;
}

export interface SpfListRun {
  list: string;
  at: number;
  domains: DomainRun[];
  /** Entries written to the list. */
  entries: number;
  walk: WalkResult;
  /** Reading the previous entries from the sink failed (the run went on without them). */
  loadError?: string;
}

function normalise(d: string): string {
  return d.trim().replace(/\.$/, '').toLowerCase();
}

async function load(opts: SpfListOptions, state: SpfListState): Promise<string | undefined> {
  state.loaded = true;
  let entries: ListEntry[];
  try {
    entries = await opts.sink.list(opts.list);
  } catch (e) {
    return (e as Error).message;
  }
  for (const e of entries) {
    if (!e.source.startsWith(SPF_SOURCE_PREFIX) || e.expiresAt === undefined) continue;
    const domain = e.source.slice(SPF_SOURCE_PREFIX.length);
    let nets = state.domains.get(domain);
    if (!nets) state.domains.set(domain, (nets = new Map()));
    nets.set(e.value, Math.max(e.expiresAt, nets.get(e.value) ?? 0));
  }
  return undefined;
}

/**
 * Walk `domains` once and write the list. Domains no longer given are dropped
 * from it at once. Rejects only when writing to the sink fails.
 */
export async function runWalkOnce(domains: string[], opts: SpfListOptions, state: SpfListState): Promise<SpfListRun> {
  const loadError = state.loaded ? undefined : await load(opts, state);
  const names = [...new Set(domains.map(normalise).filter((d) => d !== ''))];
  const walk = await walkSpf(names, opts.resolver, opts.walk);
  const now = opts.clock.now();
  const expiresAt = now + 2 * opts.intervalS * 1000;

  const found = new Map<string, string[]>();
  for (const n of walk.networks) {
    const list = found.get(n.domain) ?? [];
    list.push(n.cidr);
    found.set(n.domain, list);
  }
  const next = new Map<string, Map<string, number>>();
  const runs: DomainRun[] = [];
  for (const summary of walk.domains) {
    const nets = new Map<string, number>();
    const fresh = mergeCidrs(found.get(summary.domain) ?? []);
    for (const cidr of fresh) nets.set(cidr, expiresAt);
    let kept = 0;
    if (summary.status !== 'ok') {
      for (const [cidr, exp] of state.domains.get(summary.domain) ?? []) {
        if (exp > now && !nets.has(cidr)) {
          nets.set(cidr, exp);
          kept++;
        }
      }
    }
    next.set(summary.domain, nets);
    runs.push({ ...summary, fresh: fresh.length, kept });
  }
  state.domains = next;

  // One entry per network; shared by two domains, the later expiry (and its domain) wins.
  const entries = new Map<string, ListEntry>();
  for (const [domain, nets] of next) {
    for (const [cidr, exp] of nets) {
      const had = entries.get(cidr);
      if (!had || (had.expiresAt ?? 0) < exp) entries.set(cidr, { value: cidr, source: `${SPF_SOURCE_PREFIX}${domain}`, expiresAt: exp });
    }
  }
  await opts.sink.replaceList(opts.list, [...entries.values()]);
  return { list: opts.list, at: now, domains: runs, entries: entries.size, walk, ...(loadError ? { loadError } : {}) };
}

/** A walked list with its state, for the scheduler: `runOnce()` each interval. */
export class SpfWalkedList {
  readonly state = newSpfListState();

  constructor(
    readonly opts: SpfListOptions,
    /** The domains to walk, asked afresh each run (correspondents change). */
    private readonly domains: () => string[] | Promise<string[]>,
  ) {}

  async runOnce(): Promise<SpfListRun> {
    return runWalkOnce(await this.domains(), this.opts, this.state);
  }
}
