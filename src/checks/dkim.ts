// DKIM (RFC 6376) verification of the message at end of DATA. Our layer
// reads every DKIM-Signature field and checks what RFC 6376 requires of it
// and of its key (dkim-rules.ts), fetching each key itself before anything
// else (§6.1.2), so a DNS fault is a temperror even when the body hash would
// not have matched; mailauth then does the hashing and the crypto, with the
// keys we fetched. Every signature keeps its place in the result, those we
// refuse to verify included. Results use RFC 8601's vocabulary; mailauth's
// "neutral" is refined where the RFCs are clearer (body hash mismatch is a
// fail, a missing or unusable key a permerror).

import { createPublicKey } from 'node:crypto';
import type { DNSResolver } from 'mailauth';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { Envelope, Evidence, EvidenceResult } from '../core/types.js';
import { isDnsError } from '../dns/types.js';
import { keyProblem, readSignature, type SignatureTags } from './dkim-rules.js';
import { domainOf, stringList, timed } from './evidence.js';
import { ErrnoError, type MailauthAnswer } from './mailauth-resolver.js';
import { headerValues, parseHeaderFields, splitMessage } from './message.js';
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

const KEY_PROBLEMS = new Set(['no key', 'unknown key version', 'unknown key type', 'invalid public key']);

interface MailauthStatus {
  result: string;
  comment?: string;
}

function refine(status: MailauthStatus): { result: EvidenceResult; comment?: string } {
  const comment = status.comment;
  if (status.result === 'neutral' && comment === 'body hash did not verify') return { result: 'fail', comment };
  if (status.result === 'neutral' && comment && KEY_PROBLEMS.has(comment)) return { result: 'permerror', comment };
  const known: EvidenceResult[] = ['pass', 'fail', 'neutral', 'temperror', 'permerror', 'policy'];
  const result = known.includes(status.result as EvidenceResult) ? (status.result as EvidenceResult) : 'neutral';
  return { result, comment };
}

// Which result speaks for the message when no signature passes: one that a
// retry could turn into a pass comes first, so a DNS fault is never a fail.
const PRECEDENCE: EvidenceResult[] = ['pass', 'temperror', 'fail', 'permerror', 'policy', 'neutral'];

/** A verdict reached by our layer, which mailauth's result does not replace. */
interface Verdict {
  result: EvidenceResult;
  comment: string;
}

/** One DKIM-Signature field, in message order, on its way to a result. */
interface Entry {
  domain: string;
  selector: string;
  algo: string;
  b: string;
  sig?: SignatureTags;
  verdict?: Verdict;
  /** The key record handed to mailauth (PKCS#1 re-encoded). */
  record?: string;
}

/** `selector._domainkey.domain`, fetched first (§6.1.2): no key is a permerror, a DNS fault a temperror. */
async function fetchKey(ctx: CheckContext, sig: SignatureTags): Promise<{ record: string } | Verdict> {
  let records: string[];
  try {
    records = await ctx.resolver.txt(`${sig.selector}._domainkey.${sig.domain}`);
  } catch (e) {
    if (!isDnsError(e)) throw e;
    if (e.isVoid || e.code === 'BADNAME') return { result: 'permerror', comment: 'no key' };
    return { result: 'temperror', comment: `DNS failure: ${e.code}` };
  }
  // Several records: RFC 6376 §6.1.2 lets the verifier pick one; the first, as mailauth does.
  if (records.length === 0) return { result: 'permerror', comment: 'no key' };
  const record = records[0];
  const problem = keyProblem(record, sig);
  return problem ? { result: 'permerror', comment: problem } : { record: spkiFromPkcs1(record) };
}

/**
 * A message without the empty line that ends its header is a valid message
 * with an empty body (RFC 5322 §3.5); mailauth's parser never finishes its
 * header then and verifies nothing. Give it the separator.
 */
function withBodySeparator(msg: Buffer): Buffer {
  if (splitMessage(msg).header.length < msg.length) return msg;
  return Buffer.concat([msg, Buffer.from(msg[msg.length - 1] === 0x0a ? '\r\n' : '\r\n\r\n')]);
}

/** mailauth's resolver: only the keys we fetched and accepted; anything else was decided without it. */
function fetchedKeys(entries: Entry[]): DNSResolver {
  const keys = new Map<string, string>();
  for (const e of entries) if (e.record !== undefined && e.sig) keys.set(`${e.sig.selector}._domainkey.${e.sig.domain}`.toLowerCase(), e.record);
  const answer = async (name: string): Promise<MailauthAnswer> => {
    const record = keys.get(name.replace(/\.$/, '').toLowerCase());
    if (record === undefined) throw new ErrnoError('ENOTFOUND', `${name}: no key fetched`);
    return [[record]];
  };
  // mailauth's type omits the MX shape; the verifier only asks for TXT.
  return answer as unknown as DNSResolver;
}

/** An RFC 8601 property value we may print as is; anything else is left out. */
const TOKEN = /^[A-Za-z0-9._+/=-]{1,255}$/;

function infoOf(e: Entry, result: EvidenceResult, comment?: string): string {
  const props: string[] = [];
  if (TOKEN.test(e.domain)) props.push(`header.d=${e.domain}`);
  if (TOKEN.test(e.selector)) props.push(`header.s=${e.selector}`);
  if (TOKEN.test(e.algo)) props.push(`header.a=${e.algo}`);
  const b = e.b.slice(0, 8);
  if (b && TOKEN.test(b)) props.push(`header.b=${b}`);
  const text = comment ? ` (${comment.replace(/[()\\]/g, (c) => (c === '(' ? '[' : c === ')' ? ']' : '/'))})` : '';
  return `dkim=${result}${text}${props.length ? ` ${props.join(' ')}` : ''}`;
}

export function checkDkim(env: Envelope, ctx: CheckContext, opts: DkimOptions = {}): Promise<Evidence> {
  return timed('dkim', async () => {
    if (!env.message) return { result: 'none', detail: 'message not seen at this stage' };
    const message = withBodySeparator(env.message);
    const maxLookups = opts.maxSignatures ?? DKIM_MAX_SIGNATURES;
    let lookups = 0;
    const entries: Entry[] = headerValues(parseHeaderFields(splitMessage(message).header).fields, 'dkim-signature').map((value) => {
      const read = readSignature(value);
      if ('problem' in read) {
        const p = read.problem;
        return { domain: p.domain, selector: p.selector, algo: p.algorithm, b: p.b, verdict: { result: p.result, comment: p.comment } };
      }
      const s = read.sig;
      const entry: Entry = { domain: s.domain, selector: s.selector, algo: s.algorithm, b: s.b, sig: s };
      if (env.messageTruncated) entry.verdict = { result: 'neutral', comment: 'not verified: message body truncated (milter.max_body)' };
      else if (++lookups > maxLookups) entry.verdict = { result: 'neutral', comment: 'not verified: signature limit reached' };
      return entry;
    });
    if (entries.length === 0) return { result: 'none', detail: 'message has no DKIM signature', data: { signatures: [], passingDomains: [] } };

    await Promise.all(
      entries.map(async (e) => {
        if (e.verdict || !e.sig) return;
        const key = await fetchKey(ctx, e.sig);
        if ('record' in key) e.record = key.record;
        else e.verdict = key;
      }),
    );

    // mailauth verifies what is left; its results are paired with our entries by d=, s= and b=.
    const pending = entries.filter((e) => e.record !== undefined && !e.verdict);
    const results =
      pending.length === 0
        ? []
        : (await dkimVerify(message, { resolver: fetchedKeys(pending), curTime: new Date(ctx.clock.now()), minBitLength: opts.minBitLength })).results;
    const signatures: DkimSignature[] = entries.map((e) => {
      let verdict: { result: EvidenceResult; comment?: string } | undefined = e.verdict;
      if (!verdict) {
        const i = results.findIndex(
          (r) => r.signingDomain?.toLowerCase() === e.domain && r.selector?.toLowerCase() === e.selector.toLowerCase() && (r as { signature?: string }).signature?.replace(/\s+/g, '') === e.b,
        );
        verdict = i < 0 ? { result: 'neutral', comment: 'not verified' } : refine(results.splice(i, 1)[0].status);
      }
      const { result, comment } = verdict;
      return { domain: e.domain, selector: e.selector, algo: e.algo, result, info: infoOf(e, result, comment), ...(comment ? { comment } : {}) };
    });
    const passingDomains = [...new Set(signatures.filter((s) => s.result === 'pass').map((s) => s.domain))];
    const result = PRECEDENCE.find((r) => signatures.some((s) => s.result === r)) ?? 'neutral';
    const list = signatures.map((s) => `d=${s.domain || '?'} s=${s.selector || '?'} ${s.result}${s.comment ? ` (${s.comment})` : ''}`).join('; ');
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
