// nginx and Apache. Access logs in the common/combined format: the client
// address is the first field, the only one the web server writes from the
// connection; the request line, user name, referrer and user agent are the
// client's text and are only ever read for what was asked (a probe) — never
// for an address. Both servers escape `"` inside quoted fields, so the request
// is the first quoted field after the time stamp. Error logs: the
// authentication failures of basic auth.

import { strictIp } from '../ip.js';
import { IP, type LogEvent } from './types.js';

export const ACCESS =
  /^([0-9A-Fa-f:.]{2,45}) \S+ (.*?) \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "((?:[^"\\]|\\.)*)" (\d{3}) /;

const REQUEST = /^([A-Z]{1,16}) (\S+)(?: HTTP\/\d(?:\.\d)?)?$/;

/**
 * nginx error log: `2026/11/22 05:01:02 [error] 123#123: *1 user "u" was not found in "/f", client: 1.2.3.4, server: …`.
 * The user name comes from a Basic credential, which ends at its first colon: it cannot contain `client: `.
 */
export const NGINX_ERROR = new RegExp(
  `^(\\d{4}/\\d{2}/\\d{2} \\d{2}:\\d{2}:\\d{2}) \\[(?:error|warn|crit|alert|info|notice)\\] \\d+#\\d+: \\*\\d+ user "[^:]*"(?: was not found in "[^"]*"|: password mismatch), client: ${IP}, server: `,
);

/**
 * Apache error log, 2.4 (`[client IP:port] AH01617/AH01618`) and 2.2 (`[client IP] user x: authentication failure`).
 * The client field is written before any client text.
 */
export const APACHE_ERROR = new RegExp(
  `^\\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \\d]\\d \\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,6})? \\d{4})\\] \\[(?:(?:auth_basic|auth_digest|authn_file|core):)?error\\](?: \\[pid \\d+(?::tid \\d+)?\\])? \\[client ${IP}\\] (?:AH0161[78]: )?user .*(?: not found: | authentication failure for | password mismatch)`,
  'i',
);

export type Probe = 'env' | 'tmunblock' | 'git' | 'wordpress' | 'wp-login' | 'xmlrpc' | 'phpmyadmin' | 'cgi-bin';

/** Requests that may be a probe counted whatever the answer (or are percent-encoded and need a closer look). */
const MAYBE_PROBE = /\.env|tmunblock|\.git|wp-login|xmlrpc|%/i;

/** Kind names as constants: a string built per event would be hashed and compared afresh every time. */
const PROBE_KINDS: Record<Probe, string> = {
  env: 'http.probe.env',
  tmunblock: 'http.probe.tmunblock',
  git: 'http.probe.git',
  wordpress: 'http.probe.wordpress',
  'wp-login': 'http.probe.wp-login',
  xmlrpc: 'http.probe.xmlrpc',
  phpmyadmin: 'http.probe.phpmyadmin',
  'cgi-bin': 'http.probe.cgi-bin',
};

/** Probes that no honest client asks for, whatever the answer was. */
const ALWAYS = new Set<Probe>(['env', 'tmunblock', 'git']);

function decodePath(target: string): string {
  let path = target;
  const q = path.search(/[?#]/);
  if (q >= 0) path = path.slice(0, q);
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      // not valid percent-encoding: match the raw text
    }
  }
  return path.toLowerCase();
}

/** What a request path probes for, if it is a known probe. */
export function classifyProbe(method: string, target: string): Probe | undefined {
  const path = decodePath(target);
  if (/\/\.env(?:[._-][^/]*)?\/?$/.test(path)) return 'env';
  if (path.includes('tmunblock.cgi')) return 'tmunblock';
  if (/\/\.git(?:\/|$)/.test(path)) return 'git';
  if (path.includes('wp-login.php')) return method === 'POST' ? 'wp-login' : 'wordpress';
  if (path.includes('xmlrpc.php')) return method === 'POST' ? 'xmlrpc' : 'wordpress';
  if (/\/(?:wp-admin|wp-includes|wp-content)(?:\/|$)|wlwmanifest\.xml/.test(path)) return 'wordpress';
  if (/phpmyadmin|\/(?:pma|myadmin|mysqladmin|sqladmin|dbadmin)(?:\/|$)/.test(path)) return 'phpmyadmin';
  if (path.includes('/cgi-bin/')) return 'cgi-bin';
  return undefined;
}

/** Events of one access-log line (common or combined format). */
export function parseAccess(line: string, times: number, out: LogEvent[]): void {
  const m = ACCESS.exec(line);
  if (!m) return;
  const status = m[5];
  const code = status.charCodeAt(0);
  const failed = code === 52 || code === 53; // 4xx, 5xx
  // Most requests succeed and ask for nothing suspicious: classify only failures and the few probes that count anyway.
  const request = failed || MAYBE_PROBE.test(m[4]) ? REQUEST.exec(m[4]) : null;
  const probe = request ? classifyProbe(request[1], request[2]) : undefined;
  // A probe counts when it failed (the thing is not there), or always for the unambiguous ones;
  // a POST to wp-login.php counts unless it logged in (302 to the dashboard).
  const countsProbe =
    probe !== undefined && (ALWAYS.has(probe) || failed || (probe === 'wp-login' && status !== '302') || (probe === 'xmlrpc' && code === 50));
  const authFail = status === '401' && m[2] !== '-' && m[2] !== '';
  const errorBurst = status === '404' || status === '403';
  if (!countsProbe && !authFail && !errorBurst) return;
  const ip = strictIp(m[1]);
  if (!ip) return;
  const stamp = m[3];
  if (countsProbe) out.push({ kind: PROBE_KINDS[probe], ip, times, stamp });
  if (errorBurst) out.push({ kind: status === '404' ? 'http.status.404' : 'http.status.403', ip, times, stamp });
  if (authFail) out.push({ kind: 'http.auth-fail', ip, times, stamp });
}

export function parseNginxError(line: string, times: number, out: LogEvent[]): void {
  if (!line.includes(' user "')) return;
  const m = NGINX_ERROR.exec(line);
  if (!m) return;
  const ip = strictIp(m[2]);
  if (ip) out.push({ kind: 'http.auth-fail', ip, times, stamp: m[1] });
}

export function parseApacheError(line: string, times: number, out: LogEvent[]): void {
  if (!line.includes('[client ')) return;
  const m = APACHE_ERROR.exec(line);
  if (!m) return;
  const ip = apacheClient(m[2], line.includes('[pid '));
  if (ip) out.push({ kind: 'http.auth-fail', ip, times, stamp: m[1] });
}

/** Apache 2.4 writes `[client ADDRESS:PORT]` (IPv6 unbracketed: the last `:digits` is the port); 2.2 writes no port. */
function apacheClient(text: string, withPort: boolean): string | undefined {
  if (withPort) {
    const colon = text.lastIndexOf(':');
    if (colon > 0 && /^\d{1,5}$/.test(text.slice(colon + 1))) return strictIp(text.slice(0, colon));
  }
  return strictIp(text);
}
