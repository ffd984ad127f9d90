// The firewall part of the enforce room: the store's bans as packet filter
// sets (nftables, ipset + iptables, pf), kept in step by a reconciler and the
// change-feed follower. `frontline serve` starts it when
// enforce.firewall.backend is set; `frontline firewall` shows, syncs and
// flushes it. See docs/enforce.md.

import type { FirewallConfig } from '../../config/enforce-schema.js';
import type { Clock } from '../../core/types.js';
import type { BanMinPrefix, Store, StoreLogger } from '../../store/types.js';
import { followChanges } from './follower.js';
import { ipsetBackend } from './ipset.js';
import { nftBackend } from './nft.js';
import { pfBackend } from './pf.js';
import { FirewallReconciler } from './reconciler.js';
import type { CommandRunner } from './run.js';
import { storeSource } from './source.js';
import type { FirewallBackend, FirewallBackendName } from './types.js';

export { FirewallReconciler, type ReconcileReport } from './reconciler.js';
export { banCount, banElements } from './desired.js';
export { formatCommands, runFirewallCommand, spawnRunner, FirewallCommandError, type CommandRunner, type CommandResult } from './run.js';
export type { FirewallBackend, FirewallBackendName, KernelState, DesiredState } from './types.js';

export function firewallBackend(name: FirewallBackendName): FirewallBackend {
  if (name === 'nft') return nftBackend();
  if (name === 'ipset') return ipsetBackend();
  return pfBackend();
}

export interface FirewallDeps {
  store: Store;
  logger: StoreLogger;
  /** Allow entries from the configuration: loopback, my_networks, store.never_ban, the config's allow list, this host's addresses. */
  staticAllow: readonly string[];
  minPrefix: BanMinPrefix;
  run?: CommandRunner;
  clock?: Clock;
  /** Another backend object (tests). */
  backend?: FirewallBackend;
}

export function createReconciler(cfg: FirewallConfig, deps: FirewallDeps): FirewallReconciler {
  if (cfg.backend === 'none' && !deps.backend) throw new Error('enforce.firewall.backend is none');
  return new FirewallReconciler({
    backend: deps.backend ?? firewallBackend(cfg.backend as FirewallBackendName),
    rules: { ports: cfg.ports, action: cfg.action },
    source: storeSource(deps.store, { staticAllow: deps.staticAllow, allowLists: cfg.allow_lists, minPrefix: deps.minPrefix }),
    reconcileS: cfg.reconcile_s,
    run: deps.run,
    clock: deps.clock,
    logger: deps.logger,
  });
}

export interface RunningFirewall {
  reconciler: FirewallReconciler;
  /** Resolves when the first full reconcile has run (well or not: serve never waits on the firewall to decide). */
  ready: Promise<unknown>;
  stop(): Promise<void>;
}

/** Follow the store into the firewall until stop(). Never throws for a firewall that refuses: see reconciler.ts. */
export function startFirewall(cfg: FirewallConfig, deps: FirewallDeps): RunningFirewall {
  const reconciler = createReconciler(cfg, deps);
  const unfollow = followChanges(deps.store, reconciler);
  const ready = reconciler.start();
  return {
    reconciler,
    ready,
    async stop() {
      unfollow();
      await reconciler.stop();
    },
  };
}
