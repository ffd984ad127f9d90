// Postfix (smtpd, submission/smtpd, postscreen …). Postfix writes the client
// as `name[address]`, early in the line, with a name it has validated as a
// host name (no brackets, no spaces): the address is the first bracketed one
// after a fixed prefix. What follows (SASL reason, recipient, HELO, the
// pregreet bytes) is the client's text and is never searched for an address.

import { strictIp } from '../ip.js';
import { IP, type Format } from './types.js';

const CLIENT = `[^\\s\\[\\]]+\\[${IP}\\]`;

export const POSTFIX_PATTERNS = {
  sasl: new RegExp(`^warning: ${CLIENT}: SASL [A-Za-z0-9-]+ authentication failed`),
  pregreet: new RegExp(`^PREGREET \\d+ after \\d+(?:\\.\\d+)? from \\[${IP}\\]:\\d{1,5}: `),
  dnsblRank: new RegExp(`^DNSBL rank \\d+ for \\[${IP}\\]:\\d{1,5}$`),
  unknownUser: new RegExp(`^(?:NOQUEUE|[0-9A-Za-z]{5,20}): reject: RCPT from ${CLIENT}(?::\\d{1,5})?: [45]\\d\\d [45]\\.1\\.1 <([^>]*)>: Recipient address rejected: User unknown`),
  dnsblReject: new RegExp(`^(?:NOQUEUE|[0-9A-Za-z]{5,20}): reject: RCPT from ${CLIENT}(?::\\d{1,5})?: 554 5\\.7\\.1 Service unavailable; Client host \\[${IP}\\] blocked using `),
};

const PROGRAM = /^postfix(?:-[A-Za-z0-9_.-]+)?\/[a-z0-9/_-]+$/;

/** Longest recipient kept as a key: RFC 5321 path limit. */
const MAX_KEY = 256;

export const postfix: Format = {
  name: 'postfix',
  accepts: (program) => program === undefined || PROGRAM.test(program),
  parse(entry, out) {
    const msg = entry.message;
    const times = entry.times;
    let m: RegExpExecArray | null;
    switch (msg.charCodeAt(0)) {
      case 119: // w
        if (msg.includes(' authentication failed') && (m = POSTFIX_PATTERNS.sasl.exec(msg))) {
          const ip = strictIp(m[1]);
          if (ip) out.push({ kind: 'postfix.sasl-fail', ip, times });
        }
        return;
      case 80: // P
        if ((m = POSTFIX_PATTERNS.pregreet.exec(msg))) {
          const ip = strictIp(m[1]);
          if (ip) out.push({ kind: 'postfix.pregreet', ip, times });
        }
        return;
      case 68: // D
        if ((m = POSTFIX_PATTERNS.dnsblRank.exec(msg))) {
          const ip = strictIp(m[1]);
          if (ip) out.push({ kind: 'postfix.dnsbl', ip, times });
        }
        return;
      default:
        if (!msg.includes(': reject: RCPT from ')) return;
        if ((m = POSTFIX_PATTERNS.unknownUser.exec(msg))) {
          const ip = strictIp(m[1]);
          if (ip) out.push({ kind: 'postfix.unknown-user', ip, key: m[2].slice(0, MAX_KEY).toLowerCase(), times });
        } else if ((m = POSTFIX_PATTERNS.dnsblReject.exec(msg))) {
          const ip = strictIp(m[1]);
          if (ip && ip === strictIp(m[2])) out.push({ kind: 'postfix.dnsbl', ip, times });
        }
    }
  },
};
