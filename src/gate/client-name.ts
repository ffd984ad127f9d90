// The client's host name for the backend (XCLIENT NAME / REVERSE_NAME,
// XFORWARD NAME) and the envelope's clientPtr: the first PTR name whose A or
// AAAA records lead back to the client IP. Bounded in time; a lookup fault
// gives [TEMPUNAVAIL], so the backend can defer rather than reject.

import { isDnsError, type Resolver } from '../dns/types.js';

export interface ClientName {
  /** Forward-confirmed name. */
  name?: string;
  /** First PTR name, confirmed or not. */
  reverseName?: string;
  tempFail: boolean;
}

const MAX_NAMES = 10;

export async function lookupClientName(resolver: Resolver, ip: string, timeoutMs: number): Promise<ClientName> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ClientName>((resolve) => {
    timer = setTimeout(() => resolve({ tempFail: true }), timeoutMs);
  });
  try {
    return await Promise.race([lookup(resolver, ip), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function lookup(resolver: Resolver, ip: string): Promise<ClientName> {
  let ptr: string[];
  try {
    ptr = (await resolver.ptr(ip)).map((n) => n.toLowerCase().replace(/\.$/, ''));
  } catch (e) {
    return { tempFail: !(isDnsError(e) && e.isVoid) };
  }
  const names = ptr.slice(0, MAX_NAMES);
  const family6 = ip.includes(':');
  let tempFail = false;
  for (const name of names) {
    try {
      const addrs = family6 ? await resolver.aaaa(name) : await resolver.a(name);
      if (addrs.includes(ip)) return { name, reverseName: ptr[0], tempFail: false };
    } catch (e) {
      if (!(isDnsError(e) && e.isVoid)) tempFail = true;
    }
  }
  return { reverseName: ptr[0], tempFail };
}
