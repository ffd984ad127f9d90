// Networks written out for the tools that consume them: a plain list, JSON,
// nftables set definitions, an rbldnsd combined dataset and a Postfix CIDR
// table. Input is canonical CIDR text (from merge.ts), IPv4 before IPv6.

import { parseCidr } from '../cidr.js';
import type { WalkResult } from './walk.js';

export const FORMATS = ['plain', 'json', 'nft', 'rbldnsd', 'postfix'] as const;
export type OutputFormat = (typeof FORMATS)[number];

export interface FormatOptions {
  /** nft: set names are `<name>_v4` and `<name>_v6`; rbldnsd: the dataset name. Default `spf_walked`. */
  name?: string;
  /** postfix: the result of every line. Default `OK`. */
  postfixAction?: string;
  /** json: the walk's details (sources, unwalkable terms, errors, loops) beside the networks. */
  walk?: WalkResult;
}

function split(cidrs: string[]): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const c of cidrs) (parseCidr(c)?.family === 6 ? v6 : v4).push(c);
  return { v4, v6 };
}

/** One network per line. */
export function formatPlain(cidrs: string[]): string {
  return cidrs.map((c) => `${c}\n`).join('');
}

/** `{ networks: [...] }`, plus the walk's details when given. */
export function formatJson(cidrs: string[], walk?: WalkResult): string {
  const out = walk
    ? { networks: cidrs, sources: walk.networks, domains: walk.domains, unwalkable: walk.unwalkable, skipped: walk.skipped, errors: walk.errors, loops: walk.loops }
    : { networks: cidrs };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * Two nftables set definitions (`ipv4_addr` and `ipv6_addr`, `flags
 * interval`) to paste into a table or `include` from one. An empty set gets
 * no `elements` line (nft rejects `elements = { }`). Interval sets refuse
 * overlapping elements, so pass merged networks.
 */
export function formatNft(cidrs: string[], name = 'spf_walked'): string {
  const { v4, v6 } = split(cidrs);
  const set = (suffix: string, type: string, elements: string[]): string => {
    const lines = [`set ${name}_${suffix} {`, `\ttype ${type}`, '\tflags interval'];
    if (elements.length > 0) lines.push(`\telements = { ${elements.join(', ')} }`);
    lines.push('}');
    return lines.join('\n');
  };
  return `${set('v4', 'ipv4_addr', v4)}\n${set('v6', 'ipv6_addr', v6)}\n`;
}

/**
 * An rbldnsd `combined` dataset: IPv4 in an `ip4set`, IPv6 in an `ip6trie`
 * (`ip6tset` holds only /64 entries, and SPF publishes /32 to /128), both on
 * the zone apex. Serve with `rbldnsd … zone:combined:FILE`.
 */
export function formatRbldnsd(cidrs: string[], name = 'spf_walked'): string {
  const { v4, v6 } = split(cidrs);
  const lines = [`# ${cidrs.length} networks`, `$DATASET ip4set:${name} @`, ...v4, `$DATASET ip6trie:${name} @`, ...v6];
  return `${lines.join('\n')}\n`;
}

/** A Postfix `cidr:` table: `192.0.2.0/24 OK`, `2001:db8::/32 OK`. */
export function formatPostfix(cidrs: string[], action = 'OK'): string {
  return cidrs.map((c) => `${c} ${action}\n`).join('');
}

export function formatNetworks(cidrs: string[], format: OutputFormat, opts: FormatOptions = {}): string {
  switch (format) {
    case 'plain':
      return formatPlain(cidrs);
    case 'json':
      return formatJson(cidrs, opts.walk);
    case 'nft':
      return formatNft(cidrs, opts.name);
    case 'rbldnsd':
      return formatRbldnsd(cidrs, opts.name);
    case 'postfix':
      return formatPostfix(cidrs, opts.postfixAction);
  }
}
