// Keeps the firewall in step with the store. A full reconcile (at start and
// every enforce.firewall.reconcile_s) rebuilds frontline's sets in one
// transaction, which also repairs hand edits and drift; between them, the
// store's change feed (follower.ts) brings each new ban in as a small
// increment. Everything that touches the kernel runs one at a time.
//
// A firewall that cannot be changed (tool missing, no CAP_NET_ADMIN, a
// refused script) never stops `frontline serve`: each failed reconcile logs
// one error and the next try comes after at most RETRY_S; increments wait
// until a full reconcile has worked again. An increment that fails (an
// element someone deleted, a network that now overlaps) is followed by a
// full reconcile at once.

import { afterOn, systemClock, type Clock } from '../../core/types.js';
import { IpTrie } from '../../store/ip-trie.js';
import type { StoreChange, StoreLogger } from '../../store/types.js';
import { banCount, banElements, BanFilter, isHost } from './desired.js';
import { runFirewallCommand, spawnRunner, type CommandRunner } from './run.js';
import { readDesired, type FirewallSource } from './source.js';
import { emptySkipCounts, type BanElement, type DesiredState, type FirewallBackend, type FirewallCommand, type FirewallRules, type SkipCounts } from './types.js';

/** Longest wait before a failed full reconcile is tried again (s). */
export const RETRY_S = 30;
/** pf: how often bans that ended are taken out of the table (s). */
const SWEEP_S = 5;

export interface ReconcileReport {
  ok: boolean;
  at: number;
  ms: number;
  bans: number;
  allow: number;
  skipped: SkipCounts;
  error?: string;
}

export interface ReconcilerOptions {
  backend: FirewallBackend;
  rules: FirewallRules;
  source: FirewallSource;
  /** Full reconcile interval (s). */
  reconcileS: number;
  run?: CommandRunner;
  clock?: Clock;
  logger: StoreLogger;
}

export class FirewallReconciler {
  private readonly backend: FirewallBackend;
  private readonly run: CommandRunner;
  private readonly clock: Clock;
  private readonly log: StoreLogger;
  /** Every kernel change, one after another. */
  private chain: Promise<unknown> = Promise.resolve();
  private filter?: BanFilter;
  /** nft: network elements in the kernel (their expiry), to see an increment that would overlap one. */
  private nets = new IpTrie();
  /** pf: what the table holds, to take ended bans out (no kernel timeouts). */
  private held = new Map<string, BanElement>();
  private healthy = false;
  private fullQueued: Promise<ReconcileReport> | undefined;
  private cancelTimer: () => void = () => {};
  private cancelSweep: () => void = () => {};
  private stopped = false;
  last?: ReconcileReport;

  constructor(private readonly opts: ReconcilerOptions) {
    this.backend = opts.backend;
    this.run = opts.run ?? spawnRunner;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger;
  }

  /** The first full reconcile (not awaited by serve: it may take seconds with a million bans), then one every reconcile_s. */
  start(): Promise<ReconcileReport> {
    if (!this.backend.timeouts) this.scheduleSweep();
    return this.reconcile();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer();
    this.cancelSweep();
    return this.chain.then(
      () => undefined,
      () => undefined,
    );
  }

  /** What a full reconcile would write now (`--dry-run`, `show`). */
  async plan(): Promise<{ state: DesiredState; commands: FirewallCommand[] }> {
    const state = await readDesired(this.opts.source, this.clock.now(), this.backend.disjointNets);
    return { state, commands: this.backend.full(state, this.opts.rules, this.clock.now()) };
  }

  /** A full reconcile, queued behind whatever runs; several asked for while one waits are one. Never rejects. */
  reconcile(): Promise<ReconcileReport> {
    this.fullQueued ??= this.serial(async () => {
      this.fullQueued = undefined;
      return this.fullNow();
    });
    return this.fullQueued;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async fullNow(): Promise<ReconcileReport> {
    this.cancelTimer();
    const t0 = Date.now();
    const at = this.clock.now();
    let report: ReconcileReport;
    let nextS = this.opts.reconcileS;
    try {
      const state = await readDesired(this.opts.source, this.clock.now(), this.backend.disjointNets);
      // The timeouts count from when the script is written (the read may take a second).
      const now = this.clock.now();
      for (const cmd of this.backend.full(state, this.opts.rules, now)) await runFirewallCommand(this.run, cmd);
      this.filter = new BanFilter(state.allow, this.opts.source.minPrefix);
      this.remember(state);
      this.healthy = true;
      report = { ok: true, at, ms: Date.now() - t0, bans: banCount(state), allow: state.allow.length, skipped: state.skipped };
      const skipped = state.skipped.malformed + state.skipped.tooWide + state.skipped.neverBan + state.skipped.allowMalformed;
      if (skipped > 0) {
        this.log.warn({ backend: this.backend.name, skipped: state.skipped, examples: state.examples }, `firewall: ${skipped} store entries left out of the firewall (${state.examples.join('; ')})`);
      }
      this.log.info({ backend: this.backend.name, bans: report.bans, allow: report.allow, ms: report.ms }, `firewall reconciled: ${report.bans} bans, ${report.allow} allowed networks`);
      if (state.shadowedUntil !== undefined) nextS = Math.min(nextS, Math.max(1, (state.shadowedUntil - now) / 1000 + 1));
    } catch (e) {
      this.healthy = false;
      const error = (e as Error).message;
      nextS = Math.min(this.opts.reconcileS, RETRY_S);
      report = { ok: false, at, ms: Date.now() - t0, bans: 0, allow: 0, skipped: emptySkipCounts(), error };
      this.log.error({ backend: this.backend.name, err: error }, `firewall not updated, frontline keeps deciding and tries again in ${Math.round(nextS)} s: ${error}`);
    }
    this.last = report;
    if (!this.stopped) this.cancelTimer = afterOn(this.clock, nextS * 1000, () => void this.reconcile());
    return report;
  }

  private remember(state: DesiredState): void {
    if (this.backend.disjointNets) {
      this.nets = new IpTrie();
      for (const b of state.others) if (!isHost(b.net)) this.nets.insert(b.cidr, b.expiresAt);
    }
    if (!this.backend.timeouts) {
      this.held = new Map(banElements(state).map((b) => [b.cidr, b]));
    }
  }

  /** Changes from the store's feed, in the order they came: bans in, unbans out, allow-list changes by a full reconcile. */
  applyChanges(changes: readonly StoreChange[]): Promise<void> {
    return this.serial(async () => {
      if (this.stopped) return;
      if (!this.healthy || !this.filter) return; // the next full reconcile brings everything in
      const now = this.clock.now();
      const add = new Map<string, BanElement>();
      const del = new Map<string, BanElement>();
      let full = false;
      for (const c of changes) {
        if (c.kind === 'ban') {
          const e = this.filter.check(c.ban.cidr, c.ban.expiresAt, now);
          if (!e) {
            if (this.filter.lastSkip) this.log.warn({ backend: this.backend.name, cidr: c.ban.cidr }, `firewall: left out: ${this.filter.lastSkip}`);
            continue;
          }
          if (this.backend.disjointNets && !isHost(e.net) && this.nets.get(e.cidr) === undefined && this.nets.overlaps(e.cidr, now)) {
            full = true; // overlaps a network in the kernel: the reconcile decides which stays
            continue;
          }
          del.delete(e.cidr);
          add.set(e.cidr, e);
        } else if (c.kind === 'unban') {
          const e = this.filter.check(c.cidr, Infinity, now);
          if (!e) continue; // never went in
          add.delete(e.cidr);
          if (this.backend.disjointNets && !isHost(e.net)) {
            // A network leaving may uncover narrower bans it held: the reconcile puts them in.
            if (this.nets.get(e.cidr) !== undefined) del.set(e.cidr, e);
            full = true;
            continue;
          }
          del.set(e.cidr, e);
        } else {
          const list = c.kind === 'list-add' ? c.entry.list : c.list;
          if (this.opts.source.allowLists.includes(list)) full = true;
        }
      }
      if (add.size > 0 || del.size > 0) {
        const cmds = this.backend.increment([...add.values()], [...del.values()], now);
        try {
          for (const cmd of cmds) await runFirewallCommand(this.run, cmd);
          for (const e of add.values()) {
            if (this.backend.disjointNets && !isHost(e.net)) this.nets.insert(e.cidr, e.expiresAt);
            if (!this.backend.timeouts) this.held.set(e.cidr, e);
          }
          for (const e of del.values()) {
            this.nets.remove(e.cidr);
            this.held.delete(e.cidr);
          }
          this.log.info({ backend: this.backend.name, added: add.size, deleted: del.size }, `firewall: ${add.size} added, ${del.size} deleted`);
        } catch (e) {
          this.log.warn({ backend: this.backend.name, err: (e as Error).message }, `firewall increment failed, reconciling in full: ${(e as Error).message}`);
          full = true;
        }
      }
      if (full) void this.reconcile();
    });
  }

  /** pf: bans that ended leave the table (nft and ipset elements expire by themselves). */
  private scheduleSweep(): void {
    if (this.stopped) return;
    this.cancelSweep = afterOn(this.clock, SWEEP_S * 1000, () => {
      void this.serial(async () => {
        if (!this.healthy) return;
        const now = this.clock.now();
        const ended = [...this.held.values()].filter((b) => b.expiresAt <= now);
        if (ended.length === 0) return;
        try {
          for (const cmd of this.backend.increment([], ended, now)) await runFirewallCommand(this.run, cmd);
          for (const b of ended) this.held.delete(b.cidr);
        } catch (e) {
          this.log.warn({ backend: this.backend.name, err: (e as Error).message }, `firewall: taking ended bans out failed, reconciling in full: ${(e as Error).message}`);
          void this.reconcile();
        }
      }).finally(() => this.scheduleSweep());
    });
  }
}
