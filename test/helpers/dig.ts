// Ask a DNS server with the real `dig` (bind9-dnsutils) and read its answer:
// the tests of frontline's zone server see what an admin's dig shows.

import { execFile } from 'node:child_process';

export interface DigRecord {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigAnswer {
  /** NOERROR, NXDOMAIN, REFUSED, FORMERR, BADVERS … ('' when dig got no answer). */
  status: string;
  flags: string[];
  answer: DigRecord[];
  authority: DigRecord[];
  /** The reply carried an OPT record (EDNS). */
  edns: boolean;
  /** dig's whole output, for failure messages. */
  text: string;
}

function records(text: string, section: string): DigRecord[] {
  const m = new RegExp(`;; ${section} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(text);
  if (!m) return [];
  return m[1]
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(';'))
    .map((l) => {
      const [name, ttl, , type, ...data] = l.split(/\s+/);
      return { name, ttl: Number(ttl), type, data: data.join(' ') };
    });
}

/** `dig -p PORT @HOST name type [options]` (+norecurse +time=5 +tries=1 always). */
export function dig(dig: string, server: { host: string; port: number }, name: string, type = 'A', options: string[] = []): Promise<DigAnswer> {
  const args = ['-p', String(server.port), `@${server.host}`, name, type, '+norecurse', '+time=5', '+tries=1', ...options];
  return new Promise((resolve) => {
    execFile(dig, args, { timeout: 30_000 }, (_err, stdout, stderr) => {
      const text = `${stdout}${stderr}`;
      const status = /status: ([A-Z]+)/.exec(text)?.[1] ?? '';
      const flags = (/;; flags: ([a-z ]+);/.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
      resolve({ status, flags, answer: records(text, 'ANSWER'), authority: records(text, 'AUTHORITY'), edns: /OPT PSEUDOSECTION/.test(text), text });
    });
  });
}
