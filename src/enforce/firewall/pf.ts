// pf (OpenBSD, FreeBSD): a table <frontline_ban> in the anchor "frontline",
// and one rule there that blocks TCP from it. pf.conf must name the anchor
// (`anchor "frontline"`) where frontline's rule belongs; frontline loads only
// the anchor, never the main ruleset. A full reconcile is one
// `pfctl -T replace` of the table.
//
// pf tables have no per-entry timeout: an expired ban leaves the table at
// the reconcile the reconciler runs when the earliest ban ends. The allow set
// is written into the same table as negated entries (`!192.0.2.0/24`): pf
// looks a table up by longest prefix, and a negated best match is no match,
// so an allowed address inside a banned network still passes.
//
// Not run here (Linux has no pf): the scripts are tested against golden files
// (test/fixtures/firewall/pf-*.txt).

import { banElements } from './desired.js';
import { canonicalOf } from './kernel-text.js';
import type { BanElement, DesiredState, FirewallBackend, FirewallCommand, FirewallRules, KernelState } from './types.js';

export const PF_ANCHOR = 'frontline';
export const PF_TABLE = 'frontline_ban';

/** The anchor's ruleset (`pfctl -a frontline -f -`). The table is created by the rule that names it. */
export function pfRules(rules: FirewallRules): string {
  const verdict = rules.action === 'reject' ? 'block return' : 'block drop';
  const to = rules.ports.length === 0 ? '' : ` to any port ${rules.ports.length === 1 ? rules.ports[0] : `{ ${rules.ports.join(' ')} }`}`;
  return `# frontline: the anchor "${PF_ANCHOR}" (pf.conf: anchor "${PF_ANCHOR}")\n${verdict} in quick proto tcp from <${PF_TABLE}>${to}\n`;
}

/** The table's whole contents (`pfctl -T replace -f -`): bans, then the allow set negated. */
export function pfTable(state: DesiredState): string {
  const lines = banElements(state).map((b) => b.cidr);
  for (const c of state.allow) lines.push(`!${c}`);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

const cidrLines = (els: BanElement[]) => `${els.map((b) => b.cidr).join('\n')}\n`;

export function parsePfShow(text: string): KernelState {
  const state: KernelState = { bans: new Map(), allow: new Set(), present: text.trim() !== '' };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const neg = line.startsWith('!');
    const cidr = canonicalOf(neg ? line.slice(1) : line);
    if (cidr === undefined) continue;
    if (neg) state.allow.add(cidr);
    else state.bans.set(cidr, undefined);
  }
  return state;
}

export function pfBackend(pfctl = 'pfctl'): FirewallBackend {
  const table = [pfctl, '-a', PF_ANCHOR, '-t', PF_TABLE, '-T'];
  return {
    name: 'pf',
    timeouts: false,
    disjointNets: false,
    full: (state: DesiredState, rules: FirewallRules): FirewallCommand[] => [
      { argv: [pfctl, '-a', PF_ANCHOR, '-f', '-'], stdin: pfRules(rules) },
      { argv: [...table, 'replace', '-f', '-'], stdin: pfTable(state) },
    ],
    increment(add, del) {
      const cmds: FirewallCommand[] = [];
      if (add.length > 0) cmds.push({ argv: [...table, 'add', '-f', '-'], stdin: cidrLines(add) });
      if (del.length > 0) cmds.push({ argv: [...table, 'delete', '-f', '-'], stdin: cidrLines(del) });
      return cmds;
    },
    flush: () => [
      { argv: [pfctl, '-a', PF_ANCHOR, '-F', 'rules'] },
      { argv: [...table, 'kill'], absentOk: /does not exist/ },
    ],
    list: () => [{ argv: [...table, 'show'], absentOk: /does not exist/ }],
    parse: (outputs) => parsePfShow(outputs[0] ?? ''),
  };
}
