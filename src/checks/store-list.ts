// Named lists kept in the store (`frontline list add NAME ENTRY`), matched
// like the config's lists: `list:NAME` in a rule consults the config list
// of that name (if any) and the store list of that name. The store answers
// from its in-memory index, so this costs no I/O.
//
// What is matched: the config list's `match` when there is one; for a list
// only in the store, by the kind of its entries — ip: the client address,
// domain: the sender's domain, address: the sender's address, asn: the AS
// number announcing the client, from the configured IP-to-AS table (without
// one an AS list matches nothing, and its evidence says why).

import type { Envelope, Evidence } from '../core/types.js';
import { domainOf, sharedEvidence, stringList, timed } from './evidence.js';
import type { CheckContext } from './types.js';

/** What a list is matched against (as the config's `lists.NAME.match`). */
export type ListField = 'client' | 'sender' | 'helo' | 'rcpt';

export interface StoreListOptions {
  /** Check name (`list:NAME`). */
  name: string;
  /** Store list name. */
  list: string;
  /** What to match (the config list's `match`); undefined = by the kind of the store list. */
  field?: ListField;
  /** The IP-to-AS table (`asn.table`), for lists of AS numbers. */
  asn?: AsnLookup;
}

/** IP → AS number; 0 when the table does not know the address. */
export interface AsnLookup {
  asnOf(ip: string): number;
  /** AS number and country (sasl_spread); absent where only the number is known. */
  lookup?(ip: string): { asn: number; country: string } | undefined;
}

/** The "no such list" answers of each list check, by client IP (sharedEvidence). */
const emptyListAnswers = new WeakMap<StoreListOptions, (ip: string) => Evidence>();

/** The answer at once when the store has no such list (the usual case for allow/deny lists kept in config). */
export function storeListQuick(env: Envelope, ctx: Pick<CheckContext, 'store'>, opts: StoreListOptions): Evidence | undefined {
  if (ctx.store?.lookup.listKind(opts.list)) return undefined;
  let answer = emptyListAnswers.get(opts);
  if (answer === undefined) {
    answer = sharedEvidence((ip) => ({ check: opts.name, result: 'unlisted', detail: `list ${opts.list} has no entries`, ms: 0, data: { field: opts.field ?? 'client', value: ip } }));
    emptyListAnswers.set(opts, answer);
  }
  return answer(env.clientIp);
}

export function checkStoreList(env: Envelope, ctx: CheckContext, opts: StoreListOptions): Promise<Evidence> {
  return timed(opts.name, async () => {
    const store = ctx.store;
    const kind = store?.lookup.listKind(opts.list);
    if (!store || !kind) return { result: 'unlisted', detail: `list ${opts.list} has no entries`, data: { field: opts.field ?? 'client', value: env.clientIp } };
    const field: ListField = opts.field ?? (kind === 'ip' || kind === 'asn' ? 'client' : 'sender');
    const values: string[] = [];
    if (kind === 'ip') {
      if (field === 'client') values.push(env.clientIp);
    } else if (kind === 'asn') {
      if (!opts.asn) return { result: 'unlisted', detail: `list ${opts.list} holds AS numbers, but no IP-to-AS table is configured (asn.table)`, data: { field: 'client', value: env.clientIp } };
      const asn = opts.asn.asnOf(env.clientIp);
      if (asn === 0) return { result: 'unlisted', detail: `client ${env.clientIp} is in no AS of the table; not in list ${opts.list}`, data: { field: 'client', value: env.clientIp } };
      values.push(`AS${asn}`);
    } else if (kind === 'address') {
      const a = field === 'sender' ? env.from : field === 'rcpt' ? env.rcpts[env.rcpts.length - 1] : undefined;
      if (a) values.push(a);
    } else if (kind === 'domain') {
      if (field === 'client') {
        const fc = await ctx.evidence('fcrdns');
        values.push(...stringList(fc.data?.names));
      } else if (field === 'helo') {
        if (env.helo) values.push(env.helo);
      } else {
        const d = domainOf(field === 'sender' ? env.from : env.rcpts[env.rcpts.length - 1]);
        if (d) values.push(d);
      }
    }
    for (const value of values) {
      const entry = store.lookup.listMatch(opts.list, value);
      if (entry !== undefined) {
        return {
          result: 'listed',
          detail: `${field} ${value} is in list ${opts.list} (store entry ${entry})`,
          data: { field, value, entry, matched: kind, source: 'store' },
        };
      }
    }
    const value = values[0] ?? (field === 'client' ? env.clientIp : undefined);
    return { result: 'unlisted', detail: `${field} ${value ?? '(none)'} is not in list ${opts.list}`, data: { field, value } };
  });
}
