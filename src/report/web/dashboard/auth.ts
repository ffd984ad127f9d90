// Who may change things on the dashboard: sessions (signed cookies) opened
// by the login form, whose password or
// token web.auth checks (src/report/web/auth.ts), and a limit on wrong
// passwords per client so the password cannot be guessed at line rate.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { formatNetwork, parseNetwork, widen } from '../../../core/cidr.js';

/** Checks a password or token typed into the login form: the user it logs in as (recorded as who made a change), or undefined. */
export interface DashboardAuth {
  check(password: string): Promise<string | undefined>;
}

export interface Session {
  /** The cookie's value (binds CSRF tokens to this session). */
  id: string;
  user: string;
  createdAt: number;
}

/**
 * Sessions as signed cookies (`payload.hmac`), not server state: with
 * `serve --workers N` any worker may answer a page, and each verifies the
 * cookie with the key they share (sessionKey). A session ends `maxAgeMs`
 * after login; logging out forgets the cookie in the browser and in this
 * worker, so a copied cookie stays valid on other workers until it expires.
 */
export class Sessions {
  private readonly revoked = new Map<string, number>();

  constructor(
    private readonly key: Buffer,
    private readonly now: () => number,
    readonly maxAgeMs = 12 * 3600_000,
  ) {}

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  open(user: string): Session {
    const createdAt = this.now();
    const payload = Buffer.from(JSON.stringify({ u: user, c: createdAt, n: randomBytes(12).toString('base64url') })).toString('base64url');
    return { id: `${payload}.${this.sign(payload)}`, user, createdAt };
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined || id.length > 600 || this.revoked.has(id)) return undefined;
    const dot = id.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = id.slice(0, dot);
    const mac = Buffer.from(id.slice(dot + 1));
    const want = Buffer.from(this.sign(payload));
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return undefined;
    let p: { u?: unknown; c?: unknown };
    try {
      p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { u?: unknown; c?: unknown };
    } catch {
      return undefined;
    }
    if (typeof p.u !== 'string' || typeof p.c !== 'number') return undefined;
    const t = this.now();
    if (p.c > t + 60_000 || t - p.c > this.maxAgeMs) return undefined;
    return { id, user: p.u, createdAt: p.c };
  }

  close(id: string | undefined): void {
    const s = this.get(id);
    if (!s || id === undefined) return;
    this.revoked.set(id, s.createdAt + this.maxAgeMs);
    const t = this.now();
    for (const [k, until] of this.revoked) if (until < t) this.revoked.delete(k);
  }
}

/** Environment variable through which the cluster primary hands its workers one session key. */
export const SESSION_KEY_ENV = 'FRONTLINE_WEB_SESSION_KEY';

/** The key sessions are signed with: the one the cluster primary handed down, else a new one (a restart logs everyone out). */
export function sessionKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  const k = env[SESSION_KEY_ENV];
  if (k !== undefined && /^[A-Za-z0-9_-]{43,}$/.test(k)) return Buffer.from(k, 'base64url');
  return randomBytes(32);
}

/** A new key for sessionKey (the primary sets it in SESSION_KEY_ENV for every worker). */
export function newSessionKey(): string {
  return randomBytes(32).toString('base64url');
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
