// Connection admission: at most N clients at once, M per client, and R new
// connections per client per minute (a fixed one-minute window per client, so
// memory is one small record per recently seen client). A client is its
// ClientKey: an IPv4 address, an IPv6 /64 (client-key.ts). Also says when the
// gate is overloaded, so sessions shrink their timeouts as postscreen does.

import type { Clock } from '../core/types.js';
import type { IpList } from '../checks/lists.js';
import type { ClientKey } from './client-key.js';

export interface LimitSettings {
  connections: number;
  perIp: number;
  perIpPerMinute: number;
  overloadFraction: number;
  exempt: IpList;
  /** Who counts as one client (an IPv6 client by its prefix). */
  key: ClientKey;
}

export type Admission = { ok: true } | { ok: false; reason: 'connections' | 'per_ip' | 'rate'; detail: string };

const WINDOW_MS = 60_000;

export class ConnectionLimits {
  private active = 0;
  private readonly perIp = new Map<string, number>();
  private readonly rate = new Map<string, { start: number; count: number }>();
  private lastSweep = 0;

  constructor(
    private readonly s: LimitSettings,
    private readonly clock: Clock,
  ) {}

  get connections(): number {
    return this.active;
  }

  get overloaded(): boolean {
    return this.active > this.s.connections * this.s.overloadFraction;
  }

  /** Admit a new connection (and count it) or say why not. */
  admit(ip: string): Admission {
    const now = this.clock.now();
    this.sweep(now);
    if (this.active >= this.s.connections) {
      return { ok: false, reason: 'connections', detail: `${this.active} connections at once (limit ${this.s.connections})` };
    }
    const key = this.s.key(ip);
    if (!this.s.exempt.has(ip)) {
      const n = this.perIp.get(key) ?? 0;
      if (n >= this.s.perIp) {
        return { ok: false, reason: 'per_ip', detail: `${n} connections at once from ${key} (limit ${this.s.perIp})` };
      }
      if (this.s.perIpPerMinute > 0) {
        let w = this.rate.get(key);
        if (!w || now - w.start >= WINDOW_MS) {
          w = { start: now, count: 0 };
          this.rate.set(key, w);
        }
        if (w.count >= this.s.perIpPerMinute) {
          return { ok: false, reason: 'rate', detail: `${w.count} connections from ${key} in the last minute (limit ${this.s.perIpPerMinute})` };
        }
        w.count++;
      }
    }
    this.active++;
    this.perIp.set(key, (this.perIp.get(key) ?? 0) + 1);
    return { ok: true };
  }

  release(ip: string): void {
    this.active = Math.max(0, this.active - 1);
    const key = this.s.key(ip);
    const n = (this.perIp.get(key) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(key);
    else this.perIp.set(key, n);
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < WINDOW_MS) return;
    this.lastSweep = now;
    for (const [ip, w] of this.rate) if (now - w.start >= WINDOW_MS) this.rate.delete(ip);
  }
}
