// The store room's front door: open a Store from configuration.

import { RedisStore } from './redis/store.js';
import { SqliteStore } from './sqlite/store.js';
import type { Store, StoreConfig, StoreDeps } from './types.js';

export type * from './types.js';
export { DEFAULT_BAN_POLICY, LIST_KINDS, silentLogger } from './types.js';
export { StoreUnavailableError, InvalidEntryError, isStoreUnavailable } from './errors.js';
export { IpTrie } from './ip-trie.js';
export { AsnTable, AsnDatabase, loadAsnTable, parseAsnText } from './asn.js';
export type { AsnInfo, BadLine } from './asn.js';
export { greylist, greyKey, greyOrigin, normaliseSender, normaliseRecipient, DEFAULT_GREYLIST } from './greylist.js';
export type { GreylistConfig, GreylistInput, GreylistResult, GreyStore } from './greylist.js';
export { banSeconds, resolveBanPolicy } from './bans.js';
export { compactEvidence } from './events.js';
export { DecisionLog, decisionEvent } from './decision-log.js';
export { parseListText, loadListFile } from './list-file.js';
export { canonicalCidr, canonicalIp } from './ip.js';

/**
 * Open the configured backend. SQLite: creates/migrates the file and loads
 * the in-memory index. Redis: connects (rejects with StoreUnavailableError
 * when Redis cannot be reached within connectTimeoutMs), subscribes to the
 * change feed and loads the index.
 */
export async function openStore(cfg: StoreConfig, deps: StoreDeps = {}): Promise<Store> {
  switch (cfg.backend) {
    case 'sqlite':
      return SqliteStore.open(cfg, deps);
    case 'redis':
      return RedisStore.open(cfg, deps);
  }
}
