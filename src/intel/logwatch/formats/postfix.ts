// Postfix 3.x (smtpd, submission/smtpd, postscreen …). Postfix writes the
// client as `name[address]` (smtpd, `name[address]:port` with
// smtpd_client_port_logging) or `[address]:port` (postscreen), early in the
// line, with a name it has validated as a host name (no brackets, no
// spaces): the address is the first bracketed one after a fixed prefix. What
// follows (SASL reason and user name, recipient, HELO, the pregreet bytes) is
// the client's text and is never searched for an address.
//
// The forms are those of smtpd_sasl_glue.c (`SASL … authentication failed:
// <reason>[, sasl_username=…]`, `… authentication aborted`), smtpd_check.c's
// log_whatsup (`<queue id>: reject: <stage> from <client>: <reply>; from=<…>
// …`), smtpd.c (`[NOQUEUE: ]lost connection|too many errors|timeout after
// <stage> from <client>`, `improper command pipelining`, `non-SMTP command`)
// and postscreen (`PREGREET`, `DNSBL rank`, `… blocked using`, `BARE
// NEWLINE`, `COMMAND PIPELINING`, `NON-SMTP COMMAND`, `COMMAND … LIMIT`,
// `DENYLISTED`/`BLACKLISTED`).
//
// A SASL failure counts only when its reason is the client's doing (a wrong
// password, a broken or cancelled exchange). The reasons Postfix writes when
// its authentication server failed (`Connection lost to authentication
// server`, `Authentication backend error`, Cyrus `generic failure` …) and
// `Invalid authentication mechanism` are never counted: an outage of the
// backend would otherwise ban every client that tries to log in.

import { strictIp } from '../ip.js';
import { IP, type Format, type LogEvent } from './types.js';

const CLIENT = `[^\\s\\[\\]]+\\[${IP}\\](?::\\d{1,5})?`;
const QUEUE = '(?:NOQUEUE|[0-9A-Za-z]{5,20})';
/** smtpd's stages (smtpd.h `SMTPD_AFTER_*`, SMTP commands, CONNECT). */
const STAGE = '[A-Z][A-Z-]{1,20}';

export const POSTFIX_PATTERNS = {
  sasl: new RegExp(`^warning: ${CLIENT}: SASL [A-Za-z0-9_-]{1,100} authentication failed: (.*)$`),
  saslAborted: new RegExp(`^warning: ${CLIENT}: SASL [A-Za-z0-9_-]{1,100} authentication aborted$`),
  pregreet: new RegExp(`^PREGREET \\d+ after \\d+(?:\\.\\d+)? from \\[${IP}\\]:\\d{1,5}: `),
  dnsblRank: new RegExp(`^DNSBL rank \\d+ for \\[${IP}\\]:\\d{1,5}$`),
  /** postscreen's verdicts on the client's SMTP manners (postscreen_early.c, postscreen_smtpd.c). */
  postscreenProtocol: new RegExp(
    `^(?:BARE NEWLINE|COMMAND PIPELINING|NON-SMTP COMMAND|COMMAND TIME LIMIT|COMMAND COUNT LIMIT|COMMAND LENGTH LIMIT) from \\[${IP}\\]:\\d{1,5} after `,
  ),
  postscreenListed: new RegExp(`^(?:DENY|BLACK)LISTED \\[${IP}\\]:\\d{1,5}$`),
  smtpdProtocol: new RegExp(`^(?:warning: )?(?:improper command pipelining after ${STAGE}|non-SMTP command) from ${CLIENT}: `),
  /** The end of a session: `[NOQUEUE: ]lost connection after AUTH from …` (the queue id prefix since Postfix 3.10). */
  after: new RegExp(`^(?:${QUEUE}: )?(lost connection|too many errors|timeout) after (${STAGE})(?: \\(\\d+ bytes\\))? from ${CLIENT}$`),
  /** log_whatsup: the reply is read up to its first `;` or to where client text (`<address>:`) starts. */
  reject: new RegExp(`^${QUEUE}: reject: (${STAGE}) from ${CLIENT}: ([45])(\\d\\d) ([45]\\.\\d{1,3}\\.\\d{1,3}) `),
  unknownUser: new RegExp(`^${QUEUE}: reject: RCPT from ${CLIENT}: [45]\\d\\d [45]\\.1\\.1 <([^>]*)>: Recipient address rejected: User unknown`),
  dnsblReject: new RegExp(`^${QUEUE}: reject: RCPT from ${CLIENT}: [45]5[04] [45]\\.7\\.1 Service unavailable; Client host \\[${IP}\\] blocked using `),
  postscreenDnsbl: new RegExp(`^NOQUEUE: reject: RCPT from \\[${IP}\\]:\\d{1,5}: [45]50 [45]\\.7\\.1 Service unavailable; client \\[${IP}\\] blocked using `),
};

/**
 * SASL reasons that are the client's doing. Dovecot's FAIL without a reason
 * leaves the last challenge (`UGFzc3dvcmQ6`, base64 of `Password:`), an empty
 * reason or `(reason unavailable)`; Cyrus writes its error string (`authentication
 * failure`, `bad protocol / cancel`, optionally as `SASL(-13): authentication
 * failure: …`). Anything else — above all Postfix's own `Connection lost to
 * authentication server`, `Can't connect to authentication server`,
 * `Authentication backend error`, `Invalid authentication mechanism: …` and
 * Cyrus `generic failure`, `no mechanism available`, `transient failure` — is
 * not counted.
 */
const CLIENT_FAULT =
  /^(?:|\(reason unavailable\)|[A-Za-z0-9+/]{4,}={0,2}|(?:SASL\(-(?:13|5)\): )?(?:authentication failure|bad protocol \/ cancel|Password verification failed|user not found|Invalid base64 data in (?:initial|continued) response)(?:: .*)?)(?:, sasl_username=.*)?$/;

/** Reject replies that are not the client's doing, or are counted by a kind of their own. */
const NOT_CLIENT = /Server configuration (?:problem|error)|Temporary lookup failure|try again later|Insufficient system storage|Service is unavailable|server local data error/i;

/** The stages at which smtpd refuses the client, its HELO, sender or recipients. */
const CLIENT_STAGES = new Set(['CONNECT', 'EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'VRFY', 'ETRN']);

/** smtpd's relay refusal (smtpd_check.c): `<rcpt>: Relay access denied`. */
const RELAY = /^<[^>]*>: Relay access denied$/;

const PROGRAM = /^postfix(?:-[A-Za-z0-9_.-]+)?\/[a-z0-9/_-]+$/;

/** Longest recipient kept as a key: RFC 5321 path limit. */
const MAX_KEY = 256;

/** Kind names as constants (see http.ts). */
const K = {
  sasl: 'postfix.sasl-fail',
  authDropped: 'postfix.auth-dropped',
  pregreet: 'postfix.pregreet',
  dnsbl: 'postfix.dnsbl',
  protocol: 'postfix.protocol',
  tooManyErrors: 'postfix.too-many-errors',
  unknownUser: 'postfix.unknown-user',
  relay: 'postfix.relay-denied',
  reject: 'postfix.reject',
  listed: 'postfix.denylisted',
} as const;

function push(out: LogEvent[], times: number, kind: string, text: string | undefined, key?: string): void {
  const ip = text === undefined ? undefined : strictIp(text);
  if (ip) out.push(key === undefined ? { kind, ip, times } : { kind, ip, key, times });
}

export const postfix: Format = {
  name: 'postfix',
  accepts: (program) => program === undefined || PROGRAM.test(program),
  parse(entry, out) {
    const msg = entry.message;
    const times = entry.times;
    const P = POSTFIX_PATTERNS;
    let m: RegExpExecArray | null;
    switch (msg.charCodeAt(0)) {
      case 119: // w
        if (!msg.startsWith('warning: ')) break;
        if (msg.includes(' authentication failed: ')) {
          if ((m = P.sasl.exec(msg)) && CLIENT_FAULT.test(m[2])) push(out, times, K.sasl, m[1]);
        } else if (msg.endsWith(' authentication aborted')) {
          if ((m = P.saslAborted.exec(msg))) push(out, times, K.authDropped, m[1]);
        } else if ((m = P.smtpdProtocol.exec(msg))) push(out, times, K.protocol, m[1]);
        return;
      case 80: // P
        if ((m = P.pregreet.exec(msg))) return push(out, times, K.pregreet, m[1]);
        break;
      case 68: // D
        if ((m = P.dnsblRank.exec(msg))) return push(out, times, K.dnsbl, m[1]);
        if ((m = P.postscreenListed.exec(msg))) return push(out, times, K.listed, m[1]);
        break;
      case 66: // B
        if ((m = P.postscreenListed.exec(msg))) return push(out, times, K.listed, m[1]);
        if ((m = P.postscreenProtocol.exec(msg))) return push(out, times, K.protocol, m[1]);
        break;
      case 67: // C
      case 78: // N
        if ((m = P.postscreenProtocol.exec(msg))) return push(out, times, K.protocol, m[1]);
        break;
      case 105: // i
      case 110: // n
        if ((m = P.smtpdProtocol.exec(msg))) return push(out, times, K.protocol, m[1]);
        break;
    }
    if (msg.includes(' after ') && (m = P.after.exec(msg))) {
      const [, what, stage, ip] = m;
      if (what === 'too many errors') push(out, times, K.tooManyErrors, ip);
      else if (stage === 'AUTH') push(out, times, K.authDropped, ip);
      return;
    }
    if (!msg.includes(': reject: ')) return;
    if (msg.startsWith('NOQUEUE: reject: RCPT from [')) {
      // postscreen: the blocked address must be the client's.
      if ((m = P.postscreenDnsbl.exec(msg)) && strictIp(m[1]) === strictIp(m[2])) push(out, times, K.dnsbl, m[1]);
      return;
    }
    if ((m = P.unknownUser.exec(msg))) {
      push(out, times, K.unknownUser, m[1], m[2].slice(0, MAX_KEY).toLowerCase());
      return;
    }
    if ((m = P.dnsblReject.exec(msg))) {
      if (strictIp(m[1]) === strictIp(m[2])) push(out, times, K.dnsbl, m[1]);
      return;
    }
    if (!(m = P.reject.exec(msg))) return;
    // The reply up to its first `;`: what follows is the envelope and HELO, the client's text.
    const semi = msg.indexOf(';', m[0].length);
    const reply = semi < 0 ? msg.slice(m[0].length) : msg.slice(m[0].length, semi);
    if (RELAY.test(reply)) {
      push(out, times, K.relay, m[2]);
      return;
    }
    // Only permanent refusals of the client's own making: a 4xx is greylisting,
    // a lookup fault or a policy service's deferral, and never counts.
    // END-OF-MESSAGE and BDAT refusals judge the message (content, size), not the client.
    if (m[3] === '5' && CLIENT_STAGES.has(m[1]) && !NOT_CLIENT.test(reply)) push(out, times, K.reject, m[2]);
  },
};
