// DKIM (RFC 6376) verification of the message at end of DATA, through
// mailauth's verifier with our resolver and clock. Results use RFC 8601's
// vocabulary; mailauth's "neutral" is refined where the RFCs are clearer
// (body hash mismatch is a fail, a missing or unusable key a permerror).

import { createPublicKey } from 'node:crypto';
import type { DNSResolver } from 'mailauth';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { Envelope, Evidence, EvidenceResult } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { domainOf, stringList, timed } from './evidence.js';
import { ErrnoError, mailauthResolver, type MailauthResolver } from './mailauth-resolver.js';
import { sameOrgDomain } from './org-domain.js';
import type { CheckContext } from './types.js';

export interface DkimOptions {
  /** Key lookups at most per message; signatures beyond are reported `neutral`, unverified (default 10). */
  maxSignatures?: number;
  /** Shortest RSA key accepted, in bits (default 1024, as mailauth and RFC 8301). */
  minBitLength?: number;
}

export const DKIM_MAX_SIGNATURES = 10;

export interface DkimSignature {
  domain: string;
  selector: string;
  algo: string;
  result: EvidenceResult;
  /** RFC 8601 result text for this signature (method, result, comment, properties). */
  info: string;
  comment?: string;
}

/**
 * RFC 6376 §3.6.1 describes p= for RSA as an RSAPublicKey (PKCS#1), while
 * nearly everyone publishes a SubjectPublicKeyInfo; mailauth accepts only the
 * latter. Re-encode a bare PKCS#1 key as SPKI so both forms verify.
 */
export function spkiFromPkcs1(record: string): string {
  const m = /(^|;)(\s*p\s*=\s*)([A-Za-z0-9+/=\s]+)(;|$)/.exec(record);
  if (!m) return record;
  const der = Buffer.from(m[3].replace(/\s+/g, ''), 'base64');
  try {
    createPublicKey({ key: der, format: 'der', type: 'spki' });
    return record;
  } catch {
    // not SPKI: try PKCS#1 below
  }
  try {
    const spki = createPublicKey({ key: der, format: 'der', type: 'pkcs1' }).export({ format: 'der', type: 'spki' });
    const start = m.index + m[1].length + m[2].length;
    return record.slice(0, start) + spki.toString('base64') + record.slice(start + m[3].length);
  } catch {
    return record; // neither: let mailauth report it
  }
}

/** The key-lookup resolver: counts lookups against the cap and accepts PKCS#1 keys. */
function keyResolver(resolver: Resolver, maxLookups: number): MailauthResolver {
  const inner = mailauthResolver(resolver);
  let lookups = 0;
  return async (name, rrtype) => {
    if (++lookups > maxLookups) throw new ErrnoError('ELIMIT', `more than ${maxLookups} DKIM key lookups`);
    const answer = await inner(name, rrtype);
    if (rrtype.toUpperCase() !== 'TXT') return answer;
    return (answer as string[][]).map((rec) => [spkiFromPkcs1(rec.join(''))]);
  };
}

const KEY_PROBLEMS = new Set(['no key', 'unknown key version', 'unknown key type', 'invalid public key']);

interface MailauthStatus {
  result: string;
  comment?: string;
}

function refine(status: MailauthStatus): { result: EvidenceResult; comment?: string } {
  const comment = status.comment;
  if (status.result === 'neutral' && comment === 'body hash did not verify') return { result: 'fail', comment };
  if (status.result === 'neutral' && comment && KEY_PROBLEMS.has(comment)) return { result: 'permerror', comment };
  if (status.result === 'temperror' && comment?.includes('ELIMIT')) return { result: 'neutral', comment: 'not verified: signature limit reached' };
  const known: EvidenceResult[] = ['pass', 'fail', 'neutral', 'temperror', 'permerror', 'policy'];
  const result = known.includes(status.result as EvidenceResult) ? (status.result as EvidenceResult) : 'neutral';
  return { result, comment };
}

// Which result speaks for the message when no signature passes: one that a
// retry could turn into a pass comes first, so a DNS fault is never a fail.
const PRECEDENCE: EvidenceResult[] = ['pass', 'temperror', 'fail', 'permerror', 'policy', 'neutral'];

export function checkDkim(env: Envelope, ctx: CheckContext, opts: DkimOptions = {}): Promise<Evidence> {
  return timed('dkim', async () => {
    if (!env.message) return { result: 'none', detail: 'message not seen at this stage' };
    const verified = await dkimVerify(env.message, {
      // mailauth's type omits the MX shape; the verifier only asks for TXT.
      resolver: keyResolver(ctx.resolver, opts.maxSignatures ?? DKIM_MAX_SIGNATURES) as DNSResolver,
      curTime: new Date(ctx.clock.now()),
      minBitLength: opts.minBitLength,
    });
    const signatures: DkimSignature[] = verified.results
      .filter((r) => r.signingDomain)
      .map((r) => {
        const { result, comment } = refine(r.status);
        const domain = r.signingDomain.toLowerCase();
        const selector = r.selector ?? '';
        const algo = (r as { algo?: string }).algo ?? '';
        const b = (r as { signature?: string }).signature?.slice(0, 8);
        const info = [`dkim=${result}`, comment ? `(${comment})` : '', `header.d=${domain}`, `header.s=${selector}`, algo ? `header.a=${algo}` : '', b ? `header.b=${b}` : '']
          .filter(Boolean)
          .join(' ');
        return { domain, selector, algo, result, info, ...(comment ? { comment } : {}) };
      });
    if (signatures.length === 0) return { result: 'none', detail: 'message has no DKIM signature', data: { signatures, passingDomains: [] } };
    const passingDomains = [...new Set(signatures.filter((s) => s.result === 'pass').map((s) => s.domain))];
    const result = PRECEDENCE.find((r) => signatures.some((s) => s.result === r)) ?? 'neutral';
    const list = signatures.map((s) => `d=${s.domain} s=${s.selector} ${s.result}${s.comment ? ` (${s.comment})` : ''}`).join('; ');
    return { result, detail: `${signatures.length} DKIM signature${signatures.length > 1 ? 's' : ''}: ${list}`, data: { signatures, passingDomains } };
  });
}

/** `dkim_domain`: a passing signature's d= lies in the organisational domain of MAIL FROM. */
export function checkDkimDomain(env: Envelope, ctx: CheckContext): Promise<Evidence> {
  return timed('dkim_domain', async () => {
    if (env.from === undefined) return { result: 'none', detail: 'no MAIL FROM yet' };
    const domain = domainOf(env.from);
    if (env.from === '' || !domain) return { result: 'none', detail: 'null sender: no domain to match' };
    const dkim = await ctx.evidence('dkim');
    if (dkim.result === 'none' && !env.message) return { result: 'none', detail: 'message not seen at this stage', data: { domain } };
    const passing = stringList(dkim.data?.passingDomains);
    const signer = passing.find((d) => sameOrgDomain(d, domain));
    if (signer) return { result: 'match', detail: `DKIM signature of ${signer} verifies, in the organisational domain of ${domain}`, data: { domain, signer } };
    if (dkim.result === 'temperror') return { result: 'temperror', detail: `DKIM unknown: ${dkim.detail}`, data: { domain } };
    const why = passing.length > 0 ? `verified signatures (${passing.join(', ')}) lie outside` : `no verified DKIM signature (dkim ${dkim.result}) in`;
    return { result: 'nomatch', detail: `${why} the organisational domain of ${domain}`, data: { domain } };
  });
}
