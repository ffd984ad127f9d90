// OpenSSH's sshd (and sshd-session, sshd-auth since 9.8), versions 7 to 9.
// The user name is the attacker's text and sits before the address, so every
// pattern with a user name takes the address from the fixed tail sshd appends
// (` from IP port N ssh2`, ` IP port N [preauth]`, anchored at the end of the
// line): greedy `.*` makes that the last occurrence. Lines where the address
// comes first (`Received disconnect from IP …`, `Unable to negotiate with IP
// …`) take it right after sshd's fixed words, before any client text. A cut
// line has no trustworthy end and is not read at all.
//
// The forms are those of auth.c (`Failed`, `Invalid user`, `User … not
// allowed because`, `maximum authentication attempts`), packet.c
// (`Connection closed/reset by`, `Disconnected from`, `Received disconnect`,
// `Unable to negotiate`, `Disconnecting … Too many authentication failures`,
// `… Connection from …: <error>`), sshd.c (`Did not receive identification`,
// `Bad protocol version`, `banner exchange`, `Timeout before authentication`, `drop connection
// … penalty`), auth-pam.c (`error: PAM: Authentication failure for … from`)
// and pam_unix.

import { strictIp } from '../ip.js';
import { IP, type Entry, type Format, type LogEvent } from './types.js';

/** `password`, `publickey`, `keyboard-interactive/pam`, `none`, `hostbased`, `gssapi-with-mic` … (auth2.c method names). */
const METHOD = '[a-z]+(?:-[a-z]+)*(?:/[a-z]+)?';
const PORT = 'port \\d{1,5}';
const PREAUTH = '(?: \\[preauth\\])?';
/** The user as packet.c's log preamble writes it before the address (`authenticating user root`, `invalid user x`). */
const PREAMBLE = '(?:authenticating|invalid) user .*';
/** sshd's reasons in `User x from IP not allowed because …` (auth.c); the shell path comes from the passwd file, not the client. */
const NOT_ALLOWED =
  '(?:listed in DenyUsers|not listed in AllowUsers|not in any group|a group is listed in DenyGroups|none of user\'s groups are listed in AllowGroups)';
/** ssh_err() texts that end a `… Connection from …: <error>` line (ssherr.c): letters, spaces and a few signs, never an address. */
const SSH_ERR = '[A-Za-z][A-Za-z ,()/-]*';

export const SSHD_PATTERNS = {
  failed: new RegExp(`^Failed ${METHOD} for (?:invalid user )?.* from ${IP} ${PORT} ssh2(?:: [A-Z0-9-]+ SHA256:[A-Za-z0-9+/]+)?$`),
  invalidUser: new RegExp(`^Invalid user .* from ${IP}(?: ${PORT})?$`),
  notAllowed: new RegExp(`^User .* from ${IP} not allowed because ${NOT_ALLOWED}$`),
  maxAuth: new RegExp(`^(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?.* from ${IP} ${PORT} ssh2${PREAUTH}$`),
  tooMany: new RegExp(`^Disconnecting ${PREAMBLE} ${IP} ${PORT}: Too many authentication failures${PREAUTH}$`),
  noIdent: new RegExp(`^Did not receive identification string from ${IP}(?: ${PORT})?$`),
  badIdent: new RegExp(`^Bad protocol version identification '.*' from ${IP} ${PORT}$`),
  majorVersions: new RegExp(`^Protocol major versions differ for ${IP} ${PORT}: `),
  banner: new RegExp(`^(?:error: )?banner exchange: Connection from ${IP} ${PORT}: ${SSH_ERR}${PREAUTH}$`),
  preauthClose: new RegExp(`^(?:Connection closed by|Connection reset by|Disconnected from) ${PREAMBLE} ${IP} ${PORT}${PREAUTH}$`),
  preauthDrop: new RegExp(`^(?:Connection closed by|Connection reset by|Disconnected from) ${IP} ${PORT} \\[preauth\\]$`),
  /** 8.0+: the client left during the banner exchange (before the preauth child, so no `[preauth]`); 7.x said `Did not receive identification string`. */
  bannerClosed: new RegExp(`^Connection (?:closed|reset) by ${IP} ${PORT}$`),
  receivedDisconnect: new RegExp(`^(?:error: )?Received disconnect from ${IP} ${PORT}:(?:\\d+:)? .*\\[preauth\\]$`),
  timeout: new RegExp(`^(?:fatal: )?Timeout before authentication for (?:${IP} ${PORT}|connection from ${IP} to [0-9A-Fa-f:.]+, pid = \\d+)$`),
  negotiate: new RegExp(`^Unable to negotiate with ${IP} ${PORT}: no matching [A-Za-z ]+ found\\. Their offer: `),
  dispatch: new RegExp(`^(?:error: )?[a-z_]+: Connection from (?:${PREAMBLE} )?${IP} ${PORT}: ${SSH_ERR}${PREAUTH}$`),
  penalty: new RegExp(`^drop connection #\\d+ from \\[${IP}\\]:\\d{1,5} on \\[[0-9A-Fa-f:.]+\\]:\\d{1,5} penalty: `),
  pamError: new RegExp(`^error: PAM: Authentication failure for (?:illegal user )?.* from ${IP}$`),
  pam: new RegExp(`^pam_unix\\(sshd:auth\\): authentication failure; logname=\\S* uid=\\d+ euid=\\d+ tty=\\S* ruser=\\S* rhost=${IP}(?: +user=.*| *)$`),
};

const PROGRAMS = new Set(['sshd', 'sshd-session', 'sshd-auth']);

/** Kind names as constants (see http.ts). */
const K = {
  authFail: 'sshd.auth-fail',
  invalidUser: 'sshd.invalid-user',
  maxAuth: 'sshd.max-auth',
  preauthClose: 'sshd.preauth-close',
  preauthDrop: 'sshd.preauth-drop',
  noIdent: 'sshd.no-ident',
  kexFail: 'sshd.kex-fail',
  penalty: 'sshd.penalty',
  pam: 'sshd.pam-auth-fail',
} as const;

/** Pushes an event when `re` matches; true when it did (so the caller stops trying). */
function found(re: RegExp, kind: string, entry: Entry, out: LogEvent[]): boolean {
  const m = re.exec(entry.message);
  if (!m) return false;
  const ip = strictIp(m[1] ?? m[2]);
  if (ip) out.push({ kind, ip, times: entry.times });
  return true;
}

export const sshd: Format = {
  name: 'sshd',
  accepts: (program) => program === undefined || PROGRAMS.has(program),
  parse(entry, out) {
    if (entry.cut) return;
    let msg = entry.message;
    const P = SSHD_PATTERNS;
    switch (msg.charCodeAt(0)) {
      case 70: // F
        if (msg.startsWith('Failed ')) found(P.failed, K.authFail, entry, out);
        return;
      case 73: // I
        if (msg.startsWith('Invalid user ')) found(P.invalidUser, K.invalidUser, entry, out);
        return;
      case 85: // U
        if (msg.startsWith('User ')) found(P.notAllowed, K.invalidUser, entry, out);
        else if (msg.startsWith('Unable to negotiate with ')) found(P.negotiate, K.kexFail, entry, out);
        return;
      case 68: // D
        if (msg.startsWith('Did not receive identification')) found(P.noIdent, K.noIdent, entry, out);
        else if (msg.startsWith('Disconnected from ')) {
          if (!found(P.preauthClose, K.preauthClose, entry, out)) found(P.preauthDrop, K.preauthDrop, entry, out);
        }
        else if (msg.startsWith('Disconnecting ')) found(P.tooMany, K.maxAuth, entry, out);
        return;
      case 67: // C
        if (msg.startsWith('Connection closed by ') || msg.startsWith('Connection reset by ')) {
          if (!found(P.preauthClose, K.preauthClose, entry, out) && !found(P.preauthDrop, K.preauthDrop, entry, out)) {
            found(P.bannerClosed, K.noIdent, entry, out);
          }
        }
        return;
      case 66: // B
        if (msg.startsWith('Bad protocol version')) found(P.badIdent, K.noIdent, entry, out);
        return;
      case 80: // P
        if (msg.startsWith('Protocol major versions')) found(P.majorVersions, K.noIdent, entry, out);
        return;
      case 82: // R
        if (msg.startsWith('Received disconnect ')) found(P.receivedDisconnect, K.preauthDrop, entry, out);
        return;
      case 84: // T
        if (msg.startsWith('Timeout before')) found(P.timeout, K.preauthDrop, entry, out);
        return;
      case 100: // d
        if (msg.startsWith('drop connection #') && msg.includes(' penalty: ')) found(P.penalty, K.penalty, entry, out);
        return;
      case 112: // p
        if (msg.startsWith('pam_unix(sshd:auth): authentication failure')) found(P.pam, K.pam, entry, out);
        return;
      case 109: // m
        if (msg.startsWith('maximum authentication attempts')) found(P.maxAuth, K.maxAuth, entry, out);
        return;
      case 98: // b
        if (msg.startsWith('banner exchange: ')) found(P.banner, K.noIdent, entry, out);
        return;
      case 102: // f
        if (msg.startsWith('fatal: Timeout before')) found(P.timeout, K.preauthDrop, entry, out);
        return;
      case 101: // e
        if (!msg.startsWith('error: ')) return;
        msg = msg.slice(7);
        if (msg.startsWith('maximum authentication attempts')) found(P.maxAuth, K.maxAuth, entry, out);
        else if (msg.startsWith('PAM: Authentication failure for ')) found(P.pamError, K.pam, entry, out);
        else if (msg.startsWith('Received disconnect ')) found(P.receivedDisconnect, K.preauthDrop, entry, out);
        else if (msg.startsWith('banner exchange: ')) found(P.banner, K.noIdent, entry, out);
        else if (msg.includes(': Connection from ')) found(P.dispatch, K.kexFail, entry, out);
        return;
      default:
        if (msg.includes(': Connection from ')) found(P.dispatch, K.kexFail, entry, out);
    }
  },
};
