// Recipients of mail our users sent, read from Postfix's log:
//
//   … postfix/smtp[4242]: 4BZ0Q22bWnz9vBp: to=<bob@example.org>, relay=mx.example.org[192.0.2.5]:25,
//     delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 7D1E2)
//
// Only the Postfix `smtp` client delivers to other hosts; `local`, `virtual`
// and `lmtp` deliver to our own mailboxes. By default a delivery counts only
// when the same queue id was received from a SASL-authenticated client
// (`smtpd[…]: QUEUEID: client=…, sasl_method=…, sasl_username=…`), so mail
// merely relayed or forwarded for outsiders teaches nothing.
//
// Remote parties write into this log (HELO names, addresses, reply texts), so
// nothing is taken from a line unless the syslog header written by syslog
// names the Postfix program, and each pattern is anchored at the start of the
// message Postfix wrote, up to the field we read.

export interface SentRecipient {
  queueId: string;
  /** The recipient as Postfix logged it (`to=<…>`). */
  address: string;
  /** `host[ip]:port` the message went to. */
  relay: string;
}

export interface PostfixSentLogOptions {
  /** Count only deliveries of mail received from a SASL-authenticated client. Default true. */
  requireAuth?: boolean;
  /** Also count mail submitted locally (`pickup`: the sendmail command, web apps). Default false. */
  includeLocal?: boolean;
  /** Queue ids remembered while waiting for their deliveries. Default 100,000 (oldest dropped). */
  maxTracked?: number;
}

// "Nov 22 05:01:02 host tag: msg" or "2026-11-22T05:01:02.123+00:00 host tag: msg"
const SYSLOG = /^(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:?\d\d)?) \S+ ([^\s[\]:]{1,64})(?:\[\d{1,10}\])?: (.*)$/;
/** postfix/smtp, postfix/submission/smtpd, postfix-out/smtp…: the daemon is the last part. */
const POSTFIX_PROGRAM = /^postfix[\w.-]*(?:\/[\w.-]+)*\/([a-z]+)$/;
const QID = '([0-9A-Za-z]{5,20})';
const AUTH_RECEIVED = new RegExp(`^${QID}: client=[^,\\s]*, sasl_method=[^,\\s]*, sasl_username=\\S`);
const LOCAL_PICKUP = new RegExp(`^${QID}: uid=\\d+ from=<`);
const REMOVED = new RegExp(`^${QID}: removed$`);
const SENT = new RegExp(
  `^${QID}: to=<([^<>\\s]{3,320})>, (?:orig_to=<[^<>]*>, )?relay=([^,\\s]+), (?:conn_use=\\d+, )?delay=[\\d.]+, delays=[\\d./]+, dsn=2\\.\\d{1,3}\\.\\d{1,3}, status=sent \\(`,
);

export class PostfixSentLog {
  private readonly requireAuth: boolean;
  private readonly includeLocal: boolean;
  private readonly maxTracked: number;
  /** Queue ids of authenticated (or local) submissions, oldest first. */
  private readonly authenticated = new Set<string>();

  constructor(opts: PostfixSentLogOptions = {}) {
    this.requireAuth = opts.requireAuth ?? true;
    this.includeLocal = opts.includeLocal ?? false;
    this.maxTracked = opts.maxTracked ?? 100_000;
  }

  /** A whole log line with its syslog header. */
  line(text: string): SentRecipient | undefined {
    const m = SYSLOG.exec(text);
    return m ? this.message(m[1], m[2]) : undefined;
  }

  /** A message already split from its header (the journal's SYSLOG_IDENTIFIER and MESSAGE). */
  message(program: string, message: string): SentRecipient | undefined {
    const daemon = POSTFIX_PROGRAM.exec(program)?.[1];
    switch (daemon) {
      case 'smtpd': {
        const m = AUTH_RECEIVED.exec(message);
        if (m) this.track(m[1]);
        return undefined;
      }
      case 'pickup': {
        const m = this.includeLocal ? LOCAL_PICKUP.exec(message) : null;
        if (m) this.track(m[1]);
        return undefined;
      }
      case 'qmgr': {
        const m = REMOVED.exec(message);
        if (m) this.authenticated.delete(m[1]);
        return undefined;
      }
      case 'smtp': {
        const m = SENT.exec(message);
        if (!m) return undefined;
        if (this.requireAuth && !this.authenticated.has(m[1])) return undefined;
        return { queueId: m[1], address: m[2], relay: m[3] };
      }
      default:
        return undefined;
    }
  }

  /** Queue ids being remembered (tests, metrics). */
  get tracked(): number {
    return this.authenticated.size;
  }

  private track(queueId: string): void {
    this.authenticated.add(queueId);
    if (this.authenticated.size > this.maxTracked) this.authenticated.delete(this.authenticated.values().next().value as string);
  }
}
