// Dovecot 2.2–2.3. The login processes (imap-login, pop3-login,
// submission-login, managesieve-login) end their lines with the fields of
// login_log_format_elements (`user=<%u> method=%m rip=%r lip=%l mpid=%e %c
// session=<…>`, empty ones left out) after the user name, which is the
// client's text: the pattern is anchored on that tail at the end of the line,
// so only the last, real `rip=` can match. `%c` is `secured`, `TLS`, or `TLS
// [handshaking]: <OpenSSL error>` (which may hold commas); it is allowed no
// `<` or `>`, so it cannot reach back over the `>` that closes the user name.
// The one TLS error that quotes the client — `Received invalid SSL
// certificate: …` with the certificate's subject, written after the address —
// makes the line unreadable, and it is skipped.
//
// The auth process writes `mech(user,rip[,<session>]): <message>`, with the
// prefix `auth-worker(pid): [conn …: auth-worker<n>: ]` for worker lookups
// (2.3): the address sits between the user name and a fixed message, and only
// the fixed endings are accepted — lines that end in client text (`(given
// password: …)`, written with auth_verbose_passwords=plain) are not read.
// Cut lines are never read.
//
// Only `(auth failed, N attempts …)` counts as a failed login: Dovecot writes
// `(auth service reported temporary failure)`, `(internal failure …)` or
// `(auth process communication failure)` when the fault is its own.

import { strictIp } from '../ip.js';
import { IP, type Entry, type Format, type LogEvent } from './types.js';

/** After `lip=`: mpid, ports, then `%c` (secured / TLS status), then the session id. */
const TAIL =
  '(?:, (?:mpid=\\d+|lport=\\d+|rport=\\d+|secured))*(?:, (?:TLS|SSL)(?: handshaking)?(?: \\(proxied\\))?(?:: [^<>]*?)?)?(?:, session=<[A-Za-z0-9+/=]*>)?$';
const LIP = 'lip=[0-9A-Fa-f:.]+';

export const DOVECOT_PATTERNS = {
  login: new RegExp(
    `^[a-z0-9]+-login: (?:Info: )?(?:Disconnected|Aborted login|Login aborted)(?:: [^<>()]*?(?:\\([^<>()]*\\)[^<>()]*?)*)? \\(auth failed, (\\d+) attempts? in \\d+ secs\\)(?: \\([a-z_]+\\))?: user=<.*>(?:, method=[A-Za-z0-9_-]+)?, rip=${IP}, ${LIP}${TAIL}`,
  ),
  invalidCommands: new RegExp(
    `^[a-z0-9]+-login: (?:Info: )?Disconnected: Too many (?:invalid |bad )+(?:IMAP )?commands\\.? \\(no auth attempts in \\d+ secs\\): user=<.*>, rip=${IP}, ${LIP}${TAIL}`,
  ),
  auth: new RegExp(
    `^auth(?:-worker\\(\\d+\\))?: (?:Info: )?(?:conn unix:[^ ]+ \\(pid=\\d+,uid=\\d+\\): )?(?:auth-worker<\\d+>: )?[a-z0-9-]+\\(.*,${IP}(?:,<[A-Za-z0-9+/=]*>)?\\): ` +
      '(?:[Pp]assword mismatch|unknown user|invalid credentials|pam_authenticate\\(\\) failed: (?:Authentication failure|User not known to the underlying authentication module)(?: \\(password mismatch\\?\\))?)' +
      '(?: \\(SHA1 of given password: [0-9a-f]+\\))?(?: - trying the next (?:passdb|userdb))?$',
  ),
};

/** Dovecot attempts per line are its own count; a cap keeps one line from being a flood. */
const MAX_ATTEMPTS = 100;

const LOGIN_PROGRAM = /^[a-z0-9]+-login$/;
/** `auth`, `auth-worker(3402)`: the tags of Dovecot's own log file (log_path), and of syslog with log_prefix. */
const AUTH_PROGRAM = /^auth(?:-worker(?:\(\d+\))?)?$/;

function push(kind: string, text: string, times: number, out: LogEvent[]): void {
  const ip = strictIp(text);
  if (ip) out.push({ kind, ip, times });
}

function parseLogin(msg: string, entry: Entry, out: LogEvent[]): void {
  // The client's certificate subject, written after the address (iostream-openssl.c).
  if (msg.includes('SSL certificate')) return;
  let m: RegExpExecArray | null;
  if (msg.includes('(auth failed, ')) {
    if ((m = DOVECOT_PATTERNS.login.exec(msg))) {
      push('dovecot.auth-fail', m[2], entry.times * Math.min(Math.max(Number(m[1]), 1), MAX_ATTEMPTS), out);
    }
  } else if (msg.includes(': Too many ') && (m = DOVECOT_PATTERNS.invalidCommands.exec(msg))) {
    push('dovecot.probe', m[1], entry.times, out);
  }
}

export const dovecot: Format = {
  name: 'dovecot',
  accepts: (program) =>
    program === undefined || program === 'dovecot' || AUTH_PROGRAM.test(program) || LOGIN_PROGRAM.test(program),
  parse(entry, out) {
    if (entry.cut) return;
    // Tags like `imap-login` (log_prefix, or Dovecot's own log file) leave the service name out of the message: put it back.
    const msg = entry.program !== undefined && entry.program !== 'dovecot' ? `${entry.program}: ${entry.message}` : entry.message;
    if (msg.startsWith('auth')) {
      const m = DOVECOT_PATTERNS.auth.exec(msg);
      if (m) push('dovecot.auth-mismatch', m[1], entry.times, out);
    } else if (msg.includes('-login: ')) parseLogin(msg, entry, out);
  },
};
