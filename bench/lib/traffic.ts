// The cold and warm workloads of bench/policy-server.ts: traffic shaped like
// what a mail server's port 25 sees, rather than five envelopes repeated.
//
// Clients are numbered; client i has an address of its own in 198.18.0.0/15
// (RFC 2544's benchmarking range, 131,072 addresses) and one of three
// shapes, published in the fixture DNS zone built here:
//   i % 5 = 0, 1, 2  a bot with a generic PTR (dyn-198-18-x-y.pool.cold.test,
//                    forward-confirmed) forging a big ISP without SPF
//                    (u<i>@bigisp.test)                  → 554 by the OR rule
//   i % 5 = 3        a bot without PTR forging a provider whose SPF ends in
//                    -all (u<i>@bigprovider.test)       → 554 (SPF fail)
//   i % 5 = 4        a small mail server of its own domain d<i>.cold.test:
//                    PTR = HELO = mail.d<i>.cold.test, SPF ip4:<its address>
//                    → passes every rule; greylisted on first sight
// Every sender is distinct, so postgrey, which keys on the /24, the sender
// and the recipient, sees a new triplet for every new client too.
//
// cold: request n comes from client n (every request a new client; the
//       sender domains' shared records — bigisp.test, bigprovider.test — are
//       the only DNS a cache can reuse).
// warm: request n comes from client n % 1,000 (known clients repeating: the
//       DNS and evidence caches hold them, their triplets passed greylisting
//       during the warm-up).

import { reverseName } from '../../src/dns/reverse.js';
import { rcptRequest } from '../../test/helpers/policy-client.js';
import { encodeAttributes, type LoadRequest } from './policy-load.js';

export type Workload = 'cold' | 'warm';

/** Addresses in 198.18.0.0/15. */
export const CLIENT_POOL = 131_072;
export const WARM_CLIENTS = 1_000;

type Shape = 'bot' | 'bot-noptr' | 'server';

function shapeOf(i: number): Shape {
  const k = i % 5;
  return k < 3 ? 'bot' : k === 3 ? 'bot-noptr' : 'server';
}

function addressOf(i: number): string {
  const n = i % CLIENT_POOL;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

interface Client {
  address: string;
  shape: Shape;
  /** The attributes Postfix sends that are the client's, encoded; recipient and instance are added per request. */
  fixed: string;
}

function client(i: number): Client {
  const address = addressOf(i);
  const shape = shapeOf(i);
  const name = shape === 'server' ? `mail.d${i}.cold.test` : shape === 'bot' ? `dyn-${address.replace(/\./g, '-')}.pool.cold.test` : 'unknown';
  const helo = shape === 'server' ? name : `DESKTOP-${(i * 2654435761 >>> 0).toString(16).toUpperCase()}`;
  const sender = shape === 'server' ? `info@d${i}.cold.test` : `u${i}@${shape === 'bot' ? 'bigisp.test' : 'bigprovider.test'}`;
  const { instance: _i, recipient: _r, client_port: _p, ...rest } = rcptRequest({ client_address: address, client_name: name, reverse_client_name: name, helo_name: helo, sender });
  return { address, shape, fixed: encodeAttributes(rest as Record<string, string>) };
}

/** Zone data (test/fixtures/world.yaml's shape) for every client of the pool, to load beside world.yaml. */
export function trafficZone(): Record<string, unknown> {
  const zone: Record<string, unknown> = {};
  for (let i = 0; i < CLIENT_POOL; i++) {
    const address = addressOf(i);
    const shape = shapeOf(i);
    if (shape === 'bot') {
      const ptr = `dyn-${address.replace(/\./g, '-')}.pool.cold.test`;
      zone[reverseName(address)] = [{ PTR: ptr }];
      zone[ptr] = [{ A: address }];
    } else if (shape === 'server') {
      const host = `mail.d${i}.cold.test`;
      zone[reverseName(address)] = [{ PTR: host }];
      zone[host] = [{ A: address }];
      zone[`d${i}.cold.test`] = [{ TXT: `v=spf1 ip4:${address} -all` }, { MX: [10, host] }];
    }
  }
  return zone;
}

/** What each server must answer, by client shape; `first` = the client's triplet is new (cold), else it passed greylisting. */
export type Judge = (shape: Shape, action: string) => boolean;

export const FRONTLINE_JUDGE: Record<Workload, Judge> = {
  cold: (shape, a) => (shape === 'server' ? a.startsWith('450 4.7.1 ') : a.startsWith('554 5.7.1 ')),
  // A server's triplet passed in the warm-up; one whose retry has not yet come may still be greylisted.
  warm: (shape, a) => (shape === 'server' ? a.startsWith('PREPEND Authentication-Results:') || a.startsWith('450 4.7.1 ') : a.startsWith('554 5.7.1 ')),
};

export const POSTGREY_JUDGE: Record<Workload, Judge> = {
  cold: (_shape, a) => a.startsWith('DEFER_IF_PERMIT'),
  warm: (_shape, a) => a === 'DUNNO' || a.startsWith('PREPEND X-Greylist:') || a.startsWith('DEFER_IF_PERMIT'),
};

/** The request generator of a workload, for runPolicyLoad. Clients are built once each, when first used. */
export function trafficRequests(workload: Workload, judge: Judge): (n: number, conn: number) => LoadRequest {
  const clients = new Map<number, Client>();
  return (n, conn) => {
    // Past the pool (more than 131,072 requests in one run) cold clients come round again.
    const i = workload === 'cold' ? n % CLIENT_POOL : n % WARM_CLIENTS;
    let c = clients.get(i);
    if (!c) {
      c = client(i);
      // Cold clients are seen once: keep none of them.
      if (workload === 'warm') clients.set(i, c);
    }
    const shape = c.shape;
    return {
      wire: `${c.fixed}recipient=user${i % 50}@dest.example\ninstance=${conn}.${n}.bench\nclient_port=${10000 + (n % 50000)}\n\n`,
      ok: (action) => judge(shape, action),
    };
  };
}
