// Pulling peers' feeds into this store. Each peer's copy lives in a store
// list of its own (`feed-<peer>`), so it survives a restart and shows in
// `frontline list show`; when a peer is down its last good copy stays (its
// bans until they expire, entries without an expiry for hold_s after the last
// good pull). From the copies, bans are made here: an address listed by at
// least `min_sources` peers is banned (category "feed", source
// "feed:<peers>"), and such a ban is lifted when the peers stop listing it.
// The store refuses what it never bans (allow lists, my_networks, never-ban,
// this host): local allow lists win over anything pulled.

import { readFileSync } from 'node:fs';
import type { Clock } from '../../core/types.js';
import { fetchListText, FetchError } from '../../intel/lists-import/fetch.js';
import type { ScheduledJob } from '../../intel/schedule.js';
import type { Ban, Store } from '../../store/index.js';
import type { FeedPullConfig } from './config.js';
import { readPeerCopy } from './peer-copy.js';
import { FEED_BAN_SOURCE } from './source.js';
import { FEED_PATH, type FeedEntry } from './wire.js';

export interface PullLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PullDeps {
  store: Store;
  clock: Clock;
  logger: PullLogger;
  /** Replaces the global fetch (tests). */
  fetch?: typeof fetch;
  /** Reads a token file (tests replace it). */
  readFile?: (path: string) => string;
}

export interface PullReport {
  peer: string;
  feed: string;
  status: 'updated' | 'failed' | 'refused';
  full?: boolean;
  added?: number;
  removed?: number;
  skipped?: number;
  reason?: string;
}

export interface ConsolidateReport {
  banned: number;
  lifted: number;
  /** Wanted but refused by the store (allow lists, never-ban) or already banned from another source. */
  kept: number;
}

interface PeerState {
  cfg: FeedPullConfig;
  cursors: Map<string, string>;
  /** Per feed, the peer's entries as last pulled. */
  feeds: Map<string, Map<string, FeedEntry>>;
  /** Entries read back from the store at start (before the first good pull). */
  restored: Map<string, FeedEntry>;
  lastGood?: number;
  /** The expiry written to the store list per entry (to renew before it runs out). */
  written: Map<string, number>;
}

export function peerListName(peer: string): string {
  return `feed-${peer}`;
}

export class FeedPuller {
  private readonly peers = new Map<string, PeerState>();

  constructor(
    peers: readonly FeedPullConfig[],
    private readonly deps: PullDeps,
  ) {
    for (const cfg of peers) this.peers.set(cfg.name, { cfg, cursors: new Map(), feeds: new Map(), restored: new Map(), written: new Map() });
  }

  /** Read each peer's last copy back from the store (after a restart it stays in force until the next good pull). */
  async load(): Promise<void> {
    for (const p of this.peers.values()) {
      for (const e of await this.deps.store.listShow(peerListName(p.cfg.name))) {
        const entry: FeedEntry = { cidr: e.entry };
        if (e.expiresAt !== undefined) {
          entry.expiresAt = e.expiresAt;
          p.written.set(e.entry, e.expiresAt);
        }
        p.restored.set(e.entry, entry);
      }
    }
  }

  private token(p: PeerState): string | undefined {
    if (!p.cfg.token_file) return undefined;
    return (this.deps.readFile ?? ((f) => readFileSync(f, 'utf8')))(p.cfg.token_file).trim();
  }

  /** Pull every feed of one peer, then write its copy to the store. */
  async pull(name: string): Promise<PullReport[]> {
    const p = this.peers.get(name);
    if (!p) throw new Error(`no feed peer named ${JSON.stringify(name)}`);
    const reports: PullReport[] = [];
    let token: string | undefined;
    try {
      token = this.token(p);
    } catch (e) {
      const reason = `token_file ${p.cfg.token_file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      return p.cfg.lists.map((feed) => this.report({ peer: name, feed, status: 'failed', reason }));
    }
    let allGood = true;
    for (const feed of p.cfg.lists) {
      const r = await this.pullFeed(p, feed, token);
      if (r.status !== 'updated') allGood = false;
      reports.push(this.report(r));
    }
    if (allGood) p.lastGood = this.deps.clock.now();
    await this.writeCopy(p);
    return reports;
  }

  private report(r: PullReport): PullReport {
    const log = this.deps.logger;
    if (r.status === 'refused') log.error({ ...r }, 'feed copy refused: the last good copy stays in force');
    else if (r.status === 'failed') log.warn({ ...r }, 'feed pull failed: the last good copy stays in force');
    else if (r.skipped) log.warn({ ...r }, 'feed pulled; malformed entries skipped');
    return r;
  }

  private async pullFeed(p: PeerState, feed: string, token: string | undefined): Promise<PullReport> {
    const base = p.cfg.url.replace(/\/+$/, '');
    const cursor = p.cursors.get(feed);
    const url = `${base}${FEED_PATH}${encodeURIComponent(feed)}.json${cursor ? `?since=${encodeURIComponent(cursor)}` : ''}`;
    let body: string;
    try {
      body = await fetchListText(
        { url },
        { timeoutMs: p.cfg.timeout_s * 1000, fetch: this.deps.fetch, userAgent: 'frontline feed pull', headers: token ? { authorization: `Bearer ${token}` } : {} },
      );
    } catch (e) {
      return { peer: p.cfg.name, feed, status: 'failed', reason: e instanceof FetchError ? e.message : String(e) };
    }
    const now = this.deps.clock.now();
    const read = readPeerCopy(body, feed, now, (cidr) => this.deps.store.banRefusal(cidr));
    if (!read.ok) return { peer: p.cfg.name, feed, status: 'refused', reason: read.why };
    const copy = read.copy;
    let entries = p.feeds.get(feed);
    if (copy.full || !entries) {
      if (!copy.full) {
        // Changes against a copy we do not have: ask for a whole one next time.
        p.cursors.delete(feed);
        return { peer: p.cfg.name, feed, status: 'failed', reason: 'incremental answer without a base copy' };
      }
      entries = new Map();
      p.feeds.set(feed, entries);
    }
    for (const cidr of copy.removed) entries.delete(cidr);
    for (const e of copy.entries) entries.set(e.cidr, e);
    p.cursors.set(feed, copy.cursor);
    const out: PullReport = { peer: p.cfg.name, feed, status: 'updated', full: copy.full, added: copy.entries.length, removed: copy.removed.length };
    if (copy.skipped) {
      out.skipped = copy.skipped;
      out.reason = `malformed entries skipped, e.g. ${copy.skippedExamples.join(', ')}`;
    }
    return out;
  }

  /** The peer's entries now: its pulled feeds, or what was restored until every feed has been pulled once. */
  private current(p: PeerState): Map<string, FeedEntry> {
    if (p.feeds.size < p.cfg.lists.length) {
      const merged = new Map(p.restored);
      for (const m of p.feeds.values()) for (const [k, v] of m) merged.set(k, v);
      return merged;
    }
    const merged = new Map<string, FeedEntry>();
    for (const m of p.feeds.values()) for (const [k, v] of m) merged.set(k, v);
    return merged;
  }

  /** When an entry stops counting: its own expiry, or hold_s after the last good pull. */
  private expiryOf(p: PeerState, e: FeedEntry): number {
    return e.expiresAt ?? (p.lastGood ?? this.deps.clock.now()) + p.cfg.hold_s * 1000;
  }

  /** Mirror the peer's copy into its store list: add what is new (or needs a later expiry), delete what it dropped. */
  private async writeCopy(p: PeerState): Promise<void> {
    const list = peerListName(p.cfg.name);
    const now = this.deps.clock.now();
    const want = this.current(p);
    for (const cidr of [...p.written.keys()]) {
      if (want.has(cidr)) continue;
      await this.deps.store.listDel(list, cidr).catch(() => false);
      p.written.delete(cidr);
    }
    for (const [cidr, e] of want) {
      const expiresAt = this.expiryOf(p, e);
      const had = p.written.get(cidr);
      // Renew an entry without its own expiry when half its hold has gone.
      if (had !== undefined && (e.expiresAt !== undefined ? had === expiresAt : had - now > (p.cfg.hold_s * 1000) / 2)) continue;
      if (expiresAt <= now) continue;
      await this.deps.store.listAdd(list, cidr, { kind: 'ip', source: `feed:${p.cfg.name}`, expiresAt });
      p.written.set(cidr, expiresAt);
    }
  }

  /** Make and lift this host's feed bans from the peers' copies. */
  async consolidate(): Promise<ConsolidateReport> {
    const now = this.deps.clock.now();
    const support = new Map<string, { peers: string[]; need: number; expiresAt: number; entry: FeedEntry }>();
    for (const p of this.peers.values()) {
      for (const e of this.current(p).values()) {
        const expiresAt = this.expiryOf(p, e);
        if (expiresAt <= now) continue;
        const s = support.get(e.cidr);
        if (!s) support.set(e.cidr, { peers: [p.cfg.name], need: p.cfg.min_sources, expiresAt, entry: e });
        else {
          s.peers.push(p.cfg.name);
          s.need = Math.min(s.need, p.cfg.min_sources);
          if (expiresAt > s.expiresAt) s.expiresAt = expiresAt;
        }
      }
    }
    const ours = new Map<string, Ban>();
    await this.deps.store.scanBanRecords((page) => {
      for (const b of page) ours.set(b.cidr, b);
    });
    const report: ConsolidateReport = { banned: 0, lifted: 0, kept: 0 };
    for (const [cidr, s] of support) {
      if (s.peers.length < s.need) continue;
      const existing = ours.get(cidr);
      if (existing && !existing.source.startsWith(FEED_BAN_SOURCE)) {
        report.kept++;
        continue;
      }
      // A feed ban is made again only when the peers now list it for longer.
      if (existing && existing.expiresAt >= s.expiresAt - 60_000) continue;
      const seconds = Math.max(1, Math.round((s.expiresAt - now) / 1000));
      const why = s.entry.reason ? `: ${s.entry.reason}` : '';
      const r = await this.deps.store.ban({
        cidr,
        reason: `listed by feed ${s.peers.join(', ')}${why}`.slice(0, 300),
        category: 'feed',
        source: `${FEED_BAN_SOURCE}${s.peers.join('+')}`.slice(0, 100),
        durationSeconds: seconds,
      });
      if (r.refused) report.kept++;
      else report.banned++;
    }
    for (const [cidr, b] of ours) {
      if (!b.source.startsWith(FEED_BAN_SOURCE)) continue;
      const s = support.get(cidr);
      if (s && s.peers.length >= s.need) continue;
      if (await this.deps.store.unban(cidr)) report.lifted++;
    }
    if (report.banned || report.lifted) this.deps.logger.info({ ...report }, 'feed bans updated');
    return report;
  }

  /** One scheduled job per peer: pull it, then update the bans. */
  jobs(): ScheduledJob[] {
    return [...this.peers.values()].map((p) => ({
      name: `feed-pull:${p.cfg.name}`,
      intervalMs: p.cfg.interval_s * 1000,
      run: async () => {
        await this.pull(p.cfg.name);
        await this.consolidate();
      },
    }));
  }
}
