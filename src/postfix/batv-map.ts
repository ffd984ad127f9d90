// The two Postfix lookup tables of BATV, served over socketmap:
//   batv-sign   sender_canonical_maps:    user@signing.domain → prvs=TAG=user@signing.domain
//   batv-strip  recipient_canonical_maps: prvs=TAG=user@signing.domain → user@signing.domain,
//               for tags made with one of our keys only (a made-up tag stays as it is)
// Postfix decides which mail is signed (the cleanup service of the submission
// port, sender_canonical_classes = envelope_sender; docs/batv.md); these maps
// only know the signing domains and the keys.

import { batvOwnTag, batvSign, batvStrip, type BatvKeys } from '../checks/batv-tag.js';
import type { Clock } from '../core/types.js';
import type { SocketmapLookup } from './socketmap.js';

export interface BatvMapOptions {
  keys: BatvKeys;
  domains: ReadonlySet<string>;
  validDays: number;
  clock: Clock;
}

const MAX_ADDRESS = 320;

function domainOf(key: string): string | undefined {
  const at = key.lastIndexOf('@');
  if (at <= 0 || at === key.length - 1) return undefined;
  return key.slice(at + 1).toLowerCase();
}

export function batvMaps(opts: BatvMapOptions): Map<string, SocketmapLookup> {
  const sign: SocketmapLookup = (key) => {
    const domain = domainOf(key);
    if (key.length > MAX_ADDRESS || !domain || !opts.domains.has(domain) || /\s/.test(key)) return { notFound: true };
    if (batvStrip(key) !== undefined) return { notFound: true };
    return { ok: batvSign(key, opts.keys, opts.clock.now(), opts.validDays) };
  };
  const strip: SocketmapLookup = (key) => {
    const domain = domainOf(key);
    if (key.length > MAX_ADDRESS || !domain || !opts.domains.has(domain)) return { notFound: true };
    // Only tags we made (key and hash; their age is the policy's business at RCPT).
    const plain = batvOwnTag(key, opts.keys);
    return plain === undefined ? { notFound: true } : { ok: plain };
  };
  return new Map([
    ['batv-sign', sign],
    ['batv-strip', strip],
  ]);
}
