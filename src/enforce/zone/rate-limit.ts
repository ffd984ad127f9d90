// Responses per second to one client address over UDP, so the zone cannot
// be used to flood a third party whose address a attacker writes into the
// queries' source (an "amplifier": a query of ~40 bytes draws a TXT answer
// of several hundred). A token bucket per IPv4 address or IPv6 /56, kept in
// a Map bounded in size (the oldest client is forgotten first).
//
// TCP is not limited here: its handshake proves the source address.

import { parseNetwork } from '../../core/cidr.js';

export interface RateLimitOptions {
  /** Tokens per second; 0 = no limit. */
  perSecond: number;
  burst: number;
  /** Clients remembered at most. */
  maxClients?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class ResponseRateLimit {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxClients: number;

  constructor(private readonly opts: RateLimitOptions) {
    this.maxClients = opts.maxClients ?? 100_000;
  }

  get enabled(): boolean {
    return this.opts.perSecond > 0;
  }

  /** May `address` have one more response at `now` (ms)? */
  take(address: string, now: number): boolean {
    if (this.opts.perSecond <= 0) return true;
    const key = clientKey(address);
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value as string);
      b = { tokens: this.opts.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) / 1000) * this.opts.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** IPv4 (mapped too) by address, IPv6 by its /56: one site's addresses share a budget. */
export function clientKey(address: string): string {
  if (!address.includes(':') || address.startsWith('::ffff:')) return address.replace(/^::ffff:/, '');
  const n = parseNetwork(address);
  if (!n || !n.v6) return address;
  return `${n.words[0].toString(16)}:${(n.words[1] >>> 8).toString(16)}/56`;
}
