// SPF walking: resolve a domain's SPF record into the networks it authorises,
// the job of OpenBSD's `smtpctl spf walk`. Unlike evaluation there is no
// client, so the walk follows every branch at once (include, redirect, a, mx,
// ip4, ip6) and reports what cannot be known without a client (ptr, exists,
// macros of the client or sender) instead of guessing.
//
// The walk is not bound by evaluation's 10-lookup rule — large senders'
// records rely on receivers stopping early — but it is bounded: lookups per
// walked domain, include/redirect depth, MX hosts per term, parallel queries.

import { parseSpfRecord, isSpfRecord, type SpfMechanism, type SpfRecord } from '../../checks/spf/parser.js';
import { expandDomain, type MacroLetter, type MacroString, type MacroValues } from '../../checks/spf/macro.js';
import { parseClientIp } from '../../checks/spf/ip.js';
import { isDnsError, type Resolver } from '../../dns/types.js';
import { compareNets, formatNet, netOf, parseAddress, parseCidr, type Family, type Net } from '../cidr.js';
import { Limiter } from '../limit.js';

export interface WalkOptions {
  /** include/redirect/a/mx terms followed per walked domain (RFC 7208 counting, without its limit of 10). Default 50. */
  maxLookupsPerDomain?: number;
  /** include/redirect nesting below the walked domain. Default 10. */
  maxDepth?: number;
  /** DNS queries in flight at once, over the whole walk. Default 16. */
  concurrency?: number;
  /** MX hosts walked per mx term (evaluation's limit). Default 10. */
  maxMxHosts?: number;
  /** IPv4 networks wider than this prefix are reported, not listed. Default 8. */
  minPrefix4?: number;
  /** IPv6 networks wider than this prefix are reported, not listed. Default 16. */
  minPrefix6?: number;
}

export interface WalkedNetwork {
  /** Canonical `addr/len`, host bits cleared. */
  cidr: string;
  /** The walked domain (as given) that authorises it. */
  domain: string;
  /** How it was reached: `include:_spf.example.com → ip4:192.0.2.0/24`. */
  via: string;
}

/** A term that authorises addresses the walk cannot list (ptr, exists, client/sender macros, +all, too wide). */
export interface UnwalkableTerm {
  /** The domain whose record holds the term. */
  domain: string;
  /** The walked domain it was reached from. */
  root: string;
  term: string;
  reason: string;
}

/** A term that is not an authorisation (`-`, `~` or `?` qualifier), noted and not followed. */
export interface SkippedTerm {
  domain: string;
  root: string;
  term: string;
  reason: string;
}

export interface WalkError {
  /** The domain whose lookup or record failed. */
  domain: string;
  root: string;
  reason: string;
  /** A DNS fault (timeout, SERVFAIL, REFUSED): the answer may be different next time. */
  temporary: boolean;
}

export interface WalkLoop {
  /** The domain visited twice. */
  domain: string;
  root: string;
  /** The include/redirect chain from the walked domain back to `domain`. */
  chain: string[];
}

export interface DomainSummary {
  domain: string;
  /** include/redirect/a/mx terms followed. */
  lookups: number;
  networks: number;
  /** ok: no errors; partial: errors, some networks; failed: errors, no networks. */
  status: 'ok' | 'partial' | 'failed';
}

export interface WalkResult {
  networks: WalkedNetwork[];
  unwalkable: UnwalkableTerm[];
  skipped: SkippedTerm[];
  errors: WalkError[];
  loops: WalkLoop[];
  /** One per walked domain, in the order given. */
  domains: DomainSummary[];
}

type RecordLookup = { ok: true; record: SpfRecord } | { ok: false; reason: string; temporary: boolean };

interface Root {
  name: string;
  order: number;
  lookups: number;
  /** Terms not followed because the lookup limit was reached. */
  overLimit: string[];
  /** cidr → shortest via. */
  networks: Map<string, { net: Net; via: string }>;
}

/** Macro letters a walk can expand: the current domain, and the sender's domain (the walked one). */
const WALKABLE_MACROS = new Set<MacroLetter>(['d', 'o']);
const NO_CLIENT = parseClientIp('0.0.0.0')!;

const DEFAULTS: Required<WalkOptions> = {
  maxLookupsPerDomain: 50,
  maxDepth: 10,
  concurrency: 16,
  maxMxHosts: 10,
  minPrefix4: 8,
  minPrefix6: 16,
};

function normaliseDomain(d: string): string {
  return d.trim().replace(/\.$/, '').toLowerCase();
}

function describeFault(e: unknown): { reason: string; temporary: boolean } {
  if (isDnsError(e)) return { reason: `${e.qtype} ${e.qname}: ${e.code}`, temporary: e.isTemporary };
  // Not a DNS answer at all (a bug, a closed resolver): never read it as "the domain has no record".
  return { reason: `lookup failed: ${e instanceof Error ? e.message : String(e)}`, temporary: true };
}

class Walker {
  readonly unwalkable: UnwalkableTerm[] = [];
  readonly skipped: SkippedTerm[] = [];
  readonly errors: WalkError[] = [];
  readonly loops: WalkLoop[] = [];
  private readonly records = new Map<string, Promise<RecordLookup>>();
  private readonly limiter: Limiter;

  constructor(
    private readonly resolver: Resolver,
    private readonly opts: Required<WalkOptions>,
  ) {
    this.limiter = new Limiter(opts.concurrency);
  }

  /** Walk one domain's record; `chain` holds the domains above it, `via` the terms that led here. */
  async walkDomain(root: Root, domain: string, chain: string[], via: string[]): Promise<void> {
    const found = await this.recordOf(domain);
    if (!found.ok) {
      this.errors.push({ domain, root: root.name, reason: found.reason, temporary: found.temporary });
      return;
    }
    const path = [...chain, domain];
    const record = found.record;
    const tasks: Array<Promise<void>> = [];
    let hasAll = false;
    for (const term of record.terms) {
      if (term.type === 'modifier') continue;
      if (term.type === 'all') hasAll = true;
      tasks.push(this.mechanism(root, domain, term, path, via));
    }
    // RFC 7208 §6.1: redirect= is ignored when the record has an "all" mechanism.
    if (record.redirect && !hasAll) tasks.push(this.follow(root, domain, record.redirect, `redirect=${record.redirect.text}`, path, via));
    await Promise.all(tasks);
  }

  private async mechanism(root: Root, domain: string, term: SpfMechanism, path: string[], via: string[]): Promise<void> {
    if (term.type === 'all') {
      if (term.qualifier === '+') this.cannot(root, domain, term.text, 'authorises every address on the internet; nothing listed');
      return;
    }
    if (term.qualifier !== '+') {
      const what = { '-': 'fail', '~': 'softfail', '?': 'neutral' }[term.qualifier];
      this.skipped.push({ domain, root: root.name, term: term.text, reason: `qualifier "${term.qualifier}" (${what}) is not an authorisation` });
      return;
    }
    switch (term.type) {
      case 'ip4':
      case 'ip6': {
        const net = parseCidr(`${term.address}/${term.prefix}`);
        if (net) this.add(root, domain, term.text, net, [...via, term.text]);
        return;
      }
      case 'include':
        return this.follow(root, domain, term.domain, term.text, path, via);
      case 'a':
      case 'mx':
        return this.addresses(root, domain, term, path, via);
      case 'ptr':
        this.cannot(root, domain, term.text, "matches on the client's reverse DNS name, which only a client has");
        return;
      case 'exists':
        this.cannot(root, domain, term.text, 'answers per client or sender, not with a list of networks');
        return;
    }
  }

  /** include: or redirect=: walk the target's record below this one. */
  private async follow(root: Root, domain: string, spec: MacroString, text: string, path: string[], via: string[]): Promise<void> {
    if (!this.walkable(root, domain, spec, text) || !this.countLookup(root, domain, text)) return;
    const target = await this.target(root, domain, spec);
    if (path.includes(target)) {
      this.loops.push({ domain: target, root: root.name, chain: [...path, target] });
      return;
    }
    if (path.length > this.opts.maxDepth) {
      this.errors.push({ domain, root: root.name, reason: `${text}: include/redirect nesting deeper than ${this.opts.maxDepth}; not followed`, temporary: false });
      return;
    }
    await this.walkDomain(root, target, path, [...via, text]);
  }

  /** a / mx: the addresses of a host (or of the MX hosts) with the term's prefix lengths. */
  private async addresses(root: Root, domain: string, term: SpfMechanism & { type: 'a' | 'mx' }, path: string[], via: string[]): Promise<void> {
    if ((term.domain && !this.walkable(root, domain, term.domain, term.text)) || !this.countLookup(root, domain, term.text)) return;
    const target = term.domain ? await this.target(root, domain, term.domain) : path[path.length - 1];
    const steps = [...via, term.text];
    if (term.type === 'a') {
      await this.hostNets(root, domain, term, target, steps);
      return;
    }
    const mxs = await this.query(root, domain, () => this.resolver.mx(target));
    const hosts = mxs
      .filter((mx) => mx.exchange !== '') // a null MX ("0 .") names no host
      .sort((a, b) => a.preference - b.preference)
      .map((mx) => normaliseDomain(mx.exchange));
    const unique = [...new Set(hosts)];
    if (unique.length > this.opts.maxMxHosts) {
      this.errors.push({
        domain,
        root: root.name,
        reason: `${term.text}: ${target} has ${unique.length} MX hosts, more than ${this.opts.maxMxHosts} (an evaluation gives permerror); the first ${this.opts.maxMxHosts} walked`,
        temporary: false,
      });
    }
    await Promise.all(unique.slice(0, this.opts.maxMxHosts).map((host) => this.hostNets(root, domain, term, host, [...steps, host])));
  }

  private async hostNets(root: Root, domain: string, term: { text: string; cidr4: number; cidr6: number }, host: string, steps: string[]): Promise<void> {
    const [v4, v6] = await Promise.all([
      this.query(root, domain, () => this.resolver.a(host)),
      this.query(root, domain, () => this.resolver.aaaa(host)),
    ]);
    const add = (family: Family, answers: string[], len: number): void => {
      for (const text of answers) {
        const addr = parseAddress(text);
        if (addr && addr[0] === family) this.add(root, domain, term.text, netOf(family, addr[1], len), steps);
      }
    };
    add(4, v4, term.cidr4);
    add(6, v6, term.cidr6);
  }

  private add(root: Root, domain: string, term: string, net: Net, steps: string[]): void {
    const min = net.family === 4 ? this.opts.minPrefix4 : this.opts.minPrefix6;
    const cidr = formatNet(net);
    if (net.len < min) {
      this.cannot(root, domain, term, `${cidr} is wider than /${min}; not listed`);
      return;
    }
    const via = steps.join(' → ');
    const known = root.networks.get(cidr);
    // Keep the shortest path (then the first in text order), so the output does not depend on DNS timing.
    if (!known || via.length < known.via.length || (via.length === known.via.length && via < known.via)) root.networks.set(cidr, { net, via });
  }

  private cannot(root: Root, domain: string, term: string, reason: string): void {
    this.unwalkable.push({ domain, root: root.name, term, reason });
  }

  /** Count one lookup; false (and noted) when the walked domain has used its budget. */
  private countLookup(root: Root, domain: string, term: string): boolean {
    if (root.lookups >= this.opts.maxLookupsPerDomain) {
      root.overLimit.push(`${term} in ${domain}`);
      return false;
    }
    root.lookups++;
    return true;
  }

  /** False (and reported) when a domain-spec uses a macro only a client or sender can fill. */
  private walkable(root: Root, domain: string, spec: MacroString, term: string): boolean {
    const foreign = spec.parts.flatMap((p) => (p.kind === 'macro' && !WALKABLE_MACROS.has(p.letter) ? [p.letter] : []));
    if (foreign.length === 0) return true;
    const list = [...new Set(foreign)].map((l) => `%{${l}}`).join(', ');
    this.cannot(root, domain, term, `macro ${list} depends on the client or sender`);
    return false;
  }

  /** The name a (walkable) domain-spec points at: `%{d}` is the current domain, `%{o}` the walked one. */
  private async target(root: Root, domain: string, spec: MacroString): Promise<string> {
    const values: MacroValues = {
      sender: `postmaster@${root.name}`,
      localPart: 'postmaster',
      senderDomain: root.name,
      domain,
      ip: NO_CLIENT,
      helo: '',
      receivingHost: '',
      now: 0,
      validatedName: async () => '',
    };
    return normaliseDomain(await expandDomain(spec, values));
  }

  /** One DNS question through the limiter: void answers are [], faults are recorded and give []. */
  private async query<T>(root: Root, domain: string, ask: () => Promise<T[]>): Promise<T[]> {
    try {
      return await this.limiter.run(ask);
    } catch (e) {
      if (isDnsError(e) && e.isVoid) return [];
      const fault = describeFault(e);
      this.errors.push({ domain, root: root.name, ...fault });
      return [];
    }
  }

  /** The SPF record of a domain, fetched once per walk however many roots reach it. */
  private recordOf(domain: string): Promise<RecordLookup> {
    let p = this.records.get(domain);
    if (!p) {
      p = this.fetchRecord(domain);
      this.records.set(domain, p);
    }
    return p;
  }

  private async fetchRecord(domain: string): Promise<RecordLookup> {
    let txts: string[];
    try {
      txts = await this.limiter.run(() => this.resolver.txt(domain));
    } catch (e) {
      if (isDnsError(e) && e.isVoid) return { ok: false, reason: `no SPF record (${e.code})`, temporary: false };
      return { ok: false, ...describeFault(e) };
    }
    const spf = txts.filter(isSpfRecord);
    if (spf.length === 0) return { ok: false, reason: 'no SPF record', temporary: false };
    if (spf.length > 1) return { ok: false, reason: `${spf.length} SPF records (an evaluation gives permerror)`, temporary: false };
    try {
      return { ok: true, record: parseSpfRecord(spf[0]) };
    } catch (e) {
      return { ok: false, reason: `bad SPF record: ${(e as Error).message}`, temporary: false };
    }
  }
}

/**
 * Walk the SPF records of `domains` into the networks they authorise.
 * Never rejects: DNS faults and bad records are in `errors`.
 */
export async function walkSpf(domains: string[], resolver: Resolver, opts: WalkOptions = {}): Promise<WalkResult> {
  const o: Required<WalkOptions> = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
  const walker = new Walker(resolver, o);
  const names = [...new Set(domains.map(normaliseDomain).filter((d) => d !== ''))];
  const roots: Root[] = names.map((name, order) => ({ name, order, lookups: 0, overLimit: [], networks: new Map() }));
  await Promise.all(roots.map((root) => walker.walkDomain(root, root.name, [], [])));

  for (const root of roots) {
    if (root.overLimit.length > 0) {
      walker.errors.push({
        domain: root.name,
        root: root.name,
        reason: `lookup limit of ${o.maxLookupsPerDomain} reached: ${root.overLimit.length} term(s) not followed (first: ${root.overLimit[0]})`,
        temporary: false,
      });
    }
  }
  const order = new Map(roots.map((r) => [r.name, r.order]));
  const byRoot = <T extends { root: string }>(a: T, b: T, key: (x: T) => string): number =>
    order.get(a.root)! - order.get(b.root)! || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

  const networks: WalkedNetwork[] = roots.flatMap((r) =>
    [...r.networks.values()].sort((a, b) => compareNets(a.net, b.net)).map(({ net, via }) => ({ cidr: formatNet(net), domain: r.name, via })),
  );
  const domainsOut: DomainSummary[] = roots.map((r) => {
    const failed = walker.errors.some((e) => e.root === r.name);
    const n = r.networks.size;
    return { domain: r.name, lookups: r.lookups, networks: n, status: !failed ? 'ok' : n > 0 ? 'partial' : 'failed' };
  });
  return {
    networks,
    unwalkable: unique(walker.unwalkable).sort((a, b) => byRoot(a, b, (x) => `${x.domain} ${x.term} ${x.reason}`)),
    skipped: unique(walker.skipped).sort((a, b) => byRoot(a, b, (x) => `${x.domain} ${x.term}`)),
    errors: unique(walker.errors).sort((a, b) => byRoot(a, b, (x) => `${x.domain} ${x.reason}`)),
    loops: unique(walker.loops).sort((a, b) => byRoot(a, b, (x) => x.chain.join(' '))),
    domains: domainsOut,
  };
}

/** A record reached by two paths reports its terms once. */
function unique<T>(items: T[]): T[] {
  const seen = new Map<string, T>();
  for (const item of items) seen.set(JSON.stringify(item), item);
  return [...seen.values()];
}
