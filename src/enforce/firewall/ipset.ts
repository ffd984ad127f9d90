// ipset + iptables/ip6tables: four sets of frontline's own (frontline-ban4,
// -ban6 with per-element timeouts; frontline-allow4, -allow6) and a chain
// FRONTLINE in the filter table, jumped to from INPUT. A hash:net set holds
// a host inside a banned network, so nothing needs to be made disjoint.
//
// A full reconcile is one `ipset restore`: the new contents go into
// temporary sets that are swapped with the live ones, so a packet sees the
// old set or the new one, never a half-filled one. The allow rule RETURNs
// rather than ACCEPTs: frontline only declines to drop, the admin's own
// INPUT rules still decide.

import { canonicalOf } from './kernel-text.js';
import { ascii, ScriptWriter } from './script-writer.js';
import { secondsLeft, type BanElement, type DesiredState, type FirewallBackend, type FirewallCommand, type FirewallRules, type KernelState } from './types.js';

export const IPSET_CHAIN = 'FRONTLINE';
/** ipset's largest timeout (s); a longer ban is refreshed by every reconcile. */
export const IPSET_MAX_TIMEOUT_S = 2_147_483;
/** A limit, not an allocation: the hash grows as elements come. */
const MAX_ELEMENTS = 16_777_216;

const FAMILIES = [
  { v: 4, family: 'inet', tables: 'iptables' },
  { v: 6, family: 'inet6', tables: 'ip6tables' },
] as const;

const banSet = (v: 4 | 6) => `frontline-ban${v}`;
const allowSet = (v: 4 | 6) => `frontline-allow${v}`;

const TIMEOUT = ascii(' timeout ');
const NEWLINE = ascii('\n');

/** The input of one `ipset -exist restore`: every set refilled through a temporary one and swapped in. */
export function ipsetFullScript(state: DesiredState, now: number): string {
  const w = new ScriptWriter();
  for (const { v, family } of FAMILIES) {
    for (const [name, timeout] of [
      [allowSet(v), false],
      [banSet(v), true],
    ] as const) {
      const spec = `hash:net family ${family}${timeout ? ' timeout 0' : ''} maxelem ${MAX_ELEMENTS}`;
      const tmp = `${name}-new`;
      w.text(`create ${name} ${spec}\ncreate ${tmp} ${spec}\nflush ${tmp}\n`);
      const add = ascii(`add ${tmp} `);
      if (timeout) {
        if (v === 4) {
          const { addr, expiresAt } = state.hosts4;
          for (let i = 0; i < addr.length; i++) w.bytes(add).v4(addr[i]).bytes(TIMEOUT).secondsLeft(expiresAt[i], now, IPSET_MAX_TIMEOUT_S).bytes(NEWLINE);
        }
        for (const b of state.others) if (b.net.v6 === (v === 6)) w.bytes(add).text(b.text).bytes(TIMEOUT).secondsLeft(b.expiresAt, now, IPSET_MAX_TIMEOUT_S).bytes(NEWLINE);
      } else {
        for (const c of state.allow) if (c.includes(':') === (v === 6)) w.bytes(add).text(c).bytes(NEWLINE);
      }
      w.text(`swap ${tmp} ${name}\ndestroy ${tmp}\n`);
    }
  }
  return w.toString();
}

/** The FRONTLINE chain for one family (iptables-restore --noflush replaces its rules, nothing else). */
export function iptablesChain(v: 4 | 6, rules: FirewallRules): string {
  const target = rules.action === 'reject' ? 'REJECT --reject-with tcp-reset' : 'DROP';
  const lines = ['*filter', `:${IPSET_CHAIN} - [0:0]`, `-A ${IPSET_CHAIN} -m set --match-set ${allowSet(v)} src -j RETURN`];
  // multiport takes at most 15 ports per rule.
  const groups: string[] = [];
  for (let i = 0; i < rules.ports.length; i += 15) groups.push(` -m multiport --dports ${rules.ports.slice(i, i + 15).join(',')}`);
  if (groups.length === 0) groups.push('');
  for (const g of groups) lines.push(`-A ${IPSET_CHAIN} -p tcp${g} -m set --match-set ${banSet(v)} src -j ${target}`);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

export function ipsetIncrementScript(add: BanElement[], del: BanElement[], now: number): string {
  const out: string[] = [];
  for (const b of add) out.push(`add ${banSet(b.net.v6 ? 6 : 4)} ${b.text} timeout ${secondsLeft(b.expiresAt, now, IPSET_MAX_TIMEOUT_S)}`);
  for (const b of del) out.push(`del ${banSet(b.net.v6 ? 6 : 4)} ${b.text}`);
  return `${out.join('\n')}\n`;
}

/** `ipset save NAME` outputs (the four sets) → what the kernel holds. */
export function parseIpsetSave(outputs: string[]): KernelState {
  const state: KernelState = { bans: new Map(), allow: new Set(), present: false };
  for (const text of outputs) {
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[0] === 'create' && f[1]?.startsWith('frontline-')) state.present = true;
      if (f[0] !== 'add' || f.length < 3) continue;
      const cidr = canonicalOf(f[2]);
      if (cidr === undefined) continue;
      if (f[1].startsWith('frontline-allow')) state.allow.add(cidr);
      else if (f[1].startsWith('frontline-ban')) {
        const t = f.indexOf('timeout');
        state.bans.set(cidr, t > 0 ? Number(f[t + 1]) : undefined);
      }
    }
  }
  return state;
}

export function ipsetBackend(bin: { ipset?: string; iptables?: string; ip6tables?: string } = {}): FirewallBackend {
  const ipset = bin.ipset ?? 'ipset';
  const tables = { 4: bin.iptables ?? 'iptables', 6: bin.ip6tables ?? 'ip6tables' };
  return {
    name: 'ipset',
    timeouts: true,
    disjointNets: false,
    full(state, rules, now) {
      const cmds: FirewallCommand[] = [{ argv: [ipset, '-exist', 'restore'], stdin: ipsetFullScript(state, now) }];
      for (const { v } of FAMILIES) {
        cmds.push({ argv: [`${tables[v]}-restore`, '--noflush'], stdin: iptablesChain(v, rules) });
        cmds.push({ argv: [tables[v], '-I', 'INPUT', '1', '-j', IPSET_CHAIN], unless: [tables[v], '-C', 'INPUT', '-j', IPSET_CHAIN] });
      }
      return cmds;
    },
    increment: (add, del, now) => [{ argv: [ipset, '-exist', 'restore'], stdin: ipsetIncrementScript(add, del, now) }],
    flush() {
      const cmds: FirewallCommand[] = [];
      for (const { v } of FAMILIES) {
        cmds.push({ argv: [tables[v], '-D', 'INPUT', '-j', IPSET_CHAIN], absentOk: /does a matching rule exist|No chain\/target\/match|Bad rule/ });
        cmds.push({ argv: [tables[v], '-F', IPSET_CHAIN], absentOk: /No chain\/target\/match|does not exist/ });
        cmds.push({ argv: [tables[v], '-X', IPSET_CHAIN], absentOk: /No chain\/target\/match|does not exist/ });
      }
      for (const { v } of FAMILIES) {
        for (const name of [banSet(v), allowSet(v)]) cmds.push({ argv: [ipset, 'destroy', name], absentOk: /does not exist/ });
      }
      return cmds;
    },
    list: () => FAMILIES.flatMap(({ v }) => [banSet(v), allowSet(v)].map((name) => ({ argv: [ipset, 'save', name], absentOk: /does not exist/ }))),
    parse: parseIpsetSave,
  };
}
