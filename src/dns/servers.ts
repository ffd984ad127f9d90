// DNS server addresses as admins write them: `192.0.2.53`, `192.0.2.53:5353`,
// `2001:db8::53`, `[2001:db8::53]:5353`. Only IP literals: the resolver cannot
// look up the address of its own server.

import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';

export interface DnsServer {
  host: string;
  port: number;
}

export const DEFAULT_DNS_PORT = 53;

function parsePort(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new Error(`DNS server "${spec}": port must be a number from 1 to 65535, got "${text}"`);
  }
  return Number(text);
}

/** Parse `host`, `host:port`, `v6` or `[v6]:port`; throws an Error that quotes the input and says what was expected. */
export function parseServer(spec: string): DnsServer {
  const s = spec.trim();
  const expected = 'expected an IP address with an optional port: "192.0.2.53", "192.0.2.53:5353", "2001:db8::53" or "[2001:db8::53]:5353"';
  if (s === '') throw new Error(`DNS server "${spec}": empty; ${expected}`);
  let host: string;
  let port = DEFAULT_DNS_PORT;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1];
    if (bracketed[2] !== undefined) port = parsePort(bracketed[2], spec);
    if (isIP(host) !== 6) throw new Error(`DNS server "${spec}": "${host}" in brackets is not an IPv6 address; ${expected}`);
    return { host, port };
  }
  if (isIP(s) === 6) return { host: s, port };
  const colon = s.lastIndexOf(':');
  if (colon >= 0) {
    if (s.indexOf(':') !== colon) throw new Error(`DNS server "${spec}": not an IP address; write an IPv6 address with a port as "[addr]:port"`);
    host = s.slice(0, colon);
    port = parsePort(s.slice(colon + 1), spec);
  } else {
    host = s;
  }
  if (isIP(host) !== 4) throw new Error(`DNS server "${spec}": "${host}" is not an IP address; ${expected}`);
  return { host, port };
}

/** Format a server back into the text form `parseServer` reads. */
export function formatServer(server: DnsServer): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** The `nameserver` lines of a resolv.conf (the system's resolvers), as server strings. */
export function readResolvConf(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const servers: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIP(m[1])) servers.push(m[1]);
  }
  return servers;
}
