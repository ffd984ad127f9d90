// check_host() (RFC 7208 §4–§6): find a domain's SPF record, evaluate it for a
// client IP, follow include/redirect, enforce the processing limits, and
// explain a fail. DNS faults give temperror; a broken record gives permerror;
// neither is ever thrown to the caller.

import type { Clock } from '../../core/types.js';
import { isDnsError, type Resolver } from '../../dns/types.js';
import { normaliseName } from '../hostname.js';
import { SpfAbort, SpfSyntaxError } from './errors.js';
import { type ClientIp, type IpAddr, inNetwork, isClient, parseAnswer, parseClientIp, parseIp4, parseIp6 } from './ip.js';
import { type MacroString, type MacroValues, expand, expandDomain, parseExplanation, usesPtr } from './macro.js';
import { QUALIFIER_RESULT, type NetworkMechanism, type SpfMechanism, type SpfRecord, isSpfRecord, parseSpfRecord } from './parser.js';
import { Lru } from '../../core/lru.js';

export type SpfResultCode = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';

export interface SpfResult {
  result: SpfResultCode;
  /** The domain checked (the <domain> argument of check_host()). */
  domain: string;
  /** The term that decided, as written (`ip4:192.0.2.0/24`, `-all`); absent when none matched. */
  mechanism?: string;
  /** The domain whose record holds `mechanism` (differs from `domain` after redirect=). */
  mechanismDomain?: string;
  /** On fail only: the exp= text, or the default explanation. */
  explanation?: string;
  /** DNS-querying terms evaluated (include, a, mx, ptr, exists, redirect, %{p}). */
  lookups: number;
  /** Terms whose DNS query returned NXDOMAIN or no data. */
  voidLookups: number;
  /** Why the result is permerror, temperror or none. */
  problem?: string;
}

export interface CheckHostParams {
  /** Client IP; an IPv4-mapped IPv6 address counts as IPv4. */
  ip: string;
  /** The domain whose policy is checked: the MAIL FROM domain, or the HELO name. */
  domain: string;
  /** MAIL FROM (`local@domain`); for the HELO identity or a null sender, `postmaster@<helo>`. */
  sender: string;
  /** HELO/EHLO name as given (the `h` macro). */
  helo: string;
}

export interface CheckHostOptions {
  /** DNS-querying terms allowed (§4.6.4). Default 10. */
  maxLookups?: number;
  /** Void lookups allowed (§4.6.4). Default 2. */
  maxVoidLookups?: number;
  /** More MX records than this for one mx mechanism is a permerror. Default 10. */
  maxMxNames?: number;
  /** PTR names beyond this many are ignored. Default 10. */
  maxPtrNames?: number;
  /** Explanation for a fail without a usable exp= (may use macros). */
  defaultExplanation?: string;
  /** The `r` macro: this host's name. Default `unknown`. */
  receivingHost?: string;
  /** For the `t` macro. */
  clock?: Clock;
}

export const SPF_LIMITS = { maxLookups: 10, maxVoidLookups: 2, maxMxNames: 10, maxPtrNames: 10 } as const;

export const DEFAULT_EXPLANATION = 'The SPF record of %{d} does not authorise %{c} to send mail for %{o}';

/** Where a record's evaluation ended (below the top, permerror/temperror travel as SpfAbort). */
interface Outcome {
  result: 'pass' | 'fail' | 'softfail' | 'neutral' | 'none';
  mechanism?: string;
  mechanismDomain?: string;
  explanation?: string;
  /** For `none`: why. */
  problem?: string;
}

type Fetched = { record: SpfRecord } | { none: string };

/**
 * Parsed records by their text, and parsed client addresses: the same records
 * and clients come back transaction after transaction. Records and addresses
 * are never changed once parsed, so sharing them is safe.
 */
const RECORD_MEMO_ENTRIES = 2000;
const recordMemo = new Lru<string, SpfRecord | SpfSyntaxError>(RECORD_MEMO_ENTRIES);
const clientMemo = new Lru<string, ClientIp | null>(RECORD_MEMO_ENTRIES);
/** ip4:/ip6: networks, parsed once per (shared) term. */
const networks = new WeakMap<NetworkMechanism, IpAddr | null>();

/** The record parsed, or its syntax error (a permerror every time it is met). */
function parsedRecord(text: string): SpfRecord | SpfSyntaxError {
  let r = recordMemo.get(text);
  if (r === undefined) {
    try {
      r = parseSpfRecord(text);
    } catch (e) {
      if (!(e instanceof SpfSyntaxError)) throw e;
      r = e;
    }
    recordMemo.set(text, r);
  }
  return r;
}

function clientIpOf(text: string): ClientIp | undefined {
  let c = clientMemo.get(text);
  if (c === undefined) {
    c = parseClientIp(text) ?? null;
    clientMemo.set(text, c);
  }
  return c ?? undefined;
}

function networkOf(term: NetworkMechanism): IpAddr | undefined {
  let n = networks.get(term);
  if (n === undefined) {
    n = (term.type === 'ip4' ? parseIp4(term.address) : parseIp6(term.address)) ?? null;
    networks.set(term, n);
  }
  return n ?? undefined;
}

export async function checkHost(params: CheckHostParams, resolver: Resolver, opts: CheckHostOptions = {}): Promise<SpfResult> {
  const domain = params.domain.replace(/\.$/, '').toLowerCase();
  const client = clientIpOf(params.ip);
  if (!client) return { result: 'none', domain, lookups: 0, voidLookups: 0, problem: `client address "${params.ip}" is not an IP address` };
  // §4.3: a malformed or single-label domain gives none without a query.
  const bad = initialDomainProblem(domain);
  if (bad) return { result: 'none', domain, lookups: 0, voidLookups: 0, problem: `"${domain}" ${bad}` };

  const ev = new Evaluation(client, resolver, opts, senderParts(params.sender, domain), params.helo);
  try {
    const out = await ev.checkDomain(domain, 0, true);
    const result: SpfResult = { result: out.result, domain, lookups: ev.lookups, voidLookups: ev.voids };
    if (out.mechanism !== undefined) {
      result.mechanism = out.mechanism;
      result.mechanismDomain = out.mechanismDomain;
    }
    if (out.result === 'fail') result.explanation = out.explanation;
    if (out.problem) result.problem = out.problem;
    return result;
  } catch (e) {
    if (e instanceof SpfAbort) return { result: e.result, domain, lookups: ev.lookups, voidLookups: ev.voids, problem: e.message };
    throw e;
  }
}

/** Local-part (postmaster when empty, §4.3) and domain of the sender. */
function senderParts(sender: string, domain: string): { sender: string; localPart: string; senderDomain: string } {
  const at = sender.lastIndexOf('@');
  const localPart = (at >= 0 ? sender.slice(0, at) : '') || 'postmaster';
  const senderDomain = (at >= 0 ? sender.slice(at + 1) : '') || domain;
  return { sender: `${localPart}@${senderDomain}`, localPart, senderDomain };
}

/** Why a check_host() <domain> is unusable (§4.3), or undefined. */
function initialDomainProblem(domain: string): string | undefined {
  if (domain === '') return 'is empty';
  if (domain.startsWith('[')) return 'is an address literal';
  if (domain.length > 253) return 'is longer than 253 characters';
  const labels = domain.split('.');
  if (labels.length < 2) return 'is not a multi-label domain name';
  if (labels.some((l) => l.length === 0)) return 'has an empty label';
  if (labels.some((l) => l.length > 63)) return 'has a label longer than 63 characters';
  if (!/^[\x21-\x7e]+$/.test(domain)) return 'contains characters outside visible ASCII';
  if (/^[0-9]+$/.test(labels[labels.length - 1])) return 'is not a domain name (numeric top-level label)';
  return undefined;
}

/** Can a DNS query be composed from this name (labels 1–63 octets, at most 253)? */
function isQueryable(name: string): boolean {
  if (name === '' || name.length > 253) return false;
  return name.split('.').every((l) => l.length > 0 && l.length <= 63);
}

class Evaluation {
  lookups = 0;
  voids = 0;
  private readonly limits: Required<Pick<CheckHostOptions, 'maxLookups' | 'maxVoidLookups' | 'maxMxNames' | 'maxPtrNames'>>;
  private ptrNames?: Promise<{ names: string[]; void: boolean }>;

  constructor(
    private readonly client: ClientIp,
    private readonly resolver: Resolver,
    private readonly opts: CheckHostOptions,
    private readonly sender: { sender: string; localPart: string; senderDomain: string },
    private readonly helo: string,
  ) {
    this.limits = {
      maxLookups: opts.maxLookups ?? SPF_LIMITS.maxLookups,
      maxVoidLookups: opts.maxVoidLookups ?? SPF_LIMITS.maxVoidLookups,
      maxMxNames: opts.maxMxNames ?? SPF_LIMITS.maxMxNames,
      maxPtrNames: opts.maxPtrNames ?? SPF_LIMITS.maxPtrNames,
    };
  }

  /** check_host() of one domain: its record's mechanisms, then its redirect=. */
  async checkDomain(domain: string, depth: number, explain: boolean): Promise<Outcome> {
    const fetched = await this.fetchRecord(domain, depth > 0);
    if ('none' in fetched) return { result: 'none', problem: fetched.none };
    const { record } = fetched;
    for (const term of record.terms) {
      if (term.type === 'modifier') continue;
      if (!(await this.matches(term, domain, depth))) continue;
      const result = QUALIFIER_RESULT[term.qualifier];
      const out: Outcome = { result, mechanism: term.text, mechanismDomain: domain };
      if (result === 'fail' && explain) out.explanation = await this.explain(record, domain);
      return out;
    }
    if (record.redirect) {
      this.countLookup(`redirect=${record.redirect.text}`);
      const target = await this.targetName(record.redirect, domain);
      const inner = await this.checkDomain(target, depth + 1, explain);
      if (inner.result === 'none') throw new SpfAbort('permerror', `redirect=${target} of ${domain}: ${inner.problem ?? 'no SPF record'}`);
      return inner;
    }
    return { result: 'neutral' };
  }

  /** The single v=spf1 TXT record of a domain, parsed (§4.4, §4.5). */
  private async fetchRecord(domain: string, termDriven: boolean): Promise<Fetched> {
    if (!isQueryable(domain)) return { none: `"${domain}" is not a valid domain name` };
    let txts: string[];
    try {
      txts = await this.resolver.txt(domain);
    } catch (e) {
      if (!isDnsError(e)) throw e;
      if (e.isVoid) {
        if (termDriven) this.countVoid(`TXT ${domain}`);
        return { none: `${domain} has no TXT records (${e.code})` };
      }
      if (e.code === 'BADNAME') return { none: `"${domain}" is not a valid domain name` };
      throw new SpfAbort('temperror', `TXT ${domain}: ${e.code}`);
    }
    const spf = txts.filter(isSpfRecord);
    if (spf.length > 1) throw new SpfAbort('permerror', `${domain} publishes ${spf.length} SPF records`);
    if (spf.length === 0) return { none: `${domain} publishes no SPF record` };
    const parsed = parsedRecord(spf[0]);
    if (parsed instanceof SpfSyntaxError) throw new SpfAbort('permerror', `SPF record of ${domain}: ${parsed.message}`);
    return { record: parsed };
  }

  private async matches(term: SpfMechanism, domain: string, depth: number): Promise<boolean> {
    switch (term.type) {
      case 'all':
        return true;
      case 'ip4':
      case 'ip6': {
        const network = networkOf(term);
        return network !== undefined && inNetwork(this.client, network, term.prefix);
      }
      case 'include': {
        this.countLookup(term.text);
        const target = await this.targetName(term.domain, domain);
        const inner = await this.checkDomain(target, depth + 1, false);
        // §5.2: pass matches; fail, softfail, neutral do not; none is a permerror.
        if (inner.result === 'none') throw new SpfAbort('permerror', `${term.text} of ${domain}: ${inner.problem ?? 'no SPF record'}`);
        return inner.result === 'pass';
      }
      case 'a': {
        this.countLookup(term.text);
        const target = term.domain ? await this.targetName(term.domain, domain) : domain;
        const addrs = await this.addresses(target, true);
        const prefix = this.client.family === 4 ? term.cidr4 : term.cidr6;
        return addrs.some((a) => inNetwork(this.client, a, prefix));
      }
      case 'mx':
        this.countLookup(term.text);
        return this.matchMx(term.domain ? await this.targetName(term.domain, domain) : domain, term.cidr4, term.cidr6);
      case 'ptr': {
        this.countLookup(term.text);
        const target = normaliseName(term.domain ? await this.targetName(term.domain, domain) : domain);
        const { names, void: isVoid } = await this.validatedNames();
        if (isVoid) this.countVoid(`PTR ${this.client.text}`);
        return names.some((n) => n === target || n.endsWith(`.${target}`));
      }
      case 'exists': {
        this.countLookup(term.text);
        const target = await this.targetName(term.domain, domain);
        // Always an A query, whatever the client's family (§5.7).
        return (await this.query(target, 'A', () => this.resolver.a(target), true)).length > 0;
      }
    }
  }

  private async matchMx(target: string, cidr4: number, cidr6: number): Promise<boolean> {
    const mx = await this.query(target, 'MX', () => this.resolver.mx(target), true);
    if (mx.length > this.limits.maxMxNames) {
      throw new SpfAbort('permerror', `${target} has ${mx.length} MX records, more than ${this.limits.maxMxNames}`);
    }
    const prefix = this.client.family === 4 ? cidr4 : cidr6;
    // A null MX ("." / "") names no host.
    const hosts = mx.map((r) => normaliseName(r.exchange)).filter((h) => h !== '');
    const settled = await Promise.allSettled(hosts.map((h) => this.addresses(h, false)));
    let fault: unknown;
    for (const s of settled) {
      if (s.status === 'fulfilled' && s.value.some((a) => inNetwork(this.client, a, prefix))) return true;
      if (s.status === 'rejected') fault ??= s.reason;
    }
    if (fault !== undefined) throw fault;
    return false;
  }

  /** A or AAAA addresses of a name, matching the client's family. */
  private async addresses(name: string, countVoid: boolean): Promise<IpAddr[]> {
    const family = this.client.family;
    const type = family === 4 ? 'A' : 'AAAA';
    const answers = await this.query(name, type, () => (family === 4 ? this.resolver.a(name) : this.resolver.aaaa(name)), countVoid);
    return answers.map((a) => parseAnswer(a, family)).filter((a) => a !== undefined);
  }

  /** Ask the resolver; a void answer is [] (counted when the term itself asked), a fault aborts with temperror. */
  private async query<T>(name: string, type: string, ask: () => Promise<T[]>, countVoid: boolean): Promise<T[]> {
    // A name no query can carry (empty or over-long label) does not exist (§4.3 by analogy).
    if (!isQueryable(name)) return [];
    try {
      return await ask();
    } catch (e) {
      if (!isDnsError(e)) throw e;
      if (e.isVoid) {
        if (countVoid) this.countVoid(`${type} ${name}`);
        return [];
      }
      if (e.code === 'BADNAME') return [];
      throw new SpfAbort('temperror', `${type} ${name}: ${e.code}`);
    }
  }

  /**
   * The client's PTR names whose A/AAAA lead back to it (§5.5), first
   * `maxPtrNames` only; looked up once per evaluation and shared by ptr and %{p}.
   * A PTR fault means no names (the mechanism fails to match); an address fault skips that name.
   */
  private validatedNames(): Promise<{ names: string[]; void: boolean }> {
    this.ptrNames ??= (async () => {
      let ptrs: string[];
      try {
        ptrs = await this.resolver.ptr(this.client.text);
      } catch (e) {
        if (!isDnsError(e)) throw e;
        return { names: [], void: e.isVoid };
      }
      const candidates = [...new Set(ptrs.map(normaliseName))].slice(0, this.limits.maxPtrNames);
      const family = this.client.family;
      const checks = await Promise.allSettled(
        candidates.map((n) => (!isQueryable(n) ? Promise.resolve([]) : family === 4 ? this.resolver.a(n) : this.resolver.aaaa(n))),
      );
      const names = candidates.filter((_, i) => {
        const c = checks[i];
        return c.status === 'fulfilled' && c.value.some((a) => isClient(this.client, parseAnswer(a, family)));
      });
      return { names, void: false };
    })();
    return this.ptrNames;
  }

  /** The `p` macro (§7.3): the validated name equal to, else under, <domain>; else any; else "unknown". */
  private async validatedName(domain: string): Promise<string> {
    const { names } = await this.validatedNames();
    const d = normaliseName(domain);
    return names.find((n) => n === d) ?? names.find((n) => n.endsWith(`.${d}`)) ?? names[0] ?? 'unknown';
  }

  private values(domain: string): MacroValues {
    return {
      ...this.sender,
      domain,
      ip: this.client,
      helo: this.helo,
      receivingHost: this.opts.receivingHost ?? 'unknown',
      now: (this.opts.clock ?? { now: () => Date.now() }).now(),
      validatedName: () => this.validatedName(domain),
    };
  }

  /** Expand a term's domain-spec; a %{p} in it is a PTR lookup and counts toward the limit (§4.6.4). */
  private async targetName(spec: MacroString, domain: string): Promise<string> {
    if (usesPtr(spec)) this.countLookup(`%{p} in ${spec.text}`);
    return expandDomain(spec, this.values(domain));
  }

  /** The explanation of a fail (§6.2). Any problem with exp= falls back to the default; it never changes the result. */
  private async explain(record: SpfRecord, domain: string): Promise<string> {
    if (record.exp) {
      try {
        const target = await expandDomain(record.exp, this.values(domain));
        if (isQueryable(target)) {
          const txts = await this.resolver.txt(target);
          if (txts.length === 1) return printable(await expand(parseExplanation(txts[0]), this.values(domain)));
        }
      } catch (e) {
        if (!(e instanceof SpfSyntaxError || isDnsError(e))) throw e;
      }
    }
    const text = this.opts.defaultExplanation ?? DEFAULT_EXPLANATION;
    try {
      return printable(await expand(parseExplanation(text), this.values(domain)));
    } catch (e) {
      if (e instanceof SpfSyntaxError) return printable(text);
      throw e;
    }
  }

  private countLookup(what: string): void {
    this.lookups++;
    if (this.lookups > this.limits.maxLookups) {
      throw new SpfAbort('permerror', `more than ${this.limits.maxLookups} DNS-querying terms (at ${what})`);
    }
  }

  private countVoid(what: string): void {
    this.voids++;
    if (this.voids > this.limits.maxVoidLookups) {
      throw new SpfAbort('permerror', `more than ${this.limits.maxVoidLookups} void lookups (at ${what})`);
    }
  }
}

/** Explanations end up in SMTP replies: keep them to printable ASCII on one line. */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}
