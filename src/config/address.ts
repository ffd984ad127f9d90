// Address syntaxes of the config file: listen addresses ("host:port",
// "[v6]:port") and networks ("192.0.2.0/24", "2001:db8::/32", or one
// address). DNS servers are parsed by dns/servers.ts.

import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { firstContaining, formatNetwork, parseNetwork as parseCoreNetwork, readExactNetwork, type Network } from '../core/cidr.js';
import { unwrapIpText } from '../core/ip.js';

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

/** A network "addr/len" or a single address, strict as src/core/cidr.ts reads it; host bits are cleared. */
export function parseNetwork(s: string): Network | undefined {
  return parseCoreNetwork(s);
}

/**
 * A network in the config file: strict, and host bits set are an error that
 * names the network meant (Postfix warns the same of `mynetworks`).
 */
export const networkSchema = z.string().superRefine((s, ctx) => {
  const r = readExactNetwork(s);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: `expected an IP address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32): ${r.why}` });
});

/** Does a network list contain this IP? The matching network's text, or undefined. (IPv4-mapped IPv6 is matched as IPv4.) */
export function networksContain(nets: readonly Network[], ip: string): string | undefined {
  const hit = firstContaining(nets, unwrapIpText(ip));
  return hit && formatNetwork(hit);
}
