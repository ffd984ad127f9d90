// frontline's own DNSBL and DNSWL zone (docs/enforce.md): start it from the
// config, beside the policy server, when `zone.listen` is set.

import os from 'node:os';
import { resolve } from 'node:path';
import type { Config } from '../../config/load.js';
import type { Clock } from '../../core/types.js';
import { parseListenAddress } from '../../config/address.js';
import { IpTrie, loadListFile, type Store, type StoreLogger } from '../../store/index.js';
import { isValidHostname } from '../../checks/hostname.js';
import type { AnswerContext, ZoneApex } from './answer.js';
import { WL_CODES } from './codes.js';
import { ZoneData, type ListedList } from './data.js';
import { ZoneServer } from './server.js';

export { ZoneData } from './data.js';
export { ZoneServer } from './server.js';
export { exportZone, EXPORT_FORMATS, type ExportFormat } from './export.js';

const systemClock: Clock = { now: () => Date.now() };

export interface RunningZone {
  /** `host:port` of each listener (port 0 in the config: the real port). */
  addresses: string[];
  data: ZoneData;
  server: ZoneServer;
  context: AnswerContext;
  close(): Promise<void>;
}

/** The allow zone's lists and codes: zone.wl_lists, or allow + the SPF-walked list + the correspondents' list. */
export function wlListsOf(config: Config): ListedList[] {
  const spf = config.intel.spf_whitelist;
  const corr = config.intel.correspondents;
  const names = config.zone.wl_lists ?? ['allow', ...(spf.enabled ? [spf.list] : []), ...(corr.enabled ? [corr.list] : [])];
  return names.map((name) => ({
    name,
    code: name === 'allow' ? WL_CODES.allow : name === spf.list ? WL_CODES.spfWalked : name === corr.list ? WL_CODES.correspondents : WL_CODES.other,
  }));
}

/** The config's `lists:` of type ip among `names`, loaded (files too; bad lines skipped and logged). */
async function staticLists(config: Config, names: readonly string[], logger?: StoreLogger): Promise<Map<string, IpTrie>> {
  const out = new Map<string, IpTrie>();
  for (const name of names) {
    const list = config.lists[name];
    if (!list || list.type !== 'ip' || (list.match ?? 'client') !== 'client') continue;
    const trie = new IpTrie();
    for (const e of list.entries) trie.insert(e, Infinity);
    for (const file of list.files) {
      try {
        const { entries, bad } = await loadListFile(resolve(file), 'ip');
        for (const e of entries) trie.insert(e, Infinity);
        if (bad.length > 0) logger?.warn({ list: name, file, bad: bad.length }, 'zone: lines of a list file skipped');
      } catch (err) {
        logger?.warn({ list: name, file, err: (err as Error).message }, 'zone: list file unreadable');
      }
    }
    out.set(name, trie);
  }
  return out;
}

function trieOf(cidrs: readonly string[]): IpTrie {
  const t = new IpTrie();
  for (const c of cidrs) t.insert(c, Infinity);
  return t;
}

function nsName(config: Config): string {
  if (config.zone.ns) return config.zone.ns;
  const h = os.hostname().toLowerCase();
  return isValidHostname(h) ? h : 'localhost';
}

/** The zone data and answer context the config describes (no sockets: `frontline zone export` uses it too). */
export async function zoneContext(config: Config, deps: { store: Store; clock?: Clock; logger?: StoreLogger; refreshMs?: number }): Promise<AnswerContext> {
  const z = config.zone;
  const wlLists = wlListsOf(config);
  const data = new ZoneData({
    store: deps.store,
    clock: deps.clock ?? systemClock,
    logger: deps.logger,
    blLists: z.bl_lists,
    wlLists,
    staticLists: await staticLists(config, [...z.bl_lists, ...wlLists.map((l) => l.name)], deps.logger),
    neverBlock: trieOf(config.my_networks),
    refreshMs: deps.refreshMs,
  });
  await data.start();
  const zones: ZoneApex[] = [{ id: 'bl', apex: z.bl_name, hostmaster: z.hostmaster ?? `hostmaster.${z.bl_name}` }];
  if (z.wl_name) zones.push({ id: 'wl', apex: z.wl_name, hostmaster: z.hostmaster ?? `hostmaster.${z.wl_name}` });
  return { zones, data, ns: nsName(config), ttlS: z.ttl_s, negativeTtlS: z.negative_ttl_s };
}

/** Start the zone server on every zone.listen address; undefined when zone.listen is not set. */
export async function startZone(config: Config, deps: { store: Store; clock?: Clock; logger?: StoreLogger }): Promise<RunningZone | undefined> {
  const z = config.zone;
  if (z.listen.length === 0) return undefined;
  const clock = deps.clock ?? systemClock;
  const context = await zoneContext(config, deps);
  const server = new ZoneServer({
    context,
    clock,
    allowFrom: trieOf(z.allow_from ?? ['127.0.0.0/8', '::1/128', ...config.my_networks]),
    rateLimit: { perSecond: z.rate_limit.per_s, burst: z.rate_limit.burst, slip: z.rate_limit.slip },
    tcp: { maxConnections: z.tcp.max_connections, idleTimeoutS: z.tcp.idle_timeout_s },
    logger: deps.logger,
  });
  const addresses: string[] = [];
  try {
    for (const l of z.listen) {
      const { host, port } = parseListenAddress(l)!;
      const bound = await server.listen(host, port);
      addresses.push(host.includes(':') ? `[${host}]:${bound}` : `${host}:${bound}`);
    }
  } catch (err) {
    await server.close();
    context.data.stop();
    throw new Error(`zone: cannot listen on ${z.listen.join(', ')}: ${(err as Error).message}`, { cause: err });
  }
  return {
    addresses,
    data: context.data,
    server,
    context,
    async close() {
      await server.close();
      context.data.stop();
    },
  };
}
