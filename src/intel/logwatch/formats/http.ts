// nginx and Apache. Access logs in the common/combined format: the client
// address is the first field, the only one the web server writes from the
// connection; the request line, user name, referrer and user agent are the
// client's text and are only ever read for what was asked (a probe) — never
// for an address. Both servers escape `"` inside quoted fields, so the request
// is the first quoted field after the time stamp. Error logs (as files or
// through syslog): failed basic/digest logins, missing files and refusals by
// the server's access rules, each read from the client field the server
// writes before any client text (Apache) or from the `, client:` it appends
// after the message (nginx).

import { strictIp } from '../ip.js';
import { IP, type LogEvent } from './types.js';

export const ACCESS =
  /^([0-9A-Fa-f:.]{2,45}) \S+ (.*?) \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "((?:[^"\\]|\\.)*)" (\d{3}) /;

const REQUEST = /^([A-Z]{1,16}) (\S+)(?: HTTP\/\d(?:\.\d)?)?$/;

/**
 * nginx error log (ngx_log_error_core + ngx_http_log_error): `2026/11/22 05:01:02 [error] 123#123: *1 <message>, client: 1.2.3.4, server: …, request: "…", host: "…"`.
 * The same text comes through syslog (`error_log syslog:…` keeps nginx's own time stamp).
 */
export const NGINX_ERROR = /^(\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}) \[(?:emerg|alert|crit|error|warn|notice|info|debug)\] \d+#\d+: (?:\*\d+ )?/;

/**
 * The messages read after NGINX_ERROR, each ending at the `, client: ADDRESS, server: ` that
 * ngx_http_log_error appends. A Basic-auth user name ends at its first colon, so it cannot hold
 * `client: `; a path can (nginx decodes %22 and %2C into it), so path messages get the checks in
 * parseNginxError.
 */
export const NGINX_MESSAGES = {
  authFail: new RegExp(`^user "[^:]*"(?: was not found in "[^"]*"|: password mismatch), client: ${IP}, server: `),
  authNone: new RegExp(`^no user/password was provided for basic authentication, client: ${IP}, server: `),
  notFound: new RegExp(`^(?:open\\(\\) "[^"]*" failed|"[^"]*" is not found) \\(2: No such file or directory\\), client: ${IP}, server: `),
  denied: new RegExp(`^(?:access forbidden by rule|directory index of "[^"]*" is forbidden), client: ${IP}, server: `),
};

/** nginx cuts an error line at NGX_MAX_ERROR_STR (2,048 bytes) without a mark: a line this long may have lost its real `client:`. */
const NGINX_MAX_WHOLE = 2000;

/**
 * Apache error log: 2.4 (`[date] [module:level] [pid N:tid N] (errno)text: [client IP:port] AHnnnnn: message`)
 * and 2.2 (`[date] [level] [client IP] message`); through syslog the date is left out (log.c).
 * The client field is written before any client text.
 */
export const APACHE_ERROR = new RegExp(
  `^(?:\\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \\d]\\d \\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,6})? \\d{4})\\] )?\\[(?:[a-z0-9_]+:)?(?:emerg|alert|crit|error|warn|notice|info|debug|trace\\d)\\] (?:\\[pid \\d+(?::tid \\d+)?\\] )?(?:\\(-?\\d+\\)[^\\[\\]]*: )?\\[client ${IP}\\] (?:AH(\\d{5}): )?`,
);

/** Apache messages after the client field (mod_auth_basic, mod_auth_digest, mod_authz_core, mod_access_compat, core, mod_cgi, mod_proxy_fcgi, mod_autoindex). */
const APACHE_AUTH = /^user (?:.* not found: |.*: authentication failure for "|.*: password mismatch: |`.*' in realm `.*' not found: )/;
const APACHE_DENIED = /^(?:client denied by server configuration: |Cannot serve directory )/;
const APACHE_NOT_FOUND = /^(?:File does not exist: |script not found or unable to stat: |script '[^']*' not found or unable to stat|Got error 'Primary script unknown)/;

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
  if (!line.includes(', client: ')) return;
  const head = NGINX_ERROR.exec(line);
  if (!head) return;
  const msg = line.slice(head[0].length);
  const N = NGINX_MESSAGES;
  let m: RegExpExecArray | null;
  let kind: string;
  if ((m = N.authFail.exec(msg))) kind = 'http.auth-fail';
  else if ((m = N.authNone.exec(msg))) kind = 'http.auth-none';
  else {
    // A path is the client's text and may hold `", client: 6.6.6.6, server: `: believe it only when
    // the line has one `, client: ` and is short enough not to have been cut by nginx.
    if (line.length >= NGINX_MAX_WHOLE || line.indexOf(', client: ') !== line.lastIndexOf(', client: ')) return;
    if ((m = N.notFound.exec(msg))) kind = 'http.error.not-found';
    else if ((m = N.denied.exec(msg))) kind = 'http.error.denied';
    else return;
  }
  const ip = strictIp(m[1]);
  if (ip) out.push({ kind, ip, times, stamp: head[1] });
}

export function parseApacheError(line: string, times: number, out: LogEvent[]): void {
  if (!line.includes('[client ')) return;
  const m = APACHE_ERROR.exec(line);
  if (!m) return;
  const msg = line.slice(m[0].length);
  let kind: string;
  if (APACHE_AUTH.test(msg)) kind = 'http.auth-fail';
  else if (APACHE_NOT_FOUND.test(msg)) kind = 'http.error.not-found';
  else if (APACHE_DENIED.test(msg)) kind = 'http.error.denied';
  else return;
  const ip = apacheClient(m[2], line.includes('[pid '));
  if (ip) out.push(m[1] === undefined ? { kind, ip, times } : { kind, ip, times, stamp: m[1] });
}

/** Apache 2.4 writes `[client ADDRESS:PORT]` (IPv6 unbracketed: the last `:digits` is the port); 2.2 writes no port. */
function apacheClient(text: string, withPort: boolean): string | undefined {
  if (withPort) {
    const colon = text.lastIndexOf(':');
    if (colon > 0 && /^\d{1,5}$/.test(text.slice(colon + 1))) return strictIp(text.slice(0, colon));
  }
  return strictIp(text);
}
