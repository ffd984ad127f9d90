// OpenSSH's sshd (and sshd-session, sshd-auth since 9.8). The user name is the
// attacker's text and sits before the address, so each pattern takes the
// address from the fixed tail sshd appends (` from IP port N ssh2`, anchored at
// the end of the line): greedy `.*` makes that the last occurrence. A cut line
// has no trustworthy end and is not read at all.

import { strictIp } from '../ip.js';
import { IP, type Entry, type Format, type LogEvent } from './types.js';

const METHODS = '(?:password|publickey|keyboard-interactive/pam|keyboard-interactive|none|hostbased|gssapi-with-mic)';

export const SSHD_PATTERNS = {
  failed: new RegExp(`^Failed ${METHODS} for (?:invalid user )?.* from ${IP} port \\d{1,5} ssh2(?:: [A-Z0-9-]+ SHA256:[A-Za-z0-9+/]+)?$`),
  invalidUser: new RegExp(`^Invalid user .* from ${IP}(?: port \\d{1,5})?$`),
  maxAuth: new RegExp(`^(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?.* from ${IP} port \\d{1,5} ssh2 \\[preauth\\]$`),
  noIdent: new RegExp(`^Did not receive identification string from ${IP}(?: port \\d{1,5})?$`),
  preauthClose: new RegExp(`^(?:Connection closed by|Disconnected from) (?:authenticating|invalid) user .* ${IP} port \\d{1,5} \\[preauth\\]$`),
  pam: new RegExp(`^pam_unix\\(sshd:auth\\): authentication failure; logname=\\S* uid=\\d+ euid=\\d+ tty=\\S* ruser=\\S* rhost=${IP}(?: +user=.*| *)$`),
};

const PROGRAMS = new Set(['sshd', 'sshd-session', 'sshd-auth']);

function found(re: RegExp, kind: string, entry: Entry, out: LogEvent[]): void {
  const m = re.exec(entry.message);
  if (!m) return;
  const ip = strictIp(m[1]);
  if (ip) out.push({ kind, ip, times: entry.times });
}

export const sshd: Format = {
  name: 'sshd',
  accepts: (program) => program === undefined || PROGRAMS.has(program),
  parse(entry, out) {
    if (entry.cut) return;
    const msg = entry.message;
    switch (msg.charCodeAt(0)) {
      case 70: // F
        if (msg.startsWith('Failed ')) found(SSHD_PATTERNS.failed, 'sshd.auth-fail', entry, out);
        return;
      case 73: // I
        if (msg.startsWith('Invalid user ')) found(SSHD_PATTERNS.invalidUser, 'sshd.invalid-user', entry, out);
        return;
      case 68: // D
        if (msg.startsWith('Did not receive identification')) found(SSHD_PATTERNS.noIdent, 'sshd.no-ident', entry, out);
        else if (msg.startsWith('Disconnected from ')) found(SSHD_PATTERNS.preauthClose, 'sshd.preauth-close', entry, out);
        return;
      case 67: // C
        if (msg.startsWith('Connection closed by ')) found(SSHD_PATTERNS.preauthClose, 'sshd.preauth-close', entry, out);
        return;
      case 101: // e
      case 109: // m
        if (msg.includes('maximum authentication attempts')) found(SSHD_PATTERNS.maxAuth, 'sshd.max-auth', entry, out);
        return;
      case 112: // p
        if (msg.startsWith('pam_unix(sshd:auth): authentication failure')) found(SSHD_PATTERNS.pam, 'sshd.pam-auth-fail', entry, out);
        return;
    }
  },
};
