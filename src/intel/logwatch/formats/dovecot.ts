// Dovecot. The login processes end their lines with fields Dovecot writes
// (`, method=…, rip=…, lip=…, TLS, session=<…>`) after the user name, which is
// the client's text: the pattern is anchored on that tail at the end of the
// line, so only the last, real `rip=` can match. The auth process writes
// `mech(user,rip[,<session>]): Password mismatch`: the address sits between the
// user name and a fixed message, and only the fixed endings are accepted —
// lines that end in client text (`unknown user (given password: …)`) are not
// read. Cut lines are never read.

import { strictIp } from '../ip.js';
import { IP, type Format } from './types.js';

const TAIL = '(?:, (?:mpid=\\d+|lport=\\d+|rport=\\d+|TLS|SSL|secured|TLS handshaking(?:: [^,]*)?|TLS: [^,]*))*(?:, session=<[A-Za-z0-9+/=]*>)?';

export const DOVECOT_PATTERNS = {
  login: new RegExp(
    `^[a-z0-9]+-login: (?:Info: )?(?:Disconnected|Aborted login|Login aborted)(?:: [A-Za-z ]+)? \\(auth failed, (\\d+) attempts? in \\d+ secs\\)(?: \\([a-z_]+\\))?: user=<.*>, method=[A-Za-z0-9-]+, rip=${IP}, lip=[0-9A-Fa-f:.]+${TAIL}$`,
  ),
  auth: new RegExp(
    `^auth(?:-worker\\(\\d+\\))?: (?:Info: )?[a-z0-9-]+\\(.*,${IP}(?:,<[A-Za-z0-9+/=]*>)?\\): (?:Password mismatch|unknown user|pam_authenticate\\(\\) failed: (?:Authentication failure|User not known to the underlying authentication module)(?: \\(password mismatch\\?\\))?)$`,
  ),
};

/** Dovecot attempts per line are its own count; a cap keeps one line from being a flood. */
const MAX_ATTEMPTS = 100;

export const dovecot: Format = {
  name: 'dovecot',
  accepts: (program) => program === undefined || program === 'dovecot' || /^[a-z0-9]+-login$/.test(program) || program === 'auth',
  parse(entry, out) {
    if (entry.cut) return;
    // Syslog tags like `imap-login` (log_prefix) leave the service name out of the message: put it back.
    const msg = entry.program !== undefined && entry.program !== 'dovecot' ? `${entry.program}: ${entry.message}` : entry.message;
    let m: RegExpExecArray | null;
    if (msg.includes('(auth failed, ')) {
      if ((m = DOVECOT_PATTERNS.login.exec(msg))) {
        const ip = strictIp(m[2]);
        if (ip) out.push({ kind: 'dovecot.auth-fail', ip, times: entry.times * Math.min(Math.max(Number(m[1]), 1), MAX_ATTEMPTS) });
      }
    } else if (msg.startsWith('auth') && (m = DOVECOT_PATTERNS.auth.exec(msg))) {
      const ip = strictIp(m[1]);
      if (ip) out.push({ kind: 'dovecot.auth-mismatch', ip, times: entry.times });
    }
  },
};
