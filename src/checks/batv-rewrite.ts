// The two address rewrites of BATV, shared by the frontends that apply them:
// Postfix's socketmap tables (src/postfix/batv-map.ts) and the gate when it
// stands in the outbound path (gate.outbound). sign: user@signing.domain →
// prvs=TAG=user@signing.domain; strip: a tag made with one of our keys (key
// and hash; its age is the policy's business at RCPT) → the bare address.
// undefined: leave the address as it is.

import { batvOwnTag, batvSign, batvStrip, type BatvKeys } from './batv-tag.js';
import type { Clock } from '../core/types.js';

export interface BatvRewriteOptions {
  keys: BatvKeys;
  /** Lower-case domains that sign their senders. */
  domains: ReadonlySet<string>;
  validDays: number;
  clock: Clock;
}

export interface BatvRewriter {
  sign(sender: string): string | undefined;
  strip(rcpt: string): string | undefined;
}

const MAX_ADDRESS = 320;

function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return address.slice(at + 1).toLowerCase();
}

export function batvRewriter(opts: BatvRewriteOptions): BatvRewriter {
  const ours = (address: string) => {
    const domain = domainOf(address);
    return address.length <= MAX_ADDRESS && domain !== undefined && opts.domains.has(domain) && !/\s/.test(address);
  };
  return {
    sign: (sender) => (ours(sender) && batvStrip(sender) === undefined ? batvSign(sender, opts.keys, opts.clock.now(), opts.validDays) : undefined),
    strip: (rcpt) => (ours(rcpt) ? batvOwnTag(rcpt, opts.keys) : undefined),
  };
}
