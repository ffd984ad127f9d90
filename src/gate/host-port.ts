// `host:port` and `[v6]:port`, parsed as the config's listen addresses are.

import { parseListenAddress, type HostPort } from '../config/address.js';

export type { HostPort };

export function parseHostPort(spec: string): HostPort {
  const hp = parseListenAddress(spec.trim());
  if (!hp) throw new Error(`"${spec}": expected "host:port" or "[ipv6]:port" with a port from 0 to 65535`);
  return hp;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
