// Built-in log formats on real log lines: lines that must match (with the
// right address), lines that must not, and the injection tricks attackers
// write into logs (user names, URLs, user agents, HELO names, SASL data).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { backtrackingRisks } from '../../src/checks/regex-safety.js';
import { BUILTIN_KINDS, createLineParser } from '../../src/intel/logwatch/formats/index.js';
import type { LogEvent } from '../../src/intel/logwatch/formats/types.js';
import { SSHD_PATTERNS } from '../../src/intel/logwatch/formats/sshd.js';
import { POSTFIX_PATTERNS } from '../../src/intel/logwatch/formats/postfix.js';
import { DOVECOT_PATTERNS } from '../../src/intel/logwatch/formats/dovecot.js';
import { ACCESS, APACHE_ERROR, NGINX_ERROR, NGINX_MESSAGES, classifyProbe } from '../../src/intel/logwatch/formats/http.js';
import { strictIp } from '../../src/intel/logwatch/ip.js';
import type { LogLine } from '../../src/intel/logwatch/line.js';
import { FORM_DAEMONS, describeEvents, loadForms } from '../helpers/log-forms.js';

type Expect = Array<[kind: string, ip: string, extra?: { key?: string; times?: number }]>;

function events(format: string, text: string, more: Partial<LogLine> = {}): LogEvent[] {
  const out: LogEvent[] = [];
  createLineParser(format)({ text, cut: false, lineNo: 1, ...more }, out);
  return out;
}

function check(format: string, text: string, expected: Expect): void {
  for (const f of [format, 'auto']) {
    const got = events(f, text).map((e) => [e.kind, e.ip, e.key, e.times]);
    const want = expected.map(([k, ip, x]) => [k, ip, x?.key, x?.times ?? 1]);
    assert.deepEqual(got, want, `${f}: ${text}`);
  }
}

const H = 'Nov 22 05:01:02 mx1';

describe('sshd', () => {
  const must: Array<[string, Expect]> = [
    [`${H} sshd[1201]: Failed password for root from 203.0.113.10 port 40030 ssh2`, [['sshd.auth-fail', '203.0.113.10']]],
    [`${H} sshd[1201]: Failed password for invalid user admin from 203.0.113.10 port 40022 ssh2`, [['sshd.auth-fail', '203.0.113.10']]],
    [`${H} sshd[1201]: Failed none for invalid user  from 203.0.113.10 port 40022 ssh2`, [['sshd.auth-fail', '203.0.113.10']]],
    [`${H} sshd[1201]: Failed keyboard-interactive/pam for invalid user test from 2001:db8::10 port 40022 ssh2`, [['sshd.auth-fail', '2001:db8::10']]],
    [`${H} sshd[1201]: Failed publickey for git from 203.0.113.77 port 50002 ssh2: RSA SHA256:9gHjk2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z7A8B9C0D`, [['sshd.auth-fail', '203.0.113.77']]],
    [`${H} sshd[1201]: Invalid user admin from 203.0.113.10 port 40022`, [['sshd.invalid-user', '203.0.113.10']]],
    [`${H} sshd[1201]: Invalid user admin from 203.0.113.10`, [['sshd.invalid-user', '203.0.113.10']]],
    [`${H} sshd[1201]: error: maximum authentication attempts exceeded for root from 203.0.113.10 port 40030 ssh2 [preauth]`, [['sshd.max-auth', '203.0.113.10']]],
    [`${H} sshd[1201]: maximum authentication attempts exceeded for invalid user a from 203.0.113.10 port 40030 ssh2 [preauth]`, [['sshd.max-auth', '203.0.113.10']]],
    [`${H} sshd[1201]: Did not receive identification string from 192.0.2.55 port 61000`, [['sshd.no-ident', '192.0.2.55']]],
    [`${H} sshd[1201]: Did not receive identification string from 192.0.2.55`, [['sshd.no-ident', '192.0.2.55']]],
    [`${H} sshd[1201]: Connection closed by authenticating user root 203.0.113.10 port 40022 [preauth]`, [['sshd.preauth-close', '203.0.113.10']]],
    [`${H} sshd[1201]: Connection closed by invalid user admin 203.0.113.10 port 40022 [preauth]`, [['sshd.preauth-close', '203.0.113.10']]],
    [`${H} sshd-session[1201]: Disconnected from invalid user oracle 2001:db8::bad port 33210 [preauth]`, [['sshd.preauth-close', '2001:db8::bad']]],
    [`${H} sshd[1201]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.10  user=root`, [['sshd.pam-auth-fail', '203.0.113.10']]],
    [`${H} sshd[1201]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.10 `, [['sshd.pam-auth-fail', '203.0.113.10']]],
    [`${H} sshd[1201]: message repeated 4 times: [ Failed password for root from 203.0.113.10 port 40030 ssh2]`, [['sshd.auth-fail', '203.0.113.10', { times: 4 }]]],
    [`2026-11-22T05:01:02.123456+00:00 mx1 sshd[1201]: Failed password for root from 203.0.113.10 port 40030 ssh2`, [['sshd.auth-fail', '203.0.113.10']]],
    [`${H} sshd[1201]: Failed password for root from ::ffff:203.0.113.10 port 40030 ssh2`, [['sshd.auth-fail', '203.0.113.10']]],
  ];
  for (const [line, want] of must) test(`matches: ${line.slice(20, 90)}`, () => check('sshd', line, want));

  const mustNot = [
    `${H} sshd[1201]: Accepted password for alice from 198.51.100.20 port 51520 ssh2`,
    `${H} sshd[1201]: Accepted publickey for alice from 198.51.100.20 port 51514 ssh2: ED25519 SHA256:Zx9b1O5Lr5Hn3T8kq0mQvWq3Ai1o9n0wGkq0yJv2eE4`,
    `${H} sshd[1201]: Received disconnect from 198.51.100.20 port 51520:11: disconnected by user`,
    `${H} sshd[1201]: Disconnected from user alice 198.51.100.20 port 51520`,
    `${H} sshd[1201]: Connection closed by user alice 198.51.100.20 port 51520`,
    `${H} sshd[1201]: ssh_dispatch_run_fatal: Connection from user alice 198.51.100.20 port 51520: Broken pipe`,
    `${H} sshd[1201]: drop connection #10 from [198.51.100.49]:41009 on [192.0.2.1]:22 past MaxStartups`,
    `${H} sshd[1201]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=attacker.example.net  user=root`,
    `${H} sshd[1201]: Failed password for root from 203.0.113.300 port 40030 ssh2`,
    `${H} sshd[1201]: Failed password for root from 203.0.113.010 port 40030 ssh2`,
    `${H} sshd[1201]: Failed password for root from fe80::1%eth0 port 40030 ssh2`,
    // Not sshd's tag: a local user with logger(1), or another daemon.
    `${H} logger[1310]: Failed password for root from 6.6.6.6 port 22 ssh2`,
    `${H} sudo[1300]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/grep "Failed password for root from 6.6.6.6 port 22 ssh2"`,
  ];
  for (const line of mustNot) test(`no event: ${line.slice(20, 90)}`, () => check('sshd', line, []));

  describe('injection', () => {
    const cases: Array<[string, Expect]> = [
      // The user name "x from 6.6.6.6 port 22 ssh2": the address is sshd's, at the end.
      [`${H} sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 203.0.113.77 port 50000 ssh2`, [['sshd.auth-fail', '203.0.113.77']]],
      [`${H} sshd[1]: Invalid user from 6.6.6.6 port 22 from 203.0.113.77 port 50000`, [['sshd.invalid-user', '203.0.113.77']]],
      [`${H} sshd[1]: Invalid user x from 6.6.6.6 from 203.0.113.77`, [['sshd.invalid-user', '203.0.113.77']]],
      [`${H} sshd[1]: Connection closed by invalid user 6.6.6.6 port 22 [preauth] 203.0.113.77 port 50000 [preauth]`, [['sshd.preauth-close', '203.0.113.77']]],
      [`${H} sshd[1]: error: maximum authentication attempts exceeded for invalid user a from 6.6.6.6 port 1 ssh2 [preauth] from 203.0.113.77 port 2 ssh2 [preauth]`, [['sshd.max-auth', '203.0.113.77']]],
      // An IPv6 address as the user name.
      [`${H} sshd[1]: Failed password for invalid user 2001:db8::6 from 203.0.113.77 port 50000 ssh2`, [['sshd.auth-fail', '203.0.113.77']]],
      [`${H} sshd[1]: Invalid user 2001:db8::6 from 203.0.113.77 port 50000`, [['sshd.invalid-user', '203.0.113.77']]],
      // A user name pretending to be the whole tail with a key fingerprint.
      [`${H} sshd[1]: Failed publickey for x from 6.6.6.6 port 22 ssh2: RSA SHA256:abc from 203.0.113.77 port 5 ssh2: RSA SHA256:def`, [['sshd.auth-fail', '203.0.113.77']]],
      // The user name `x from 6.6.6.6 port 22` (and its variants) in every form that writes a user before the address.
      [`${H} sshd[1]: User x from 6.6.6.6 not allowed because not listed in AllowUsers from 203.0.113.77 not allowed because not listed in AllowUsers`, [['sshd.invalid-user', '203.0.113.77']]],
      [`${H} sshd[1]: Disconnecting invalid user x 6.6.6.6 port 22: Too many authentication failures 203.0.113.77 port 50000: Too many authentication failures [preauth]`, [['sshd.max-auth', '203.0.113.77']]],
      [`${H} sshd[1]: Connection reset by invalid user x from 6.6.6.6 port 22 203.0.113.77 port 50000 [preauth]`, [['sshd.preauth-close', '203.0.113.77']]],
      [`${H} sshd[1]: Disconnected from invalid user x 6.6.6.6 port 22 [preauth] 203.0.113.77 port 50000 [preauth]`, [['sshd.preauth-close', '203.0.113.77']]],
      [`${H} sshd[1]: error: PAM: Authentication failure for illegal user x from 6.6.6.6 from 203.0.113.77`, [['sshd.pam-auth-fail', '203.0.113.77']]],
      [`${H} sshd[1]: ssh_dispatch_run_fatal: Connection from invalid user x 6.6.6.6 port 22: invalid format 203.0.113.77 port 5: invalid format [preauth]`, [['sshd.kex-fail', '203.0.113.77']]],
      [`${H} sshd[1]: Bad protocol version identification 'x' from 6.6.6.6 port 22' from 203.0.113.77 port 50000`, [['sshd.no-ident', '203.0.113.77']]],
      // Client text after the address (disconnect reason, offered algorithms): the first address, after sshd's words.
      [`${H} sshd[1]: Received disconnect from 203.0.113.77 port 50000:11: x from 6.6.6.6 port 22 [preauth]`, [['sshd.preauth-drop', '203.0.113.77']]],
      [`${H} sshd[1]: Unable to negotiate with 203.0.113.77 port 1: no matching cipher found. Their offer: from 6.6.6.6 port 22 [preauth]`, [['sshd.kex-fail', '203.0.113.77']]],
      [`${H} sshd[1]: Protocol major versions differ for 203.0.113.77 port 1: SSH-2.0-x vs. SSH-1.5-from 6.6.6.6 port 22`, [['sshd.no-ident', '203.0.113.77']]],
      // A certificate's key ID (the client's text) after the address: the line's end is the CA fingerprint, so no forged tail fits.
      [`${H} sshd[1]: Failed publickey for root from 203.0.113.77 port 5 ssh2: ED25519-CERT SHA256:abc ID x from 6.6.6.6 port 22 ssh2: RSA SHA256:def (serial 1) CA ED25519 SHA256:ghi`, []],
      // A user name cannot make a post-login line (`user alice`) look like a failed one: the preamble word is sshd's.
      [`${H} sshd[1]: Disconnected from user invalid user x 6.6.6.6 port 22 [preauth] 198.51.100.20 port 51520`, []],
      // The pam line: the user name comes after the (fixed-position) rhost.
      [`${H} sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.77  user=x rhost=6.6.6.6`, [['sshd.pam-auth-fail', '203.0.113.77']]],
    ];
    for (const [line, want] of cases) test(line.slice(26, 110), () => check('sshd', line, want));

    test('a line cut right after a forged tail yields nothing', () => {
      const forged = `${H} sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2`;
      const out: LogEvent[] = [];
      createLineParser('sshd')({ text: forged, cut: true, lineNo: 1 }, out);
      createLineParser('auto')({ text: forged, cut: true, lineNo: 1 }, out);
      assert.deepEqual(out, []);
    });
  });

  test('journal entries (program and message apart)', () => {
    const out: LogEvent[] = [];
    createLineParser('auto')({ text: 'x', message: 'Failed password for root from 203.0.113.10 port 1 ssh2', program: 'sshd-session', cut: false, lineNo: 1 }, out);
    createLineParser('auto')({ text: 'x', message: 'Failed password for root from 6.6.6.6 port 1 ssh2', program: 'evil', cut: false, lineNo: 2 }, out);
    assert.deepEqual(out.map((e) => e.ip), ['203.0.113.10']);
  });

  test('without a syslog header (journalctl -o cat) when the format is named', () => {
    assert.deepEqual(events('sshd', 'Failed password for root from 203.0.113.10 port 1 ssh2').map((e) => e.ip), ['203.0.113.10']);
  });
});

describe('postfix', () => {
  const must: Array<[string, Expect]> = [
    [`${H} postfix/smtpd[2010]: warning: unknown[203.0.113.40]: SASL LOGIN authentication failed: authentication failure`, [['postfix.sasl-fail', '203.0.113.40']]],
    [`${H} postfix/smtpd[2010]: warning: unknown[203.0.113.40]: SASL PLAIN authentication failed: authentication failure, sasl_username=info@example.com`, [['postfix.sasl-fail', '203.0.113.40']]],
    [`${H} postfix/submission/smtpd[2011]: warning: host.example.net[2001:db8::40]: SASL LOGIN authentication failed: UGFzc3dvcmQ6`, [['postfix.sasl-fail', '2001:db8::40']]],
    [`${H} postfix-out/smtps/smtpd[2011]: warning: unknown[203.0.113.41]: SASL CRAM-MD5 authentication failed: bad protocol / cancel`, [['postfix.sasl-fail', '203.0.113.41']]],
    [`${H} postfix/postscreen[2001]: PREGREET 11 after 0.13 from [198.51.100.30]:40100: EHLO x\\r\\n`, [['postfix.pregreet', '198.51.100.30']]],
    [`${H} postfix/postscreen[2001]: DNSBL rank 3 for [198.51.100.31]:40200`, [['postfix.dnsbl', '198.51.100.31']]],
    [`${H} postfix/postscreen[2001]: DNSBL rank 5 for [2001:db8::31]:40200`, [['postfix.dnsbl', '2001:db8::31']]],
    [
      `${H} postfix/smtpd[2020]: NOQUEUE: reject: RCPT from mail.example.org[203.0.113.50]: 550 5.1.1 <Anna@Example.com>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.org> to=<anna@example.com> proto=ESMTP helo=<mail.example.org>`,
      [['postfix.unknown-user', '203.0.113.50', { key: 'anna@example.com' }]],
    ],
    [
      `${H} postfix/smtpd[2021]: NOQUEUE: reject: RCPT from unknown[203.0.113.51]:51234: 550 5.1.1 <carl@example.com>: Recipient address rejected: User unknown in local recipient table; from=<> to=<carl@example.com> proto=ESMTP helo=<[6.6.6.6]>`,
      [['postfix.unknown-user', '203.0.113.51', { key: 'carl@example.com' }]],
    ],
    [
      `${H} postfix/smtpd[2021]: 4BxYz12ABC: reject: RCPT from unknown[203.0.113.51]: 450 4.1.1 <dan@example.com>: Recipient address rejected: User unknown in relay recipient table; from=<> to=<dan@example.com> proto=ESMTP helo=<x>`,
      [['postfix.unknown-user', '203.0.113.51', { key: 'dan@example.com' }]],
    ],
    [
      `${H} postfix/smtpd[2021]: NOQUEUE: reject: RCPT from unknown[203.0.113.52]: 554 5.7.1 Service unavailable; Client host [203.0.113.52] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.52; from=<a@b> to=<c@d> proto=ESMTP helo=<x>`,
      [['postfix.dnsbl', '203.0.113.52']],
    ],
  ];
  for (const [line, want] of must) test(`matches: ${line.slice(20, 100)}`, () => check('postfix', line, want));

  const mustNot = [
    `${H} postfix/smtpd[2010]: connect from unknown[203.0.113.40]`,
    `${H} postfix/smtpd[2010]: lost connection after DATA (120 bytes) from unknown[203.0.113.40]`,
    `${H} postfix/smtpd[2022]: NOQUEUE: reject_warning: RCPT from unknown[203.0.113.52]: 554 5.7.1 <x@example.com>: Relay access denied; from=<spam@example.net> to=<x@example.com> proto=ESMTP helo=<[6.6.6.6]>`,
    `${H} postfix/postscreen[2001]: CONNECT from [198.51.100.30]:40100 to [192.0.2.1]:25`,
    `${H} postfix/smtp[2040]: 4BxYz12ABC: to=<x@example.net>, relay=mx.example.net[198.51.100.9]:25, delay=0.4, dsn=2.0.0, status=sent (250 ok)`,
    `${H} postfix/smtpd[2010]: warning: hostname mail.example.net does not resolve to address 203.0.113.40: Name or service not known`,
    `${H} mylogger[1]: warning: unknown[6.6.6.6]: SASL LOGIN authentication failed: x`,
  ];
  for (const line of mustNot) test(`no event: ${line.slice(20, 100)}`, () => check('postfix', line, []));

  describe('injection', () => {
    const cases: Array<[string, Expect]> = [
      // Client text after the address: the SASL reason, the pregreet bytes, a recipient, a HELO.
      [`${H} postfix/smtpd[1]: warning: unknown[203.0.113.40]: SASL LOGIN authentication failed: authentication failure, sasl_username=unknown[6.6.6.6]: SASL LOGIN authentication failed`, [['postfix.sasl-fail', '203.0.113.40']]],
      [`${H} postfix/smtpd[1]: warning: unknown[203.0.113.40]:25: SASL PLAIN authentication failed: UGFzc3dvcmQ6, sasl_username=x unknown[6.6.6.6]:25: SASL PLAIN`, [['postfix.sasl-fail', '203.0.113.40']]],
      // The user name cannot turn a server fault into a counted failure, nor the reverse.
      [`${H} postfix/smtpd[1]: warning: unknown[203.0.113.40]: SASL PLAIN authentication failed: Connection lost to authentication server, sasl_username=authentication failure`, []],
      // A HELO or recipient that names another refusal: the reply is read up to its first ';'.
      [`${H} postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[203.0.113.55]: 450 4.2.0 <b@example.com>: Recipient address rejected: Greylisted; from=<a@b> to=<b@example.com> proto=ESMTP helo=<x>: Relay access denied>`, []],
      [`${H} postfix/smtpd[1]: too many errors after RCPT from unknown[203.0.113.56]`, [['postfix.too-many-errors', '203.0.113.56']]],
      [`${H} postfix/smtpd[1]: improper command pipelining after CONNECT from unknown[203.0.113.57]: from unknown[6.6.6.6]: x`, [['postfix.protocol', '203.0.113.57']]],
      [`${H} postfix/postscreen[1]: NON-SMTP COMMAND from [198.51.100.36]:40402 after CONNECT: GET /x from [6.6.6.6]:1 after CONNECT: HTTP/1.1`, [['postfix.protocol', '198.51.100.36']]],
      [`${H} postfix/postscreen[1]: NOQUEUE: reject: RCPT from [198.51.100.32]:40300: 550 5.7.1 Service unavailable; client [6.6.6.6] blocked using x; from=<a@b>, to=<c@d>, proto=ESMTP, helo=<x>`, []],
      [`${H} postfix/postscreen[1]: PREGREET 30 after 0 from [198.51.100.30]:1: PREGREET 1 after 0 from [6.6.6.6]:2: `, [['postfix.pregreet', '198.51.100.30']]],
      [
        `${H} postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[203.0.113.53]: 550 5.1.1 <x@example.com>: Recipient address rejected: User unknown from unknown[6.6.6.6]: 550 5.1.1 <y@example.com>; from=<a@b> to=<x@example.com> proto=ESMTP helo=<h>`,
        [['postfix.unknown-user', '203.0.113.53', { key: 'x@example.com' }]],
      ],
      // A forged DNSBL line where the blocked address is not the client's: not believed.
      [`${H} postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[203.0.113.54]: 554 5.7.1 Service unavailable; Client host [6.6.6.6] blocked using x`, []],
    ];
    for (const [line, want] of cases) test(line.slice(26, 110), () => check('postfix', line, want));
  });
});

describe('dovecot', () => {
  const must: Array<[string, Expect]> = [
    [`${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob@example.com>, method=PLAIN, rip=203.0.113.60, lip=192.0.2.1, TLS, session=<AbCdEf0123456789>`, [['dovecot.auth-fail', '203.0.113.60']]],
    [`${H} dovecot: imap-login: Disconnected: Connection closed (auth failed, 3 attempts in 15 secs): user=<bob@example.com>, method=PLAIN, rip=203.0.113.60, lip=192.0.2.1, TLS, session=<AbCdEf0123456780>`, [['dovecot.auth-fail', '203.0.113.60', { times: 3 }]]],
    [`${H} dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 4 secs): user=<admin>, method=PLAIN, rip=2001:db8::60, lip=2001:db8::1, session=<Zz9Yy8Xx7Ww6>`, [['dovecot.auth-fail', '2001:db8::60']]],
    [`${H} dovecot: imap-login: Login aborted: Connection closed (auth failed, 2 attempts in 8 secs) (auth_failed): user=<eve>, method=LOGIN, rip=203.0.113.61, lip=192.0.2.1, mpid=0, TLS, session=<Qq1Ww2Ee3Rr4>`, [['dovecot.auth-fail', '203.0.113.61', { times: 2 }]]],
    [`${H} dovecot: submission-login: Disconnected (auth failed, 1 attempts in 1 secs): user=<x>, method=PLAIN, rip=203.0.113.66, lip=192.0.2.1, TLS: Connection closed, session=<q1>`, [['dovecot.auth-fail', '203.0.113.66']]],
    [`${H} imap-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.67, lip=192.0.2.1, session=<Ab>`, [['dovecot.auth-fail', '203.0.113.67']]],
    [`${H} dovecot: auth: passwd-file(carol@example.com,203.0.113.63,<Ab12Cd34>): Password mismatch`, [['dovecot.auth-mismatch', '203.0.113.63']]],
    [`${H} dovecot: auth: sql(carol@example.com,203.0.113.63): unknown user`, [['dovecot.auth-mismatch', '203.0.113.63']]],
    [`${H} dovecot: auth-worker(3402): pam(dave,203.0.113.64,<Ef56Gh78>): pam_authenticate() failed: Authentication failure (password mismatch?)`, [['dovecot.auth-mismatch', '203.0.113.64']]],
  ];
  for (const [line, want] of must) test(`matches: ${line.slice(20, 100)}`, () => check('dovecot', line, want));

  const mustNot = [
    `${H} dovecot: imap-login: Login: user=<alice@example.com>, method=PLAIN, rip=198.51.100.20, lip=192.0.2.1, mpid=3301, TLS, session=<Aa1Bb2Cc3Dd4>`,
    `${H} dovecot: imap-login: Disconnected (no auth attempts in 10 secs): user=<>, rip=198.51.100.21, lip=192.0.2.1, TLS handshaking: SSL_accept() failed, session=<x>`,
    `${H} dovecot: imap(alice@example.com)<3301><Aa1Bb2Cc3Dd4>: Disconnected: Logged out in=120 out=2011`,
    // Client text after the address: not read.
    `${H} dovecot: auth: passwd-file(x,203.0.113.65): unknown user (given password: secret)`,
  ];
  for (const line of mustNot) test(`no event: ${line.slice(20, 100)}`, () => check('dovecot', line, []));

  describe('injection', () => {
    const cases: Array<[string, Expect]> = [
      [`${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=6.6.6.6, lip=192.0.2.1, TLS, session=<a>>, method=PLAIN, rip=203.0.113.62, lip=192.0.2.1, TLS, session=<Ab12>`, [['dovecot.auth-fail', '203.0.113.62']]],
      [`${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x, rip=6.6.6.6, lip=1.1.1.1, TLS handshaking>, method=PLAIN, rip=203.0.113.62, lip=192.0.2.1, session=<Ab12>`, [['dovecot.auth-fail', '203.0.113.62']]],
      [`${H} dovecot: imap-login: Disconnected (no auth attempts in 1 secs): user=<(auth failed, 9 attempts in 1 secs): user=<x>, method=PLAIN, rip=6.6.6.6, lip=192.0.2.1, session=<a>>, rip=203.0.113.62, lip=192.0.2.1`, []],
      // Password-mismatch line with the address forged inside the user name.
      [`${H} dovecot: auth: passwd-file(x,6.6.6.6): Password mismatch,203.0.113.63): Password mismatch`, [['dovecot.auth-mismatch', '203.0.113.63']]],
      [`${H} dovecot: auth: passwd-file(x,203.0.113.65): unknown user (given password: ,6.6.6.6): unknown user (given password: x)`, []],
    ];
    for (const [line, want] of cases) test(line.slice(26, 110), () => check('dovecot', line, want));
  });
});

describe('nginx and apache', () => {
  const must: Array<[string, string, Expect]> = [
    ['nginx', '203.0.113.80 - - [22/Nov/2026:07:01:00 +0000] "GET /.env HTTP/1.1" 404 153 "-" "Mozilla/5.0 zgrab/0.x"', [['http.probe.env', '203.0.113.80'], ['http.status.404', '203.0.113.80']]],
    ['nginx', '203.0.113.80 - - [22/Nov/2026:07:01:00 +0000] "GET /api/.env.local HTTP/1.1" 200 20 "-" "-"', [['http.probe.env', '203.0.113.80']]],
    ['nginx', '203.0.113.81 - - [22/Nov/2026:07:01:05 +0000] "GET /tmUnblock.cgi HTTP/1.1" 400 157 "-" "-"', [['http.probe.tmunblock', '203.0.113.81']]],
    ['nginx', '203.0.113.82 - - [22/Nov/2026:07:01:10 +0000] "POST /wp-login.php HTTP/1.1" 404 153 "-" "Mozilla/5.0"', [['http.probe.wp-login', '203.0.113.82'], ['http.status.404', '203.0.113.82']]],
    ['nginx', '203.0.113.82 - - [22/Nov/2026:07:01:10 +0000] "POST /blog/wp-login.php HTTP/1.1" 200 4000 "-" "Mozilla/5.0"', [['http.probe.wp-login', '203.0.113.82']]],
    ['nginx', '203.0.113.82 - - [22/Nov/2026:07:01:10 +0000] "POST /xmlrpc.php HTTP/1.1" 200 400 "-" "Mozilla/5.0"', [['http.probe.xmlrpc', '203.0.113.82']]],
    ['nginx', '203.0.113.83 - - [22/Nov/2026:07:01:20 +0000] "GET /phpMyAdmin/index.php HTTP/1.1" 404 153 "-" "Mozilla/5.0"', [['http.probe.phpmyadmin', '203.0.113.83'], ['http.status.404', '203.0.113.83']]],
    ['nginx', '203.0.113.83 - - [22/Nov/2026:07:01:22 +0000] "GET /cgi-bin/luci HTTP/1.1" 403 153 "-" "Mozilla/5.0"', [['http.probe.cgi-bin', '203.0.113.83'], ['http.status.403', '203.0.113.83']]],
    ['nginx', '203.0.113.83 - - [22/Nov/2026:07:01:23 +0000] "GET /wp-admin/setup-config.php HTTP/1.1" 404 153 "-" "Mozilla/5.0"', [['http.probe.wordpress', '203.0.113.83'], ['http.status.404', '203.0.113.83']]],
    ['nginx', '203.0.113.84 - admin [22/Nov/2026:07:02:01 +0000] "GET /admin HTTP/1.1" 401 179 "-" "curl/8.5.0"', [['http.auth-fail', '203.0.113.84']]],
    ['nginx', '2001:db8::85 - - [22/Nov/2026:07:03:00 +0000] "GET /.git/config HTTP/1.1" 404 153 "-" "Mozilla/5.0"', [['http.probe.git', '2001:db8::85'], ['http.status.404', '2001:db8::85']]],
    ['nginx', '198.51.100.20 - - [22/Nov/2026:07:00:02 +0000] "GET /favicon.ico HTTP/1.1" 404 153 "https://example.com/" "Mozilla/5.0"', [['http.status.404', '198.51.100.20']]],
    ['nginx', '2026/11/22 07:10:00 [error] 812#812: *1201 user "admin" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.90, server: example.com, request: "GET /private/ HTTP/1.1", host: "example.com"', [['http.auth-fail', '203.0.113.90']]],
    ['nginx', '2026/11/22 07:10:05 [error] 812#812: *1202 user "alice": password mismatch, client: 203.0.113.91, server: example.com, request: "GET /private/ HTTP/1.1", host: "example.com"', [['http.auth-fail', '203.0.113.91']]],
    ['apache', '203.0.113.100 - - [22/Nov/2026:08:00:02 +0100] "GET /.env.production HTTP/1.1" 404 196 "-" "python-requests/2.31.0"', [['http.probe.env', '203.0.113.100'], ['http.status.404', '203.0.113.100']]],
    ['apache', '203.0.113.102 - - [22/Nov/2026:08:00:04 +0100] "GET /cgi-bin/.%2e/.%2e/.%2e/bin/sh HTTP/1.1" 400 226', [['http.probe.cgi-bin', '203.0.113.102']]],
    ['apache', '203.0.113.101 - bob [22/Nov/2026:08:00:03 +0100] "GET /secret/ HTTP/1.1" 401 381 "-" "Mozilla/5.0"', [['http.auth-fail', '203.0.113.101']]],
    ['apache', '[Sun Nov 22 08:01:00.123456 2026] [auth_basic:error] [pid 4101:tid 140230] [client 203.0.113.110:51234] AH01618: user admin not found: /private', [['http.auth-fail', '203.0.113.110']]],
    ['apache', '[Sun Nov 22 08:01:05.654321 2026] [auth_basic:error] [pid 4102] [client 203.0.113.111:51240] AH01617: user bob: authentication failure for "/private": Password Mismatch', [['http.auth-fail', '203.0.113.111']]],
    ['apache', '[Sun Nov 22 08:01:06.000001 2026] [auth_basic:error] [pid 4102] [client 2001:db8::112:51250] AH01617: user bob: authentication failure for "/private": Password Mismatch', [['http.auth-fail', '2001:db8::112']]],
    ['apache', '[Sun Nov 22 08:01:07 2026] [error] [client 203.0.113.113] user carol not found: /private', [['http.auth-fail', '203.0.113.113']]],
  ];
  for (const [format, line, want] of must) test(`${format} matches: ${line.slice(0, 90)}`, () => check(format, line, want));

  const mustNot: Array<[string, string]> = [
    ['nginx', '198.51.100.20 - - [22/Nov/2026:07:00:01 +0000] "GET / HTTP/1.1" 200 5120 "-" "Mozilla/5.0"'],
    ['nginx', '203.0.113.84 - - [22/Nov/2026:07:02:00 +0000] "GET /admin HTTP/1.1" 401 179 "-" "curl/8.5.0"'],
    ['nginx', '198.51.100.20 - - [22/Nov/2026:07:00:01 +0000] "GET /wp-admin/ HTTP/1.1" 200 5120 "-" "Mozilla/5.0"'],
    ['nginx', '198.51.100.20 - - [22/Nov/2026:07:00:01 +0000] "POST /wp-login.php HTTP/1.1" 302 0 "-" "Mozilla/5.0"'],
    ['nginx', '2026/11/22 07:10:06 [crit] 812#812: *1203 open() "/var/www/html/robots.txt" failed (13: Permission denied), client: 198.51.100.20, server: example.com, request: "GET /robots.txt HTTP/1.1", host: "example.com"'],
    ['apache', '[Sun Nov 22 08:01:08.000000 2026] [core:error] [pid 4103] (13)Permission denied: [client 198.51.100.20:51260] AH00035: access to /x denied (filesystem path \'/var/www/x\') because search permissions are missing on a component of the path'],
    ['nginx', 'example.com - - [22/Nov/2026:07:00:01 +0000] "GET /.env HTTP/1.1" 404 1 "-" "-"'],
  ];
  for (const [format, line] of mustNot) test(`${format} no event: ${line.slice(0, 90)}`, () => check(format, line, []));

  describe('injection', () => {
    const cases: Array<[string, string, Expect]> = [
      // An address in the URL, the referrer and the user agent: only the first field counts.
      ['nginx', '198.51.100.21 - - [22/Nov/2026:07:04:00 +0000] "GET /redirect?to=http://6.6.6.6/.env HTTP/1.1" 302 0 "http://6.6.6.6/" "Mozilla/5.0 (6.6.6.6)"', []],
      ['nginx', '198.51.100.21 - - [22/Nov/2026:07:04:00 +0000] "GET /6.6.6.6/.env HTTP/1.1" 404 0 "http://6.6.6.6/" "6.6.6.6 - - [22/Nov/2026:07:04:00 +0000] \\x22GET /.env\\x22 404"', [['http.probe.env', '198.51.100.21'], ['http.status.404', '198.51.100.21']]],
      // A whole forged log line inside the request (nginx escapes the quotes as \x22).
      ['nginx', '198.51.100.22 - - [22/Nov/2026:07:04:01 +0000] "GET /6.6.6.6 - - [22/Nov/2026:07:04:01 +0000] \\x22GET /.env HTTP/1.1\\x22 404 HTTP/1.1" 200 12 "-" "-"', []],
      // An address as the basic-auth user name.
      ['nginx', '198.51.100.23 - 6.6.6.6 [22/Nov/2026:07:04:02 +0000] "GET /search?q=wp-login.php HTTP/1.1" 401 900 "-" "Mozilla/5.0"', [['http.auth-fail', '198.51.100.23']]],
      ['nginx', '198.51.100.23 - 2001:db8::6 [22/Nov/2026:07:04:02 +0000] "GET / HTTP/1.1" 401 9 "-" "-"', [['http.auth-fail', '198.51.100.23']]],
      // Apache escapes " in the request as \".
      ['apache', '198.51.100.24 - - [22/Nov/2026:08:00:05 +0100] "GET /x\\" 404 1 \\"-\\" HTTP/1.1" 200 196 "-" "Mozilla/5.0"', []],
      // nginx error log: client text in request and host; a user name cannot hold ":" (Basic credentials end there).
      ['nginx', '2026/11/22 07:10:07 [error] 812#812: *1204 user "x" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.92, server: example.com, request: "GET /, client: 6.6.6.6, server: x HTTP/1.1", host: "client: 6.6.6.6"', [['http.auth-fail', '203.0.113.92']]],
      ['nginx', '2026/11/22 07:10:08 [error] 812#812: *1205 user "b, client" was not found in "/etc/nginx/.htpasswd", client: 2001:db8::93, server: example.com, request: "GET / HTTP/1.1", host: "example.com"', [['http.auth-fail', '2001:db8::93']]],
      ['apache', '[Sun Nov 22 08:01:09.000000 2026] [auth_basic:error] [pid 4104] [client 203.0.113.114:51270] AH01618: user [client 6.6.6.6:1] not found: /private', [['http.auth-fail', '203.0.113.114']]],
    ];
    for (const [format, line, want] of cases) test(`${format}: ${line.slice(0, 100)}`, () => check(format, line, want));
  });

  test('probe classification decodes percent-encoding and ignores the query', () => {
    assert.equal(classifyProbe('GET', '/%2eenv'), 'env');
    assert.equal(classifyProbe('GET', '/search?q=/.env'), undefined);
    assert.equal(classifyProbe('GET', '/environment'), undefined);
    assert.equal(classifyProbe('GET', '/.envelope'), undefined);
    assert.equal(classifyProbe('GET', '/PHPMYADMIN/'), 'phpmyadmin');
    assert.equal(classifyProbe('GET', '/%zz/.git/HEAD'), 'git');
  });
});

describe('addresses and patterns', () => {
  test('strict address validation', () => {
    assert.equal(strictIp('203.0.113.7'), '203.0.113.7');
    assert.equal(strictIp('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(strictIp('2001:DB8:0:0::1'), '2001:db8::1');
    for (const bad of ['203.0.113.07', '203.0.113', '203.0.113.256', '1.2.3.4.5', 'fe80::1%eth0', '[2001:db8::1]', '2001:db8::1::2', '::g', '', 'localhost']) {
      assert.equal(strictIp(bad), undefined, bad);
    }
  });

  test('every built-in pattern passes the backtracking check', () => {
    const all: RegExp[] = [
      ...Object.values(SSHD_PATTERNS),
      ...Object.values(POSTFIX_PATTERNS),
      ...Object.values(DOVECOT_PATTERNS),
      ...Object.values(NGINX_MESSAGES),
      ACCESS,
      NGINX_ERROR,
      APACHE_ERROR,
    ];
    for (const re of all) assert.deepEqual(backtrackingRisks(re.source, re.flags), [], re.source);
  });

  test('built-in patterns stay fast on hostile 4 KiB lines', () => {
    const hostile = [
      `${H} sshd[1]: Failed password for ${' from 1.1.1.1 port 1'.repeat(200)}`,
      `${H} sshd[1]: Connection closed by invalid user ${'1.1.1.1 port 1 '.repeat(250)}`,
      `${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<${'>, method=PLAIN, rip=1.1.1.1, lip=1.1.1.1, TLS'.repeat(80)}`,
      `1.2.3.4 - ${'[22/Nov/2026:07:04:02 +0000] '.repeat(130)}`,
      `1.2.3.4 - - [22/Nov/2026:07:04:02 +0000] "${'\\'.repeat(4000)}`,
    ];
    const parse = createLineParser('auto');
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) for (const text of hostile) parse({ text, cut: false, lineNo: 1 }, []);
    assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  });

  test('fixture logs: only documentation addresses are found, never 6.6.6.6', () => {
    const parse = createLineParser('auto');
    const found = new Set<string>();
    for (const f of ['auth.log', 'mail.log', 'nginx-access.log', 'nginx-error.log', 'apache-access.log', 'apache-error.log']) {
      const text = readFileSync(new URL(`../fixtures/logs/${f}`, import.meta.url), 'utf8');
      for (const line of text.split('\n')) {
        const out: LogEvent[] = [];
        parse({ text: line, cut: false, lineNo: 1 }, out);
        for (const e of out) found.add(e.ip);
      }
    }
    assert.ok(found.size >= 30, `found ${found.size}`);
    assert.ok(!found.has('6.6.6.6') && !found.has('2001:db8::6'));
    for (const ip of found) assert.match(ip, /^(203\.0\.113\.|198\.51\.100\.|192\.0\.2\.|2001:db8:)/);
  });
});

describe('the line forms corpus (test/fixtures/logs/forms)', () => {
  /** The syslog stamps a line may carry: padded, unpadded, zero-padded days; journalctl's microseconds; RFC 3339 and short-iso. */
  const STAMPS = ['Jun  7 05:01:02', 'Jun 7 05:01:02', 'Jun 07 05:01:02', 'Jun 07 05:01:02.123456', '2026-06-07T05:01:02.123456+02:00', '2026-06-07T05:01:02+0200'];
  const HEADER = /^(?:[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\S+) (\S*[^\s:]) ([^\s:[]+)(?:\[\d+\])?: (.*)$/;

  for (const daemon of FORM_DAEMONS) {
    describe(daemon, () => {
      for (const form of loadForms(daemon)) {
        const want = describeEvents(form.expected);
        const label = `${form.expected.length === 0 ? 'no event' : want.join(' ')}: ${form.line.slice(0, 110)}`;
        test(label, () => {
          for (const format of ['auto', daemon]) {
            assert.deepEqual(describeEvents(events(format, form.line)), want, `${format}, line ${form.lineNo}`);
          }
          const h = HEADER.exec(form.line);
          if (!h) return;
          const [, host, program, message] = h;
          for (const stamp of STAMPS) {
            const line = `${stamp} ${host} ${program}[99]: ${message}`;
            assert.deepEqual(describeEvents(events('auto', line)), want, line);
          }
          // The journal hands over program and message apart (SYSLOG_IDENTIFIER, MESSAGE).
          assert.deepEqual(describeEvents(events('auto', 'x', { program, message })), want, `journal: ${program}: ${message}`);
          // journalctl -o cat: the message alone, read with the daemon's format (rsyslog's folding of repeats is not in the journal).
          if ((program === daemon || program === 'dovecot' || program.startsWith('postfix')) && !message.startsWith('message repeated ')) {
            assert.deepEqual(describeEvents(events(daemon, message)), want, `bare message: ${message}`);
          }
        });
      }
    });
  }

  test('the corpus covers every built-in event kind but the access-log ones it shares', () => {
    const kinds = new Set(FORM_DAEMONS.flatMap((d) => loadForms(d).flatMap((f) => f.expected.map((e) => e.kind))));
    for (const kind of BUILTIN_KINDS) assert.ok(kinds.has(kind) || kind.startsWith('http.probe.'), kind);
  });

  test('a cut line yields nothing from the end-anchored formats', () => {
    for (const daemon of ['sshd', 'dovecot'] as const) {
      for (const form of loadForms(daemon)) {
        const out: LogEvent[] = [];
        createLineParser('auto')({ text: form.line, cut: true, lineNo: 1 }, out);
        assert.deepEqual(out, [], form.line);
      }
    }
  });
});

describe('server faults never count', () => {
  // Postfix writes these when its SASL server (Dovecot or Cyrus) failed, or when the mechanism list
  // did not match: an auth backend outage must not ban every client that tries to log in.
  const reasons = [
    'Connection lost to authentication server',
    "Can't connect to authentication server",
    'Authentication backend error',
    'Invalid authentication mechanism',
    "Invalid authentication mechanism: 'PLAIN'",
    'generic failure',
    'no mechanism available',
    'transient failure (e.g., weak key)',
    'SASL(-1): generic failure: checkpass failed',
    'no memory available',
  ];
  for (const reason of reasons) {
    for (const suffix of ['', ', sasl_username=bob@example.com']) {
      test(`SASL ... authentication failed: ${reason}${suffix}`, () => {
        check('postfix', `${H} postfix/smtpd[1]: warning: unknown[203.0.113.40]: SASL PLAIN authentication failed: ${reason}${suffix}`, []);
        check('postfix', `${H} postfix/submission/smtpd[1]: warning: unknown[203.0.113.40]:587: SASL LOGIN authentication failed: ${reason}${suffix}`, []);
      });
    }
  }

  test('a Dovecot backend failure is not a failed login', () => {
    for (const reason of ['auth service reported temporary failure', 'internal failure, 1 successful auths', 'auth process communication failure', 'disconnected before auth was ready, waited 0 secs']) {
      check('dovecot', `${H} dovecot: imap-login: Disconnected (${reason}): user=<bob>, method=PLAIN, rip=203.0.113.60, lip=192.0.2.1, TLS, session=<Ab>`, []);
    }
    check('dovecot', `${H} dovecot: auth-worker(1): Error: sql(bob,203.0.113.60,<Ab>): Password query failed: Not connected to database`, []);
    check('dovecot', `${H} dovecot: auth-worker(1): pam(bob,203.0.113.60): pam_authenticate() failed: Authentication service cannot retrieve authentication info`, []);
  });

  test('temporary and warn-only smtpd refusals do not count', () => {
    check('postfix', `${H} postfix/smtpd[1]: NOQUEUE: reject: RCPT from x.example[198.51.100.90]: 450 4.2.0 <b@example.com>: Recipient address rejected: Greylisted; from=<a@b> to=<b@example.com> proto=ESMTP helo=<x>`, []);
    check('postfix', `${H} postfix/smtpd[1]: NOQUEUE: reject: RCPT from x.example[198.51.100.90]: 451 4.3.5 Server configuration problem; from=<a@b> to=<b@example.com> proto=ESMTP helo=<x>`, []);
    check('postfix', `${H} postfix/smtpd[1]: NOQUEUE: reject: RCPT from x.example[198.51.100.90]: 554 5.3.0 Server configuration error; from=<a@b> to=<b@example.com> proto=ESMTP helo=<x>`, []);
  });
});

describe('forged addresses in the new forms', () => {
  test('Dovecot: a TLS tail cannot reach back over the user name, and a client certificate makes the line unreadable', () => {
    // The user name forges a whole tail ending in a TLS element: the real one follows and wins.
    check('dovecot', `${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=6.6.6.6, lip=1.1.1.1, TLS: x>, method=PLAIN, rip=203.0.113.62, lip=192.0.2.1, TLS: Connection closed, session=<Ab12>`, [['dovecot.auth-fail', '203.0.113.62']]);
    // Without a real rip= (a local connection), a forged one in the user name is not taken: the TLS text cannot span the user's closing `>`.
    check('dovecot', `${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=6.6.6.6, lip=1.1.1.1, TLS: >, method=PLAIN, lip=192.0.2.1, session=<Ab12>`, []);
    // The certificate subject is the client's text, written after the real address.
    check('dovecot', `${H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.62, lip=192.0.2.1, TLS handshaking: Received invalid SSL certificate: unable to get local issuer certificate: /CN=a>, method=PLAIN, rip=6.6.6.6, lip=1.1.1.1 (check ssl_client_ca_file), session=<Ab12>`, []);
    check('dovecot', `${H} dovecot: imap-login: Disconnected: Too many invalid commands (no auth attempts in 0 secs): user=<x>, rip=6.6.6.6, lip=1.1.1.1>, rip=203.0.113.72, lip=192.0.2.1, session=<Ef7Gh8>`, [['dovecot.probe', '203.0.113.72']]);
    check('dovecot', `${H} dovecot: auth-worker(1): Info: conn unix:auth-worker (pid=3390,uid=97): auth-worker<1>: pam(x,6.6.6.6): unknown user,203.0.113.84,<Ij90>): unknown user`, [['dovecot.auth-mismatch', '203.0.113.84']]);
    check('dovecot', `${H} dovecot: auth: passwd-file(x,203.0.113.87): Password mismatch (given password: ,6.6.6.6): Password mismatch)`, []);
  });

  test('nginx: a path that forges the client field is not believed', () => {
    // The request asked for /x%22%20failed%20(2:%20No%20such%20file%20or%20directory),%20client:%206.6.6.6,%20server:%20x — nginx decodes it into the path.
    const forged = '2026/06/07 07:10:07 [error] 812#812: *1204 open() "/var/www/html/x" failed (2: No such file or directory), client: 6.6.6.6, server: x" failed (2: No such file or directory), client: 203.0.113.93, server: example.com, request: "GET /x%22%20failed HTTP/1.1", host: "example.com"';
    check('nginx', forged, []);
    check('nginx', '2026/06/07 07:10:09 [error] 812#812: *1206 directory index of "/var/www/html/a" is forbidden, client: 6.6.6.6, server: x/" is forbidden, client: 203.0.113.95, server: example.com, request: "GET /a HTTP/1.1", host: "example.com"', []);
    // nginx cuts its error lines at 2,048 bytes: a long path could push the real client field out of the line.
    const cut = `2026/06/07 07:10:07 [error] 812#812: *1204 open() "/var/www/html/${'a'.repeat(1900)}" failed (2: No such file or directory), client: 6.6.6.6, server: x`;
    check('nginx', cut, []);
    // A Basic-auth user name ends at its first colon: it cannot hold `client: `.
    check('nginx', '2026/06/07 07:10:06 [info] 812#812: *1203 no user/password was provided for basic authentication, client: 203.0.113.92, server: example.com, request: "GET /, client: 6.6.6.6 HTTP/1.1", host: "client: 6.6.6.6"', [['http.auth-none', '203.0.113.92']]);
  });

  test('Apache through syslog: the client field comes before any client text', () => {
    check('apache', `${H} apache2[1]: [auth_basic:error] [pid 1] [client 203.0.113.130:51300] AH01618: user [client 6.6.6.6:1] not found: /private`, [['http.auth-fail', '203.0.113.130']]);
    check('apache', `${H} apache2[1]: [core:info] [pid 1] [client 203.0.113.132:51302] AH00128: File does not exist: /var/www/[client 6.6.6.6:1] x, referer: [client 6.6.6.6:2]`, [['http.error.not-found', '203.0.113.132']]);
    // Not Apache's tag: nothing.
    check('apache', `${H} logger[1]: [auth_basic:error] [pid 1] [client 6.6.6.6:1] AH01618: user admin not found: /private`, []);
  });
});
