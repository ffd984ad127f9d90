// Forward lookups in the client's address family, shared by the checks that
// ask "does this name lead back to the client?" (mx, fcrdns, helo).

import { isIP } from 'node:net';
import { isDnsError, type DnsError, type Resolver } from '../dns/types.js';
import { normaliseIp } from '../dns/reverse.js';

export type Family = 4 | 6;

/** The client IP normalised (`::ffff:a.b.c.d` → `a.b.c.d`) with its family. */
export function clientAddress(ip: string): { ip: string; family: Family } {
  const n = normaliseIp(ip);
  return { ip: n, family: isIP(n) === 6 ? 6 : 4 };
}

/** Addresses of `name` in one family, normalised; [] when the name has none. Faults reject. */
export async function addressesOf(resolver: Resolver, name: string, family: Family): Promise<string[]> {
  try {
    const list = family === 4 ? await resolver.a(name) : await resolver.aaaa(name);
    return list.flatMap((a) => {
      try {
        return [normaliseIp(a)];
      } catch {
        return []; // a garbage answer never matches
      }
    });
  } catch (e) {
    if (isDnsError(e) && e.isVoid) return [];
    throw e;
  }
}

export type Lookup<T> = { ok: true; value: T } | { ok: false; error: DnsError };

/** Run a lookup, keeping a DNS fault as a value so one failing name does not sink its siblings. */
export async function settle<T>(p: Promise<T>): Promise<Lookup<T>> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    if (isDnsError(e)) return { ok: false, error: e };
    throw e;
  }
}
