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
import { ascii, ScriptWriter } from './script-writer.js';

export const NFT_TABLE = 'frontline';
/** The kernel refuses longer element timeouts; a longer ban is refreshed by every reconcile. */
export const NFT_MAX_TIMEOUT_S = 365 * 86400;
/** Elements per `add element` statement (all in one transaction). */
export const NFT_CHUNK = 20_000;

type SetName = 'allow4' | 'allow6' | 'ban4' | 'ban6' | 'ban4_nets' | 'ban6_nets';

function setOf(b: BanElement): SetName {
  return isHost(b.net) ? (b.net.v6 ? 'ban6' : 'ban4') : b.net.v6 ? 'ban6_nets' : 'ban4_nets';
}

/**
 * The `size` of a host set holding `count` elements: room for the increments
 * until the next reconcile (at least NFT_SIZE_ROOM more, or half as many
 * again). The kernel sizes the set's hash table from it at creation, instead
 * of from 65,536 and growing it while a million elements go in, rehashing as
 * it goes (bench/firewall.ts: about a third of the kernel's time). It is also
 * a limit: an increment that finds the set full fails, and the full
 * reconcile that follows a failed increment sizes it anew.
 */
export function nftHashSize(count: number, room = NFT_SIZE_ROOM): number {
  return count + Math.max(room, Math.ceil(count / 2));
}

/** The least headroom of a host set (the kernel's own default size hint). */
export const NFT_SIZE_ROOM = 65_536;

/** The sets of DesiredState.others (IPv4 hosts are hosts4), in the order the script fills them. */
const OTHER_SETS: SetName[] = ['ban6', 'ban4_nets', 'ban6_nets'];
const COMMA = ascii(', ');
const TIMEOUT = ascii(' timeout ');
const SECONDS = ascii('s');
const CLOSE = ascii(' }\n');

/** `count` elements of one set, NFT_CHUNK to an `add element` statement; `element(i)` writes the i-th. */
function addStatements(w: ScriptWriter, set: SetName, count: number, element: (i: number) => void): void {
  for (let i = 0; i < count; i += NFT_CHUNK) {
    w.text(`add element inet ${NFT_TABLE} ${set} { `);
    const end = Math.min(count, i + NFT_CHUNK);
    for (let k = i; k < end; k++) {
      if (k > i) w.bytes(COMMA);
      element(k);
    }
    w.bytes(CLOSE);
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
export function nftFullScript(state: DesiredState, rules: FirewallRules, now: number, sizeRoom = NFT_SIZE_ROOM): string {
  const head = [
    `# frontline: the whole of table inet ${NFT_TABLE}, replaced in one transaction`,
    // "add" first so that "delete" finds a table the first time too.
    `add table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    '  set allow4 { type ipv4_addr; flags interval; }',
    '  set allow6 { type ipv6_addr; flags interval; }',
    `  set ban4 { type ipv4_addr; size ${nftHashSize(state.hosts4.addr.length, sizeRoom)}; flags timeout; }`,
    `  set ban6 { type ipv6_addr; size ${nftHashSize(state.others.filter((b) => b.net.v6 && b.net.len === 128).length, sizeRoom)}; flags timeout; }`,
    '  set ban4_nets { type ipv4_addr; flags interval, timeout; }',
    '  set ban6_nets { type ipv6_addr; flags interval, timeout; }',
    '  chain input {',
    '    type filter hook input priority filter - 10; policy accept;',
    ...nftRuleLines(rules).map((l) => `    ${l}`),
    '  }',
    '}',
  ];
  const w = new ScriptWriter();
  w.text(`${head.join('\n')}\n`);
  const allow4: string[] = [];
  const allow6: string[] = [];
  for (const c of state.allow) (c.includes(':') ? allow6 : allow4).push(c);
  addStatements(w, 'allow4', allow4.length, (i) => w.text(allow4[i]));
  addStatements(w, 'allow6', allow6.length, (i) => w.text(allow6[i]));
  const { addr, expiresAt } = state.hosts4;
  addStatements(w, 'ban4', addr.length, (i) => w.v4(addr[i]).bytes(TIMEOUT).secondsLeft(expiresAt[i], now, NFT_MAX_TIMEOUT_S).bytes(SECONDS));
  const bySet = new Map<SetName, BanElement[]>(OTHER_SETS.map((set) => [set, []]));
  for (const b of state.others) bySet.get(setOf(b))?.push(b);
  for (const [set, els] of bySet) {
    addStatements(w, set, els.length, (i) => w.text(els[i].text).bytes(TIMEOUT).secondsLeft(els[i].expiresAt, now, NFT_MAX_TIMEOUT_S).bytes(SECONDS));
  }
  return w.toString();
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

/** `sizeRoom`: the least headroom of the host sets (nftHashSize; tests fill a set with a small one). */
export function nftBackend(nft = 'nft', opts: { sizeRoom?: number } = {}): FirewallBackend {
  return {
    name: 'nft',
    timeouts: true,
    disjointNets: true,
    full: (state, rules, now): FirewallCommand[] => [{ argv: [nft, '-f', '-'], stdin: nftFullScript(state, rules, now, opts.sizeRoom) }],
    increment: (add, del, now) => [{ argv: [nft, '-f', '-'], stdin: nftIncrementScript(add, del, now) }],
    flush: () => [{ argv: [nft, '-f', '-'], stdin: `add table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n` }],
    list: () => [{ argv: [nft, '-j', 'list', 'table', 'inet', NFT_TABLE], absentOk: /No such file or directory/ }],
    parse: (outputs) => parseNftJson(outputs[0] ?? ''),
  };
}
