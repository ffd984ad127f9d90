// Opening the configured store the same way everywhere: `serve` and the
// store commands (ban, list, grey, log) open the same file or Redis, so a
// ban made from the command line is enforced by the running server (SQLite:
// within its change-poll interval, 0.5 s; Redis: at once, through pub/sub).

import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config/load.js';
import type { Clock } from '../core/types.js';
import { parseListenAddress } from '../config/address.js';
import { secureDataDir } from './file-modes.js';
import { eventsPathFor } from '../store/sqlite/events-file.js';
import { openStore, type Store, type StoreConfig, type StoreLogger } from '../store/index.js';

export interface OpenStoreOptions {
  logger?: StoreLogger;
  clock?: Clock;
  /** serve: purge expired entries every store.purge_interval_s. Commands: never (they are short-lived). */
  purge?: boolean;
  /** An in-memory SQLite store (frontline check: no state is read or changed). */
  memory?: boolean;
}

/** The backend config the `store:` section describes (SQLite path defaults to <data_dir>/frontline.db). */
export function storeConfigOf(config: Config, memory = false): StoreConfig {
  const s = config.store;
  if (memory) return { backend: 'sqlite', path: ':memory:', pollMs: 0 };
  if (s.backend === 'redis') {
    const r = s.redis;
    const cfg: StoreConfig = { backend: 'redis', url: r.url, prefix: r.prefix, minReplicas: r.min_replicas, replicaWaitMs: r.replica_wait_ms };
    if (r.sentinel) {
      cfg.sentinel = { hosts: r.sentinel.hosts.map((h) => parseListenAddress(h)!), name: r.sentinel.name };
      if (r.sentinel.password) cfg.sentinel.password = r.sentinel.password;
    }
    return cfg;
  }
  return { backend: 'sqlite', path: resolve(s.path ?? join(config.data_dir, 'frontline.db')), writerNice: s.events.writer_nice };
}

/** Addresses the store must never ban: store.never_ban, my_networks and the `allow` list's IP entries (loopback is added by the store). */
export function neverBanOf(config: Config): string[] {
  const allow = config.lists.allow;
  return [...config.store.never_ban, ...config.my_networks, ...(allow?.type === 'ip' ? allow.entries : [])];
}

export async function openConfiguredStore(config: Config, opts: OpenStoreOptions = {}): Promise<Store> {
  const cfg = storeConfigOf(config, opts.memory);
  // The store's directory (the data directory by default): 0750, its files 0640, whoever opens it first.
  // In the data directory every file is ours; elsewhere only the store's own files are. Again once open: the files it made.
  const secure =
    cfg.backend === 'sqlite' && cfg.path !== ':memory:'
      ? () => secureDataDir(dirname(cfg.path), config.file_group, opts.logger, dirname(cfg.path) === resolve(config.data_dir) ? undefined : [cfg.path, eventsPathFor(cfg.path)])
      : () => {};
  secure();
  const b = config.store.bans;
  const store = await openStore(cfg, {
    clock: opts.clock,
    logger: opts.logger,
    banPolicy: { baseSeconds: b.base_s, factor: b.factor, maxSeconds: b.max_s, jitter: b.jitter, forgetAfterSeconds: b.forget_after_s },
    banMinPrefix: { v4: b.min_prefix.ipv4, v6: b.min_prefix.ipv6 },
    neverBan: neverBanOf(config),
    // The store's own `allow` list (frontline list add allow …) is never banned either.
    neverBanLists: ['allow'],
    purgeIntervalSeconds: opts.purge ? config.store.purge_interval_s : 0,
  });
  secure();
  return store;
}

/** Apply the decision log's retention (store.events). */
export function pruneEvents(store: Store, config: Config): Promise<number> {
  const e = config.store.events;
  return store.pruneEvents({ maxAgeSeconds: e.max_age_s || undefined, maxRows: e.max_rows || undefined });
}
