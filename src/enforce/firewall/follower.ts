// Follows the store's change feed into the firewall: the changes of one
// short window (BATCH_MS) go in as one increment, so a burst of log-watch
// bans is one `nft -f`, and a single ban is in the kernel well within a
// second (the feed itself: at once on Redis, within pollMs on SQLite).

import type { Store, StoreChange } from '../../store/types.js';
import type { FirewallReconciler } from './reconciler.js';

const BATCH_MS = 20;

export function followChanges(store: Store, reconciler: FirewallReconciler): () => void {
  let pending: StoreChange[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const batch = pending;
    pending = [];
    void reconciler.applyChanges(batch);
  };
  const unsubscribe = store.onChange((c) => {
    pending.push(c);
    timer ??= setTimeout(flush, BATCH_MS);
  });
  return () => {
    unsubscribe();
    if (timer) clearTimeout(timer);
  };
}
