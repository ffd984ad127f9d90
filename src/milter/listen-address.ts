// milter.listen: `inet:HOST:PORT` (HOST an IP, `[v6]`, or a name) or
// `unix:/path/to/socket`, the spelling Postfix's smtpd_milters uses.

import { parseListenAddress, type HostPort } from '../config/address.js';

export type MilterAddress = ({ kind: 'inet' } & HostPort) | { kind: 'unix'; path: string };

export function parseMilterAddress(s: string): MilterAddress | undefined {
  if (s.startsWith('inet:')) {
    const hp = parseListenAddress(s.slice(5));
    return hp && { kind: 'inet', ...hp };
  }
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    return path.startsWith('/') && !path.includes('\0') ? { kind: 'unix', path } : undefined;
  }
  return undefined;
}

export function formatMilterAddress(a: MilterAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `inet:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
