// The two Postfix lookup tables of BATV, served over socketmap:
//   batv-sign   sender_canonical_maps:    user@signing.domain → prvs=TAG=user@signing.domain
//   batv-strip  recipient_canonical_maps: prvs=TAG=user@signing.domain → user@signing.domain,
//               for tags made with one of our keys only (a made-up tag stays as it is)
// Postfix decides which mail is signed (the cleanup service of the submission
// port, sender_canonical_classes = envelope_sender; docs/batv.md); these maps
// only know the signing domains and the keys (src/checks/batv-rewrite.ts).

import { batvRewriter, type BatvRewriteOptions } from '../checks/batv-rewrite.js';
import type { SocketmapAnswer, SocketmapLookup } from './socketmap.js';

export type BatvMapOptions = BatvRewriteOptions;

function answer(value: string | undefined): SocketmapAnswer {
  return value === undefined ? { notFound: true } : { ok: value };
}

export function batvMaps(opts: BatvMapOptions): Map<string, SocketmapLookup> {
  const rewrite = batvRewriter(opts);
  return new Map<string, SocketmapLookup>([
    ['batv-sign', (key) => answer(rewrite.sign(key))],
    ['batv-strip', (key) => answer(rewrite.strip(key))],
  ]);
}
