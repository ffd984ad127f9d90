// Who may change things on the dashboard: sessions kept in memory (a
// restart logs everyone out) opened by the login form, whose password or
// token web.auth checks (src/report/web/auth.ts), and a limit on wrong
// passwords per client so the password cannot be guessed at line rate.

import { randomBytes } from 'node:crypto';
import { formatNetwork, parseNetwork, widen } from '../../../core/cidr.js';

/** Checks a password or token typed into the login form: the user it logs in as (recorded as who made a change), or undefined. */
export interface DashboardAuth {
  check(password: string): Promise<string | undefined>;
}

export interface Session {
  id: string;
  user: string;
  createdAt: number;
  lastSeen: number;
}

/** Sessions in memory: idle ones end after `idleMs`, every one after `maxAgeMs`; the oldest go beyond `max`. */
export class Sessions {
  private readonly byId = new Map<string, Session>();

  constructor(
    private readonly now: () => number,
    private readonly idleMs = 8 * 3600_000,
    private readonly maxAgeMs = 24 * 3600_000,
    private readonly max = 1000,
  ) {}

  open(user: string): Session {
    const t = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), user, createdAt: t, lastSeen: t };
    this.byId.set(s.id, s);
    while (this.byId.size > this.max) this.byId.delete(this.byId.keys().next().value as string);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined || id.length > 100) return undefined;
    const s = this.byId.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.idleMs || t - s.createdAt > this.maxAgeMs) {
      this.byId.delete(id);
      return undefined;
    }
    s.lastSeen = t;
    return s;
  }

  close(id: string | undefined): void {
    if (id !== undefined) this.byId.delete(id);
  }
}

/**
 * Wrong passwords per client (an IPv6 client by its /64): after `max`
 * within `windowMs`, further attempts are refused until the window has
 * passed, without checking the password (so a right one does not help).
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly now: () => number,
    readonly max = 5,
    readonly windowMs = 15 * 60_000,
  ) {}

  private keyOf(ip: string): string {
    const n = parseNetwork(ip);
    if (!n) return ip.slice(0, 64);
    return n.v6 ? formatNetwork(widen(n, 64)) : formatNetwork(n);
  }

  private recent(key: string): number[] {
    const t = this.now();
    const list = (this.failures.get(key) ?? []).filter((x) => t - x < this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  /** Seconds until this client may try again; 0 when it may now. */
  waitSeconds(ip: string): number {
    const list = this.recent(this.keyOf(ip));
    if (list.length < this.max) return 0;
    return Math.max(1, Math.ceil((list[list.length - this.max] + this.windowMs - this.now()) / 1000));
  }

  fail(ip: string): void {
    const key = this.keyOf(ip);
    const list = this.recent(key);
    list.push(this.now());
    this.failures.set(key, list);
    // Bounded memory under a spray from many addresses: forget the oldest clients.
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value as string);
  }

  succeed(ip: string): void {
    this.failures.delete(this.keyOf(ip));
  }
}
