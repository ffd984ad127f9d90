// Address syntaxes of the config file: listen addresses ("host:port",
// "[v6]:port") and networks ("192.0.2.0/24", "2001:db8::/32", or one
// address). DNS servers are parsed by dns/servers.ts.

import ipaddr from 'ipaddr.js';
import { parseIpAddress } from '../core/ip.js';

export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function parsePort(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** A listen address "host:port" / "[v6]:port"; host is an IP or a name. Port 0 = any free port. */
export function parseListenAddress(s: string): HostPort | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  if (!m) return undefined;
  const [, host, portText] = m;
  const port = parsePort(portText);
  if (port === undefined) return undefined;
  if (s.startsWith('[') ? !ipaddr.IPv6.isValid(host) : !(ipaddr.IPv4.isValidFourPartDecimal(host) || HOSTNAME_RE.test(host))) {
    return undefined;
  }
  return { host, port };
}

/** A network "addr/len" or a single address; `::ffff:` mapped addresses count as IPv4. */
export function parseNetwork(s: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | undefined {
  try {
    if (s.includes('/')) {
      const [addr, len] = ipaddr.parseCIDR(s);
      if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && len >= 96) {
        return [(addr as ipaddr.IPv6).toIPv4Address(), len - 96];
      }
      return [addr, len];
    }
    const addr = ipaddr.process(s);
    return [addr, addr.kind() === 'ipv4' ? 32 : 128];
  } catch {
    return undefined;
  }
}

/** Does a network list contain this IP? (IPv4-mapped IPv6 is matched as IPv4.) */
export function networksContain(nets: ReadonlyArray<[ipaddr.IPv4 | ipaddr.IPv6, number]>, ip: string): string | undefined {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = parseIpAddress(ip);
  } catch {
    return undefined;
  }
  for (const [net, len] of nets) {
    if (net.kind() === addr.kind() && addr.match(net, len)) return `${net.toString()}/${len}`;
  }
  return undefined;
}
