// The store room's Store as a ListSink: replaceList becomes the listDel and
// listAdd calls that turn the stored list into the wanted one, so an
// unchanged walk writes nothing but the refreshed expiries.

import type { ListKind, Store } from '../store/types.js';
import type { ListEntry, ListSink } from './list-sink.js';

export type ListStore = Pick<Store, 'listAdd' | 'listDel' | 'listShow'>;

export function storeListSink(store: ListStore, kind: ListKind = 'ip'): ListSink {
  return {
    async list(name: string): Promise<ListEntry[]> {
      return (await store.listShow(name)).map((e) => ({ value: e.entry, source: e.source, expiresAt: e.expiresAt }));
    },
    async replaceList(name: string, entries: ListEntry[]): Promise<void> {
      const current = new Map((await store.listShow(name)).map((e) => [e.entry, e]));
      const wanted = new Set(entries.map((e) => e.value));
      for (const value of current.keys()) {
        if (!wanted.has(value)) await store.listDel(name, value);
      }
      for (const e of entries) {
        const had = current.get(e.value);
        if (had && had.source === e.source && had.expiresAt === e.expiresAt) continue;
        await store.listAdd(name, e.value, { source: e.source, expiresAt: e.expiresAt, kind });
      }
    },
  };
}
