// ARC (RFC 8617): is the chain of ARC sets that forwarders added intact?
// Recorded as evidence only: what an intact chain is worth (trusting a known
// forwarder's Authentication-Results when DMARC fails) is a policy decision.
// Verification is mailauth's: its DKIM verifier parses the chain and checks the
// newest ARC-Message-Signature, its arc() checks every ARC-Seal.

import type { DNSResolver } from 'mailauth';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { arc as verifyArc } from 'mailauth/lib/arc/index.js';
import type { Envelope, Evidence } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { timed } from './evidence.js';
import { mailauthResolver, type MailauthResolver } from './mailauth-resolver.js';
import { messageHeader } from './message.js';
import type { CheckContext } from './types.js';

export interface ArcOptions {
  /** Shortest RSA key accepted, in bits (default 1024). */
  minBitLength?: number;
}

const ARC_FIELDS = new Set(['arc-seal', 'arc-message-signature', 'arc-authentication-results']);
/** mailauth's answers for "no such key": a permanent result, unlike every other DNS error. */
const VOID_CODES = new Set(['ENOTFOUND', 'ENODATA']);

/** A mailauth resolver that remembers the names whose lookup failed temporarily. */
function faultRecording(resolver: Resolver): { resolve: MailauthResolver; faulted: Set<string> } {
  const inner = mailauthResolver(resolver);
  const faulted = new Set<string>();
  return {
    faulted,
    resolve: async (name, rrtype) => {
      try {
        return await inner(name, rrtype);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (typeof code !== 'string' || !VOID_CODES.has(code)) faulted.add(name.toLowerCase().replace(/\.$/, ''));
        throw e;
      }
    },
  };
}

interface ParsedTag {
  value?: unknown;
}
type ChainEntry = Record<string, { parsed?: Record<string, ParsedTag | undefined> } | number | undefined>;

function tag(entry: ChainEntry | undefined, header: string, name: string): string | undefined {
  const h = entry?.[header];
  if (typeof h !== 'object') return undefined;
  const v = h.parsed?.[name]?.value;
  return typeof v === 'string' ? v.toLowerCase() : undefined;
}

/** Key names the chain's signatures point at (`s._domainkey.d`). */
function arcKeyNames(chain: ChainEntry[]): Set<string> {
  const names = new Set<string>();
  for (const entry of chain) {
    for (const header of ['arc-seal', 'arc-message-signature']) {
      const s = tag(entry, header, 's');
      const d = tag(entry, header, 'd');
      if (s && d) names.add(`${s}._domainkey.${d}`);
    }
  }
  return names;
}

export function checkArc(env: Envelope, ctx: CheckContext, opts: ArcOptions = {}): Promise<Evidence> {
  return timed('arc', async () => {
    if (!env.message) return { result: 'none', detail: 'message not seen' };
    // Most mail carries no ARC set: answer without hashing the body.
    const { fields } = messageHeader(env.message);
    if (!fields.some((f) => ARC_FIELDS.has(f.key))) return { result: 'none', detail: 'message has no ARC headers', data: { instances: 0 } };
    // The ARC-Message-Signature covers the body: a body cut at a size limit verifies nothing.
    if (env.messageTruncated) return { result: 'none', detail: 'ARC chain not verified: message body truncated (milter.max_body)', data: { instances: 0 } };

    const { resolve, faulted } = faultRecording(ctx.resolver);
    const resolver = resolve as DNSResolver;
    const verified = await dkimVerify(env.message, { resolver, curTime: new Date(ctx.clock.now()), minBitLength: opts.minBitLength });
    const arcData = verified.arc ?? { chain: false as const };
    const chain = (Array.isArray(arcData.chain) ? arcData.chain : []) as unknown as ChainEntry[];
    const last = chain[chain.length - 1];
    const lastSigner = tag(last, 'arc-seal', 'd');
    const data: Record<string, unknown> = { instances: chain.length };
    if (lastSigner) data.lastSigner = lastSigner;

    if (arcData.error && chain.length === 0) {
      // The sets do not even form a chain (missing or duplicate instances, …): a broken chain.
      data.instances = fields.filter((f) => f.key === 'arc-seal').length;
      return { result: 'fail', detail: `ARC chain is malformed: ${arcData.error.message}`, data };
    }

    let status: { result: string; comment?: string };
    try {
      const r = await verifyArc(arcData as Parameters<typeof verifyArc>[0], { resolver, minBitLength: opts.minBitLength });
      status = r.status;
      const ar = r.authenticationResults;
      if (r.status.result === 'pass' && ar) data.authResults = ar;
    } catch (e) {
      // mailauth 4.13 throws on a weak seal key instead of reporting it.
      status = { result: 'fail', comment: (e as Error).message };
    }

    const comment = status.comment ? ` (${status.comment})` : '';
    if (status.result === 'pass') return { result: 'pass', detail: `ARC chain of ${chain.length} set${chain.length === 1 ? '' : 's'} verifies; last sealed by ${lastSigner}${comment}`, data };
    if (status.result === 'none') return { result: 'none', detail: 'message has no ARC chain', data };
    // mailauth counts every failure as permanent; a key we could not fetch may still verify later.
    const keys = arcKeyNames(chain);
    const faults = [...faulted].filter((n) => keys.has(n));
    if (faults.length > 0) return { result: 'temperror', detail: `ARC key lookup failed for ${faults.join(', ')}`, data };
    return { result: 'fail', detail: `ARC chain of ${chain.length} set${chain.length === 1 ? '' : 's'} does not verify${comment}`, data };
  });
}
