// The store as serve hands it out when metrics are on: the same store, with
// every asynchronous operation timed and its failures counted by operation.
// A Proxy, so whatever the Store interface gains later is forwarded as it
// is (untimed until named here). `lookup` (the in-memory index the hot path
// reads) is forwarded untouched: it answers without a promise.

import type { Store } from '../../store/index.js';
import type { CountsBy, HistogramsBy } from './family.js';

/** The operations timed; each a label value of frontline_store_operation_duration_seconds. */
export const TIMED_STORE_OPS = [
  'ban',
  'unban',
  'getBan',
  'showBan',
  'listBans',
  'scanBanRecords',
  'countBans',
  'listAdd',
  'listDel',
  'listShow',
  'listNames',
  'listHas',
  'greyGet',
  'greyPut',
  'greyAttempt',
  'greyDelete',
  'greyList',
  'greyDeleteByClient',
  'greyClientPasses',
  'greyClientPass',
  'rateTake',
  'correspondentRecord',
  'correspondentGet',
  'correspondentAll',
  'correspondentTrim',
  'spreadRecord',
  'spreadReset',
  'userHold',
  'userRelease',
  'userHoldGet',
  'userHolds',
  'logEvent',
  'queryEvents',
  'pruneEvents',
  'purge',
  'health',
] as const satisfies readonly (keyof Store)[];

export interface StoreTiming {
  latency: HistogramsBy;
  faults: CountsBy;
}

export function timedStore(store: Store, timing: StoreTiming): Store {
  const wrapped = new Map<PropertyKey, unknown>();
  for (const op of TIMED_STORE_OPS) {
    const fn = (store[op] as (...args: unknown[]) => Promise<unknown>).bind(store);
    const latency = timing.latency.get(op);
    // The decision log answers a batch of events with one promise: timed once, from its first event.
    let last: Promise<unknown> | undefined;
    wrapped.set(op, (...args: unknown[]) => {
      const t0 = performance.now();
      let p: Promise<unknown>;
      try {
        p = fn(...args);
      } catch (err) {
        timing.faults.add(op);
        throw err;
      }
      if (p === last) return p;
      last = p;
      p.then(
        () => latency.observe(performance.now() - t0),
        () => {
          latency.observe(performance.now() - t0);
          timing.faults.add(op);
        },
      );
      return p;
    });
  }
  return new Proxy(store, {
    get(target, prop) {
      const w = wrapped.get(prop);
      if (w !== undefined) return w;
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const bound = (v as (...a: unknown[]) => unknown).bind(target);
      wrapped.set(prop, bound);
      return bound;
    },
  });
}
