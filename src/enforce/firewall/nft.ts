// nftables: one table of frontline's own, `table inet frontline`, never
// anyone else's. Per family a set of hosts (`flags timeout`, a hash) and a set
// of networks (`flags interval, timeout`), each element with the ban's
// remaining time as its timeout, so a ban ends in the kernel even while
// frontline is down; an allow set per family accepted before the drop rules.
//
// Hosts have a set of their own because an interval set is several times
// slower to load (bench/firewall.ts: 100,000 hosts) and refuses an element
// inside another, which a host banned inside a banned /24 is.
//
// A full reconcile deletes and rebuilds the table in one `nft -f` run: one
// transaction, so the kernel goes from the old sets to the new ones at once,
// never through an empty table. `accept` in our chain only means "frontline
// does not drop it": other tables' chains still see the packet.

import { isHost } from './desired.js';
import { secondsLeft, type BanElement, type DesiredState, type FirewallBackend, type FirewallCommand, type FirewallRules, type KernelState } from './types.js';
import { canonicalOf } from './kernel-text.js';

export const NFT_TABLE = 'frontline';
/** The kernel refuses longer element timeouts; a longer ban is refreshed by every reconcile. */
export const NFT_MAX_TIMEOUT_S = 365 * 86400;
/** Elements per `add element` statement (all in one transaction). */
const CHUNK = 20_000;

type SetName = 'allow4' | 'allow6' | 'ban4' | 'ban6' | 'ban4_nets' | 'ban6_nets';

function setOf(b: BanElement): SetName {
  return isHost(b.net) ? (b.net.v6 ? 'ban6' : 'ban4') : b.net.v6 ? 'ban6_nets' : 'ban4_nets';
}

function addStatements(out: string[], set: SetName, elements: string[]): void {
  for (let i = 0; i < elements.length; i += CHUNK) {
    out.push(`add element inet ${NFT_TABLE} ${set} { ${elements.slice(i, i + CHUNK).join(', ')} }`);
  }
}

export function nftRuleLines(rules: FirewallRules): string[] {
  const ports = rules.ports.length === 0 ? 'meta l4proto tcp' : rules.ports.length === 1 ? `tcp dport ${rules.ports[0]}` : `tcp dport { ${rules.ports.join(', ')} }`;
  const verdict = rules.action === 'reject' ? 'reject with tcp reset' : 'drop';
  return [
    'ip saddr @allow4 accept',
    'ip6 saddr @allow6 accept',
    `${ports} ip saddr @ban4 ${verdict}`,
    `${ports} ip saddr @ban4_nets ${verdict}`,
    `${ports} ip6 saddr @ban6 ${verdict}`,
    `${ports} ip6 saddr @ban6_nets ${verdict}`,
  ];
}

/** The whole table, elements included: the input of one `nft -f`. */
export function nftFullScript(state: DesiredState, rules: FirewallRules, now: number): string {
  const out = [
    `# frontline: the whole of table inet ${NFT_TABLE}, replaced in one transaction`,
    // "add" first so that "delete" finds a table the first time too.
    `add table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    '  set allow4 { type ipv4_addr; flags interval; }',
    '  set allow6 { type ipv6_addr; flags interval; }',
    '  set ban4 { type ipv4_addr; flags timeout; }',
    '  set ban6 { type ipv6_addr; flags timeout; }',
    '  set ban4_nets { type ipv4_addr; flags interval, timeout; }',
    '  set ban6_nets { type ipv6_addr; flags interval, timeout; }',
    '  chain input {',
    '    type filter hook input priority filter - 10; policy accept;',
    ...nftRuleLines(rules).map((l) => `    ${l}`),
    '  }',
    '}',
  ];
  const allow4: string[] = [];
  const allow6: string[] = [];
  for (const c of state.allow) (c.includes(':') ? allow6 : allow4).push(c);
  addStatements(out, 'allow4', allow4);
  addStatements(out, 'allow6', allow6);
  const bySet = new Map<SetName, string[]>();
  for (const b of state.bans) {
    const set = setOf(b);
    let l = bySet.get(set);
    if (!l) bySet.set(set, (l = []));
    l.push(`${b.text} timeout ${secondsLeft(b.expiresAt, now, NFT_MAX_TIMEOUT_S)}s`);
  }
  for (const [set, els] of bySet) addStatements(out, set, els);
  return `${out.join('\n')}\n`;
}

/**
 * Added elements (an existing one gets the new timeout) and deleted ones.
 * A delete is preceded by an add of the same element, so that deleting one
 * the kernel already let expire is not an error that fails the transaction.
 */
export function nftIncrementScript(add: BanElement[], del: BanElement[], now: number): string {
  const out: string[] = [];
  for (const b of add) out.push(`add element inet ${NFT_TABLE} ${setOf(b)} { ${b.text} timeout ${secondsLeft(b.expiresAt, now, NFT_MAX_TIMEOUT_S)}s }`);
  for (const b of del) {
    out.push(`add element inet ${NFT_TABLE} ${setOf(b)} { ${b.text} timeout 1s }`);
    out.push(`delete element inet ${NFT_TABLE} ${setOf(b)} { ${b.text} }`);
  }
  return `${out.join('\n')}\n`;
}

interface NftJsonElem {
  elem?: { val?: unknown; timeout?: number; expires?: number };
  prefix?: { addr: string; len: number };
  range?: [string, string];
}

function elemText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as NftJsonElem;
    if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
    if (o.elem) return elemText(o.elem.val);
  }
  return undefined;
}

/** `nft -j list table inet frontline` → what the kernel holds (an absent table: present false). */
export function parseNftJson(text: string): KernelState {
  const state: KernelState = { bans: new Map(), allow: new Set(), present: false };
  if (text.trim() === '') return state;
  const doc = JSON.parse(text) as { nftables?: Array<{ set?: { name: string; table: string; elem?: unknown[] }; table?: { name: string } }> };
  for (const item of doc.nftables ?? []) {
    if (item.table?.name === NFT_TABLE) state.present = true;
    const set = item.set;
    if (!set || set.table !== NFT_TABLE) continue;
    for (const e of set.elem ?? []) {
      const text = elemText(e);
      const cidr = text === undefined ? undefined : canonicalOf(text);
      if (cidr === undefined) continue;
      if (set.name.startsWith('allow')) state.allow.add(cidr);
      else {
        const inner = (e as NftJsonElem).elem;
        state.bans.set(cidr, inner?.expires ?? inner?.timeout);
      }
    }
  }
  return state;
}

export function nftBackend(nft = 'nft'): FirewallBackend {
  return {
    name: 'nft',
    timeouts: true,
    disjointNets: true,
    full: (state, rules, now): FirewallCommand[] => [{ argv: [nft, '-f', '-'], stdin: nftFullScript(state, rules, now) }],
    increment: (add, del, now) => [{ argv: [nft, '-f', '-'], stdin: nftIncrementScript(add, del, now) }],
    flush: () => [{ argv: [nft, '-f', '-'], stdin: `add table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n` }],
    list: () => [{ argv: [nft, '-j', 'list', 'table', 'inet', NFT_TABLE], absentOk: /No such file or directory/ }],
    parse: (outputs) => parseNftJson(outputs[0] ?? ''),
  };
}
