// `frontline spfwalk DOMAIN…`: walk SPF records into the networks they
// authorise and print them for a firewall, a DNSBL server or Postfix. What
// cannot be walked (ptr, exists, macros), terms that are not authorisations
// and failures go to stderr, so stdout stays a clean table.

import type { Writable } from 'node:stream';
import { Option, type Command } from 'commander';
import { createResolver, readResolvConf } from '../dns/index.js';
import type { Resolver } from '../dns/types.js';
import { formatNetworks, FORMATS, type OutputFormat } from '../intel/spfwalk/format.js';
import { mergeCidrs, sortCidrs } from '../intel/spfwalk/merge.js';
import { walkSpf, type WalkResult } from '../intel/spfwalk/walk.js';

export interface SpfwalkOptions {
  format: OutputFormat;
  /** DNS servers, comma-separated host[:port]; default FRONTLINE_DNS, then /etc/resolv.conf. */
  dns?: string;
  dnsTimeout?: string;
  /** commander turns `--no-merge` into `merge: false`. */
  merge: boolean;
  maxLookups?: string;
  concurrency?: string;
  setName?: string;
  postfixAction?: string;
  quiet?: boolean;
}

export interface SpfwalkIo {
  stdout: Writable;
  stderr: Writable;
  /** Tests pass a resolver; otherwise one is built from --dns. */
  resolver?: Resolver;
}

export class SpfwalkUsageError extends Error {}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n > 0)) throw new SpfwalkUsageError(`${name} must be a whole number > 0, got ${JSON.stringify(value)}`);
  return n;
}

/** The report on stderr: one line per unwalkable term, skipped term, loop and error. */
export function describeProblems(walk: WalkResult): string[] {
  const at = (domain: string, root: string) => (domain === root ? domain : `${domain} (from ${root})`);
  return [
    ...walk.unwalkable.map((u) => `unwalkable: ${at(u.domain, u.root)}: ${u.term}: ${u.reason}`),
    ...walk.skipped.map((s) => `skipped: ${at(s.domain, s.root)}: ${s.term}: ${s.reason}`),
    ...walk.loops.map((l) => `loop: ${l.chain.join(' → ')}`),
    ...walk.errors.map((e) => `error: ${at(e.domain, e.root)}: ${e.reason}${e.temporary ? ' (temporary)' : ''}`),
  ];
}

/** Returns the exit code: 0 all walked, 2 some domain had errors (output still printed), 1 bad usage. */
export async function spfwalk(domains: string[], opts: SpfwalkOptions, io: SpfwalkIo): Promise<number> {
  if (domains.length === 0) throw new SpfwalkUsageError('spfwalk: give at least one domain');
  const maxLookups = positive('--max-lookups', opts.maxLookups);
  const concurrency = positive('--concurrency', opts.concurrency);
  const timeoutMs = positive('--dns-timeout', opts.dnsTimeout);
  let resolver = io.resolver;
  let close: (() => void) | undefined;
  if (!resolver) {
    const fromFlag = (opts.dns ?? process.env.FRONTLINE_DNS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const servers = fromFlag.length > 0 ? fromFlag : readResolvConf();
    if (servers.length === 0) throw new SpfwalkUsageError('spfwalk: no DNS server: give --dns HOST[:PORT] (none in /etc/resolv.conf)');
    const r = createResolver({ servers, timeoutMs, retries: 1 });
    resolver = r;
    close = () => r.close();
  }
  try {
    const walk = await walkSpf(domains, resolver, { maxLookupsPerDomain: maxLookups, concurrency });
    const cidrs = walk.networks.map((n) => n.cidr);
    // nft interval sets refuse overlapping elements: always merged.
    const out = opts.merge || opts.format === 'nft' ? mergeCidrs(cidrs) : sortCidrs(cidrs);
    io.stdout.write(formatNetworks(out, opts.format, { name: opts.setName, postfixAction: opts.postfixAction, walk }));
    if (!opts.quiet) {
      for (const line of describeProblems(walk)) io.stderr.write(`${line}\n`);
      for (const d of walk.domains) io.stderr.write(`${d.domain}: ${d.status}, ${d.networks} networks, ${d.lookups} lookups\n`);
    }
    return walk.errors.length > 0 ? 2 : 0;
  } finally {
    close?.();
  }
}

/** Add `spfwalk` to the program (main.ts). */
export function registerSpfwalkCommand(program: Command): Command {
  return program
    .command('spfwalk')
    .description('list the IPv4/IPv6 networks that domains authorise in SPF (include, redirect, a, mx, ip4, ip6 followed)')
    .argument('<domain...>', 'domains whose SPF records to walk')
    .addOption(new Option('--format <format>', 'output format').choices([...FORMATS]).default('plain'))
    .option('--dns <servers>', 'DNS servers, comma-separated host[:port] (default: FRONTLINE_DNS, then /etc/resolv.conf)')
    .option('--dns-timeout <ms>', 'DNS timeout per query in milliseconds')
    .option('--no-merge', 'print networks as found (sorted, de-duplicated) instead of merging adjacent ones')
    .option('--max-lookups <n>', 'include/redirect/a/mx terms followed per domain (default 50)')
    .option('--concurrency <n>', 'DNS queries in flight at once (default 16)')
    .option('--set-name <name>', 'nft set name prefix / rbldnsd dataset name (default spf_walked)')
    .option('--postfix-action <result>', 'result column of the postfix format (default OK)')
    .option('-q, --quiet', 'do not report unwalkable terms, skipped terms and errors on stderr')
    .action(async (domains: string[], opts: SpfwalkOptions) => {
      try {
        process.exitCode = await spfwalk(domains, opts, { stdout: process.stdout, stderr: process.stderr });
      } catch (e) {
        process.stderr.write(`frontline: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = 1;
      }
    });
}
