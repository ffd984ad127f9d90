// intel.self_check: are our own outgoing addresses on the DNSBLs we use? The
// seed's "keep an eye on blacklists to see if your server is causing
// trouble" — a listing usually means a hacked account or a compromised host
// sending through us, and mail to the rest of the world starts bouncing.
//
// Each address is asked of every zone with the DNSBL check itself (same
// query names, same rule that 127.255.255.x error answers and silent zones
// are not listings), without the health probes: a zone out of use for
// clients is still worth asking about ourselves. The last result is kept in
// memory for /metrics and the dashboard, and logged (warn when listed).

import type { Clock } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { checkDnsbl, type DnsblHit, type ZoneSpec } from '../checks/dnsbl.js';
import type { ScheduledJob } from './schedule.js';

export interface SelfCheckAddress {
  address: string;
  /** Zones listing the address, with their answers. */
  listedBy: Array<{ zone: string; codes: string[] }>;
  /** Zones that gave no usable answer (timeout, SERVFAIL, error code). */
  unanswered: Array<{ zone: string; reason: string }>;
}

export interface SelfCheckResult {
  checkedAt: number;
  zones: string[];
  addresses: SelfCheckAddress[];
  /** (address, zone) pairs listed. */
  listed: number;
}

export interface SelfCheckOptions {
  addresses: string[];
  zones: ZoneSpec[];
  timeoutMs: number;
  resolver: Resolver;
  clock: Clock;
}

/** Ask every zone about every address, at once. Never rejects on DNS faults (they are `unanswered`). */
export async function runSelfCheck(opts: SelfCheckOptions): Promise<SelfCheckResult> {
  const ctx = { resolver: opts.resolver, clock: opts.clock, evidence: () => Promise.reject(new Error('self_check asks no other check')) };
  const zones = [...new Set(opts.zones.map((z) => z.zone))];
  const addresses = await Promise.all(
    opts.addresses.map(async (address): Promise<SelfCheckAddress> => {
      const ev = await checkDnsbl({ clientIp: address, rcpts: [] }, ctx, { zones: opts.zones, timeoutMs: opts.timeoutMs, name: 'self_check', threshold: 1 });
      const hits = (ev.data?.hits as DnsblHit[] | undefined) ?? [];
      const listedBy = new Map<string, string[]>();
      for (const h of hits) listedBy.set(h.zone, [...new Set([...(listedBy.get(h.zone) ?? []), ...h.codes])]);
      const skipped = (ev.data?.skipped as Array<{ zone: string; reason: string }> | undefined) ?? [];
      const unanswered = ev.result === 'temperror' && skipped.length === 0 ? zones.map((zone) => ({ zone, reason: ev.detail ?? 'error' })) : skipped;
      return { address, listedBy: [...listedBy].map(([zone, codes]) => ({ zone, codes })), unanswered };
    }),
  );
  return { checkedAt: opts.clock.now(), zones, addresses, listed: addresses.reduce((n, a) => n + a.listedBy.length, 0) };
}

/** One line per run: what is listed where, what did not answer. */
export function describeSelfCheck(r: SelfCheckResult): string {
  const listed = r.addresses.flatMap((a) => a.listedBy.map((l) => `${a.address} listed by ${l.zone} (${l.codes.join(', ')})`));
  const silent = r.addresses.flatMap((a) => a.unanswered.map((u) => `${a.address} at ${u.zone}: ${u.reason}`));
  const head = listed.length > 0 ? `self check: ${listed.join('; ')}` : `self check: ${r.addresses.map((a) => a.address).join(', ')} not listed by ${r.zones.join(', ')}`;
  return silent.length > 0 ? `${head}; no answer: ${silent.join('; ')}` : head;
}

export interface SelfCheckLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The scheduled job of serve; `last` is what /metrics and the dashboard show. */
export class SelfCheck {
  last?: SelfCheckResult;

  constructor(
    private readonly opts: Omit<SelfCheckOptions, 'resolver'> & { intervalS: number },
    private readonly log: SelfCheckLogger,
  ) {}

  job(resolver: Resolver): ScheduledJob {
    return {
      name: 'self-check',
      intervalMs: this.opts.intervalS * 1000,
      run: async () => {
        const r = await runSelfCheck({ ...this.opts, resolver });
        this.last = r;
        const fields = { event: 'self-check', listed: r.listed, addresses: r.addresses };
        if (r.listed > 0) this.log.warn(fields, describeSelfCheck(r));
        else this.log.info(fields, describeSelfCheck(r));
      },
    };
  }
}
