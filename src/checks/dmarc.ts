// DMARC (RFC 7489): does the header From domain's owner vouch for this
// message through an aligned SPF or DKIM pass, and what does it ask us to do
// when not? Built on the `spf` and `dkim` evidence of the same transaction.
//
// Policy discovery, record parsing and alignment are our own rather than
// mailauth's dmarc module: mailauth 4.13 passes `{strict}` where a boolean is
// expected and so never enforces adkim=s/aspf=s, counts the PSL's private
// section in organisational domains (ours, in org-domain.ts, is ICANN-only and
// shared with the other checks), does not apply pct=, and accepts records with
// an invalid p=. See docs/dmarc-arc.md.

import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';
import type { Envelope, Evidence } from '../core/types.js';
import { isDnsError, type Resolver } from '../dns/types.js';
import { domainOf, stringList, timed } from './evidence.js';
import { headerValues, messageHeader } from './message.js';
import { orgDomain } from './org-domain.js';
import type { CheckContext } from './types.js';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
export type Alignment = 'r' | 's';

export interface DmarcRecord {
  /** The record as published. */
  text: string;
  p: DmarcPolicy;
  sp?: DmarcPolicy;
  /** 0–100; 100 when absent or invalid. */
  pct: number;
  adkim: Alignment;
  aspf: Alignment;
}

const POLICIES: readonly string[] = ['none', 'quarantine', 'reject'];

function asPolicy(v: string | undefined): DmarcPolicy | undefined {
  const p = v?.toLowerCase();
  return p !== undefined && POLICIES.includes(p) ? (p as DmarcPolicy) : undefined;
}

/** A DMARC TXT record starts with the v=DMARC1 tag (RFC 7489 §6.4). */
export function isDmarcRecord(txt: string): boolean {
  return /^v\s*=\s*DMARC1\s*(;|$)/i.test(txt.trim());
}

/**
 * Parse a DMARC record. Unknown tags are ignored and bad values fall back to
 * their defaults; a record without a valid p= counts as p=none when it names a
 * report address (rua=) and as no record at all otherwise (RFC 7489 §6.3).
 */
export function parseDmarcRecord(text: string): DmarcRecord | undefined {
  if (!isDmarcRecord(text)) return undefined;
  const tags = new Map<string, string>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!tags.has(key)) tags.set(key, part.slice(eq + 1).trim());
  }
  let p = asPolicy(tags.get('p'));
  if (!p) {
    if (!tags.get('rua')) return undefined;
    p = 'none';
  }
  const pctText = tags.get('pct');
  const pct = pctText !== undefined && /^\d{1,3}$/.test(pctText) && Number(pctText) <= 100 ? Number(pctText) : 100;
  const align = (v: string | undefined): Alignment => (v?.toLowerCase() === 's' ? 's' : 'r');
  return { text: text.trim(), p, sp: asPolicy(tags.get('sp')), pct, adkim: align(tags.get('adkim')), aspf: align(tags.get('aspf')) };
}

/** `_dmarc.<name>`'s single DMARC record; undefined when there is none, or several (§6.6.3). DNS faults throw. */
async function lookupRecord(resolver: Resolver, name: string): Promise<{ record?: DmarcRecord; note?: string }> {
  let txts: string[];
  try {
    txts = await resolver.txt(`_dmarc.${name}`);
  } catch (e) {
    if (isDnsError(e) && e.isVoid) return {};
    throw e;
  }
  const candidates = txts.filter(isDmarcRecord);
  if (candidates.length > 1) return { note: `_dmarc.${name} has ${candidates.length} DMARC records` };
  if (candidates.length === 0) return {};
  const record = parseDmarcRecord(candidates[0]);
  return record ? { record } : { note: `_dmarc.${name} has an invalid DMARC record (no valid p=)` };
}

export interface DiscoveredPolicy {
  record: DmarcRecord;
  /** Where the record was found: the From domain or its organisational domain. */
  recordDomain: string;
  /** The policy that applies to the From domain: sp= for a subdomain covered by its organisation's record. */
  policy: DmarcPolicy;
}

/** Policy discovery (RFC 7489 §6.6.3): the From domain, then its organisational domain. */
export async function discoverPolicy(resolver: Resolver, domain: string): Promise<{ found?: DiscoveredPolicy; notes: string[] }> {
  const notes: string[] = [];
  const own = await lookupRecord(resolver, domain);
  if (own.note) notes.push(own.note);
  if (own.record) return { found: { record: own.record, recordDomain: domain, policy: own.record.p }, notes };
  const org = orgDomain(domain);
  if (!org || org === domain) return { notes };
  const up = await lookupRecord(resolver, org);
  if (up.note) notes.push(up.note);
  if (!up.record) return { notes };
  return { found: { record: up.record, recordDomain: org, policy: up.record.sp ?? up.record.p }, notes };
}

/** Identifier alignment (RFC 7489 §3.1): strict = same name; relaxed = same organisational domain. */
export function aligned(fromDomain: string, identifier: string, mode: Alignment): boolean {
  const a = normaliseDomain(identifier);
  if (a === undefined) return false;
  if (a === fromDomain) return true;
  if (mode === 's') return false;
  const org = orgDomain(fromDomain);
  return org !== undefined && org === orgDomain(a);
}

/** Lower-case A-label form without trailing dot; undefined when not a usable name. */
function normaliseDomain(name: string): string | undefined {
  const trimmed = name.trim().replace(/\.$/, '');
  if (trimmed === '' || trimmed.includes('@')) return undefined;
  const ascii = domainToASCII(trimmed);
  return ascii === '' ? undefined : ascii.toLowerCase();
}

/** The header From domain, or why there is none usable (RFC 7489 §6.6.1). */
export function headerFromDomain(msg: Buffer): { domain: string } | { problem: string } {
  const { fields } = messageHeader(msg);
  const froms = headerValues(fields, 'from');
  if (froms.length === 0) return { problem: 'message has no From header' };
  if (froms.length > 1) return { problem: `message has ${froms.length} From headers` };
  const addresses = addressparser(froms[0], { flatten: true }).filter((a) => a.address);
  if (addresses.length === 0) return { problem: `From header has no address: ${JSON.stringify(froms[0].slice(0, 100))}` };
  const domains = new Set<string>();
  for (const a of addresses) {
    const d = domainOf(a.address);
    const n = d === undefined ? undefined : normaliseDomain(d);
    if (n === undefined) return { problem: `From address ${JSON.stringify(a.address.slice(0, 100))} has no usable domain` };
    domains.add(n);
  }
  // Several authors are allowed; several author domains leave no single owner to ask.
  if (domains.size > 1) return { problem: `From header names several domains (${[...domains].join(', ')})` };
  return { domain: [...domains][0] };
}

/** The domain SPF authenticated, when it passed: the spf check's data.domain, else MAIL FROM's, else HELO (null sender). */
function spfIdentity(env: Envelope, spf: Evidence): string | undefined {
  if (spf.result !== 'pass') return undefined;
  const d = spf.data?.domain;
  if (typeof d === 'string' && d !== '') return d;
  return domainOf(env.from) ?? (env.from === '' ? env.helo : undefined);
}

/** Domains (d=) of the DKIM signatures that verified: data.passingDomains, else data.signatures with result pass. */
function dkimIdentities(dkim: Evidence): string[] {
  const passing = dkim.data?.passingDomains;
  if (Array.isArray(passing)) return stringList(passing);
  const sigs = dkim.data?.signatures;
  if (!Array.isArray(sigs)) return [];
  return sigs.flatMap((s: unknown) => {
    const sig = s as { result?: unknown; domain?: unknown; d?: unknown };
    const d = sig.domain ?? sig.d;
    return sig.result === 'pass' && typeof d === 'string' ? [d] : [];
  });
}

/** One notch down (RFC 7489 §6.6.4): what applies to the messages pct= leaves out. */
function weaker(p: DmarcPolicy): DmarcPolicy {
  return p === 'reject' ? 'quarantine' : 'none';
}

/**
 * Whether this message falls in the pct= sample. Deterministic (hash of the
 * Message-ID, else of the message) so a retried message gets the same answer.
 */
export function inSample(msg: Buffer, pct: number): boolean {
  if (pct >= 100) return true;
  if (pct <= 0) return false;
  const id = headerValues(messageHeader(msg, { maxFields: 200 }).fields, 'message-id')[0];
  const h = createHash('sha256').update(id ?? msg).digest();
  return h.readUInt32BE(0) % 100 < pct;
}

export function checkDmarc(env: Envelope, ctx: CheckContext): Promise<Evidence> {
  return timed('dmarc', async () => {
    if (!env.message) return { result: 'none', detail: 'message not seen' };
    const from = headerFromDomain(env.message);
    if ('problem' in from) return { result: 'permerror', detail: from.problem, data: { policy: 'none', aligned: { spf: false, dkim: false } } };
    const domain = from.domain;
    let discovered: Awaited<ReturnType<typeof discoverPolicy>>;
    try {
      discovered = await discoverPolicy(ctx.resolver, domain);
    } catch (e) {
      if (!isDnsError(e)) throw e;
      return { result: 'temperror', detail: `${domain}: DMARC policy lookup failed: DNS ${e.message}`, data: { domain, policy: 'none', aligned: { spf: false, dkim: false } } };
    }
    const { found, notes } = discovered;
    const noteText = notes.length > 0 ? ` (${notes.join('; ')})` : '';
    if (!found) {
      return { result: 'none', detail: `${domain} publishes no DMARC policy${noteText}`, data: { domain, policy: 'none', aligned: { spf: false, dkim: false } } };
    }
    const { record, recordDomain } = found;

    const [spf, dkim] = await Promise.all([ctx.evidence('spf'), ctx.evidence('dkim')]);
    const spfDomain = spfIdentity(env, spf);
    const dkimDomains = dkimIdentities(dkim);
    const spfAligned = spfDomain !== undefined && aligned(domain, spfDomain, record.aspf);
    const dkimAlignedDomain = dkimDomains.find((d) => aligned(domain, d, record.adkim));
    const alignment = { spf: spfAligned, dkim: dkimAlignedDomain !== undefined };

    const data: Record<string, unknown> = {
      domain,
      orgDomain: orgDomain(domain),
      recordDomain,
      record: record.text,
      policy: found.policy,
      pct: record.pct,
      adkim: record.adkim,
      aspf: record.aspf,
      aligned: alignment,
    };
    const mode = (m: Alignment): string => (m === 's' ? 'strict' : 'relaxed');
    const published = `p=${found.policy}${record.pct < 100 ? ` pct=${record.pct}` : ''}`;

    if (alignment.spf || alignment.dkim) {
      const how = alignment.dkim ? `DKIM d=${dkimAlignedDomain}` : `SPF ${spfDomain}`;
      return { result: 'pass', detail: `${domain}: ${how} passed and is aligned (${mode(alignment.dkim ? record.adkim : record.aspf)}); ${published}`, data };
    }

    // No aligned pass. If SPF or DKIM could not be evaluated, a pass may have been missed.
    const faults = [spf, dkim].filter((e) => e.result === 'temperror').map((e) => `${e.check}: ${e.detail}`);
    if (faults.length > 0) {
      return { result: 'temperror', detail: `${domain}: no aligned pass, and ${faults.join('; ')}`, data };
    }

    const sampled = inSample(env.message, record.pct);
    const effective = sampled ? found.policy : weaker(found.policy);
    data.requestedPolicy = found.policy;
    data.policy = effective;
    data.sampled = sampled;
    const spfWhy = spfDomain !== undefined ? `SPF ${spfDomain} passed but is not aligned (${mode(record.aspf)})` : `SPF ${spf.result}`;
    const dkimWhy = dkimDomains.length > 0 ? `DKIM d=${dkimDomains.join(', ')} passed but not aligned (${mode(record.adkim)})` : `no DKIM signature passed`;
    const pctNote = sampled ? '' : ` (message outside the pct=${record.pct} sample: treated as p=${effective})`;
    return { result: 'fail', detail: `${domain} publishes ${published}; ${spfWhy}; ${dkimWhy}${pctNote}`, data };
  });
}
