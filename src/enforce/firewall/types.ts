// What the firewall backends (nft.ts, ipset.ts, pf.ts) share: the state
// frontline wants in the kernel, the commands that put it there, and what a
// backend reads back. A backend only writes scripts and parses listings; the
// reconciler (reconciler.ts) runs them, so `--dry-run` prints exactly what a
// real run would feed the firewall.

import type { Network } from '../../core/cidr.js';
import type { Hosts4 } from './hosts4.js';

export type FirewallBackendName = 'nft' | 'ipset' | 'pf';

/** One address or network to drop, until `expiresAt` (ms). */
export interface BanElement {
  /** Canonical "addr/len" (192.0.2.7/32, 2001:db8::/64). */
  cidr: string;
  /** As firewalls write it: a host without its length ("192.0.2.7"), a network as its CIDR. */
  text: string;
  net: Network;
  expiresAt: number;
}

/** Store entries left out of the drop sets, by reason (logged once per reconcile). */
export interface SkipCounts {
  /** Not a strict IP or CIDR, or host bits set. */
  malformed: number;
  /** Wider than store.bans.min_prefix. */
  tooWide: number;
  /** Overlaps the allow set (allow lists, my_networks, store.never_ban, loopback, this host). */
  neverBan: number;
  /** Allow entries that are not an IP or CIDR. */
  allowMalformed: number;
}

export interface DesiredState {
  /** The bulk of the bans, IPv4 hosts, as numbers (sorted by address, each once). */
  hosts4: Hosts4;
  /** Every other ban (IPv6 hosts, networks) as an element. */
  others: BanElement[];
  /** Canonical CIDRs, none inside another. */
  allow: string[];
  skipped: SkipCounts;
  /** A few of the skipped entries with the reason, for the log line. */
  examples: string[];
  /**
   * nft only: network bans left out because a wider ban holds them until
   * earlier than they last; the earliest such wider ban's expiry (ms), when
   * a reconcile must put them in.
   */
  shadowedUntil?: number;
}

/** The packet filter rule around the sets. */
export interface FirewallRules {
  /** TCP destination ports dropped; empty = every TCP port. */
  ports: number[];
  action: 'drop' | 'reject';
}

/** One command: argv and what goes to its standard input. */
export interface FirewallCommand {
  argv: string[];
  stdin?: string;
  /** Run only when this probe command fails (e.g. `iptables -C` before `iptables -I`). */
  unless?: string[];
  /** A failure whose message matches this means "nothing there yet": treated as empty output (listings). */
  absentOk?: RegExp;
}

/** What the kernel holds now (from a backend's listing). */
export interface KernelState {
  /** Drop elements, canonical CIDR → seconds left (undefined: no timeout). */
  bans: Map<string, number | undefined>;
  allow: Set<string>;
  /** False when frontline's table/sets do not exist at all. */
  present: boolean;
}

export interface FirewallBackend {
  readonly name: FirewallBackendName;
  /** Whether elements expire in the kernel by themselves (nft, ipset); pf tables do not. */
  readonly timeouts: boolean;
  /** Whether network elements of one set may not overlap (nft interval sets). */
  readonly disjointNets: boolean;
  /** Replace everything frontline put into the firewall with `state` in one transaction. */
  full(state: DesiredState, rules: FirewallRules, now: number): FirewallCommand[];
  /** Add (or refresh) and delete drop elements (the expiry of those deleted does not matter). */
  increment(add: BanElement[], del: BanElement[], now: number): FirewallCommand[];
  /** Remove frontline's table / sets / rules. */
  flush(): FirewallCommand[];
  /** Commands whose output parse() reads. */
  list(): FirewallCommand[];
  parse(outputs: string[]): KernelState;
}

export function emptySkipCounts(): SkipCounts {
  return { malformed: 0, tooWide: 0, neverBan: 0, allowMalformed: 0 };
}

/** Seconds left of a ban (rounded up, at least 1), capped at what the backend accepts. */
export function secondsLeft(expiresAt: number, now: number, cap: number): number {
  return Math.min(cap, Math.max(1, Math.ceil((expiresAt - now) / 1000)));
}
