// mailauth asks DNS through a `resolver(name, rrtype)` shaped like Node's
// dns.promises.resolve. This adapter answers from our Resolver (cache, fixture
// DNS, timeouts and all) and turns DnsError codes into the errno codes
// mailauth tests: ENOTFOUND / ENODATA mean "no key" (a permanent result);
// anything else is a DNS failure (temperror).

import { isIP } from 'node:net';
import { isDnsError, type DnsErrorCode, type Resolver } from '../dns/types.js';

/** What Node's dns.promises.resolve would have given for each type mailauth asks for. */
export type MailauthAnswer = string[] | string[][] | Array<{ exchange: string; priority: number }>;
export type MailauthResolver = (name: string, rrtype: string) => Promise<MailauthAnswer>;

const ERRNO: Record<DnsErrorCode, string> = {
  NXDOMAIN: 'ENOTFOUND',
  NODATA: 'ENODATA',
  TIMEOUT: 'ETIMEOUT',
  SERVFAIL: 'ESERVFAIL',
  REFUSED: 'EREFUSED',
  FORMERR: 'EFORMERR',
  BADNAME: 'EBADNAME',
};

/** An Error carrying a Node-style errno `code`, as dns.promises rejects with. */
export class ErrnoError extends Error {
  constructor(
    public readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ErrnoError';
  }
}

function toErrno(e: unknown): unknown {
  if (!isDnsError(e)) return e;
  return new ErrnoError(ERRNO[e.code] ?? 'ESERVFAIL', e.message);
}

/** `4.3.2.1.in-addr.arpa` → `1.2.3.4`; 32 nibbles `.ip6.arpa` → IPv6; else undefined. */
export function ipOfReverseName(name: string): string | undefined {
  const n = name.toLowerCase();
  let m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(n);
  if (m) {
    const ip = [m[4], m[3], m[2], m[1]].map(Number).join('.');
    return isIP(ip) === 4 ? ip : undefined;
  }
  m = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(n);
  if (!m) return undefined;
  const hex = m[1].split('.').filter(Boolean).reverse().join('');
  return (hex.match(/.{4}/g) ?? []).join(':');
}

export function mailauthResolver(resolver: Resolver): MailauthResolver {
  return async (rawName, rrtype) => {
    const name = rawName.replace(/\.$/, '');
    try {
      switch (rrtype.toUpperCase()) {
        case 'TXT':
          // Our TXT records are already joined; dns.resolve gives each record as its list of strings.
          return (await resolver.txt(name)).map((r) => [r]);
        case 'A':
          return await resolver.a(name);
        case 'AAAA':
          return await resolver.aaaa(name);
        case 'MX':
          return (await resolver.mx(name)).map((r) => ({ exchange: r.exchange, priority: r.preference }));
        case 'PTR': {
          // mailauth asks for the reverse name; our Resolver takes the address.
          const ip = ipOfReverseName(name);
          if (!ip) throw new ErrnoError('ENOTFOUND', `PTR ${name}: not a reverse name of an address`);
          return await resolver.ptr(ip);
        }
        default:
          throw new ErrnoError('ENOTIMP', `${rrtype} ${name}: type not supported`);
      }
    } catch (e) {
      throw toErrno(e);
    }
  };
}
