// Elements as a firewall lists them ("192.0.2.7", "2001:db8::/64") back to the
// store's canonical CIDR text ("192.0.2.7/32"), so kernel and store compare.

import { formatNetwork, readNetwork } from '../../core/cidr.js';

export function canonicalOf(text: string): string | undefined {
  const r = readNetwork(text.trim());
  return r.ok ? formatNetwork(r.net) : undefined;
}
