// The decision log's counters computed from the events themselves (at most
// the newest 10,000 of the window): for a store without countEvents (tests
// of the pages alone). serve passes the store's countEvents.

import type { Store } from '../../../store/index.js';
import { domainOf } from '../../../core/address.js';
import type { CountQuery, CountRow } from './context.js';

export function countsFromEvents(store: Store): (q: CountQuery) => Promise<CountRow[]> {
  return async (q) => {
    const events = await store.queryEvents({ since: q.since, until: q.until, limit: 10_000 });
    const rows = new Map<string, CountRow>();
    const add = (bucket: number | undefined, key: string, action: string) => {
      if (q.actions && !q.actions.includes(action)) return;
      const id = `${bucket ?? ''}\u0000${key}\u0000${action}`;
      const r = rows.get(id);
      if (r) r.n++;
      else rows.set(id, bucket === undefined ? { key, action, n: 1 } : { bucket, key, action, n: 1 });
    };
    for (const e of events) {
      switch (q.dim) {
        case 'minute':
          add(Math.floor(e.ts / 60_000) * 60_000, e.action === 'defer' ? e.rule : '', e.action);
          break;
        case 'rule':
          add(undefined, e.rule, e.action);
          break;
        case 'client':
          add(undefined, e.clientIp, e.action);
          break;
        case 'domain':
          if (e.from !== undefined) add(undefined, e.from === '' ? '<>' : (domainOf(e.from) ?? e.from), e.action);
          break;
        case 'would-have':
          for (const w of e.wouldHave ?? []) add(undefined, w.rule, w.action);
          break;
        default:
          break;
      }
    }
    return [...rows.values()];
  };
}
