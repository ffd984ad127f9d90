// This host's own addresses: every local interface's address (read once, at
// start, from os.networkInterfaces()) and loopback. Never banned, by any
// source: BaseStore.ban() refuses them, and a ban that reaches this host
// another way (another host's ban through the shared Redis feed, a row
// written into the SQLite file by another program) never matches them in a
// lookup (MemoryIndex). Banning ourselves would cut the gate off from its
// own backend and the admin off from the host.

import { networkInterfaces } from 'node:os';
import { formatNetworkAddress, parseNetwork } from '../core/cidr.js';

/** Always this host's, whatever the interfaces say. */
export const LOOPBACK = ['127.0.0.0/8', '::1/128'];

export interface OwnAddress {
  /** Canonical address (IPv4-mapped shown as IPv4; zone ids dropped). */
  address: string;
  /** The interface it is on (`lo`, `eth0`). */
  iface: string;
}

/** The addresses of every local interface, now. */
export function localInterfaceAddresses(): OwnAddress[] {
  const out: OwnAddress[] = [];
  for (const [iface, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      const n = parseNetwork(a.address.replace(/%.*$/, ''));
      if (n) out.push({ address: formatNetworkAddress(n), iface });
    }
  }
  return out;
}
