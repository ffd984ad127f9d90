// The default scenarios. Each one's thresholds are chosen so that an honest
// user who mistypes a password, or a browser that hits a few missing images,
// is not banned; each can be changed or switched off in the config
// (`logwatch.scenarios.<name>`). Documented in docs/logwatch.md.

export interface ScenarioSettings {
  enabled: boolean;
  match: string[];
  count: number;
  window_s: number;
  leak_s?: number;
  distinct: boolean;
  cooldown_s: number;
  category: string;
}

const MIN = 60;
const HOUR = 3600;

function s(match: string[], count: number, window_s: number, category: string, more: Partial<ScenarioSettings> = {}): ScenarioSettings {
  return { enabled: true, match, count, window_s, distinct: false, cooldown_s: 10 * MIN, category, ...more };
}

export const DEFAULT_SCENARIOS: Readonly<Record<string, ScenarioSettings>> = {
  /** One failed ssh login logs 2–3 of these lines (invalid user, failed password, closed): 6 is 2–3 attempts. */
  'ssh-bruteforce': s(['sshd.auth-fail', 'sshd.invalid-user', 'sshd.max-auth', 'sshd.preauth-close'], 6, 10 * MIN, 'brute-force'),
  /** Port and version scanners: no identification, no common algorithm, or sshd's own penalty (9.8+). */
  'ssh-scan': s(['sshd.no-ident', 'sshd.kex-fail', 'sshd.penalty'], 5, 10 * MIN, 'probe'),
  /**
   * Connections that leave before trying a user. One such connection can log two lines
   * (`Received disconnect`, `Disconnected from`), and a monitoring probe one per check: the
   * threshold is high, and monitoring hosts belong in `ignore`.
   */
  'ssh-preauth': s(['sshd.preauth-drop'], 20, 10 * MIN, 'probe'),
  /** SASL failures of the client's making only (never `Connection lost to authentication server`). */
  'smtp-auth': s(['postfix.sasl-fail'], 5, 10 * MIN, 'brute-force'),
  /** Clients that hang up in the middle of AUTH or abort it: password-guessing bots do, mail clients rarely. */
  'smtp-auth-dropped': s(['postfix.auth-dropped'], 10, 10 * MIN, 'brute-force'),
  /** postscreen saw the client talk before its turn: a bot. */
  'smtp-pregreet': s(['postfix.pregreet'], 2, HOUR, 'probe'),
  /** Bare newlines, pipelining without PIPELINING, HTTP sent to port 25, command limits, too many errors. */
  'smtp-protocol': s(['postfix.protocol', 'postfix.too-many-errors'], 3, HOUR, 'probe'),
  /** postscreen (or smtpd) refused the client for its DNSBL score already. */
  'smtp-dnsbl': s(['postfix.dnsbl'], 1, HOUR, 'dnsbl'),
  /** Distinct unknown recipients from one client: a directory-harvest / address-guessing attack. */
  'smtp-address-guessing': s(['postfix.unknown-user'], 10, HOUR, 'address-guessing', { distinct: true }),
  /** Tries to relay through the server without logging in (a user who forgot to set up SMTP AUTH makes one per recipient). */
  'smtp-relay': s(['postfix.relay-denied'], 5, HOUR, 'probe'),
  /**
   * Every other permanent (5xx) refusal by smtpd: client, HELO, sender, recipient, and the
   * refusals of policy services such as frontline itself. Off: it would ban a sender for mail
   * the server already refused, and a misconfigured honest sender with it.
   */
  'smtp-rejects': s(['postfix.reject'], 10, HOUR, 'policy', { enabled: false }),
  /** The login processes' count of failed attempts (`auth failed, N attempts`). */
  'imap-auth': s(['dovecot.auth-fail'], 5, 10 * MIN, 'brute-force'),
  /** `Too many invalid commands` before any login: something that does not speak IMAP/POP3 (an HTTP scanner). */
  'imap-probe': s(['dovecot.probe'], 5, 10 * MIN, 'probe'),
  /** Asked for /.env, tmUnblock.cgi or /.git/: no honest client does. */
  'http-probe': s(['http.probe.env', 'http.probe.tmunblock', 'http.probe.git'], 1, 10 * MIN, 'probe'),
  /** Scanners for software the site does not have (only failed requests count). */
  'http-scan': s(['http.probe.wordpress', 'http.probe.phpmyadmin', 'http.probe.cgi-bin'], 5, 10 * MIN, 'probe'),
  /** POSTs to wp-login.php / xmlrpc.php that did not log in. On a site without WordPress, set count: 1. */
  'http-wordpress-login': s(['http.probe.wp-login', 'http.probe.xmlrpc'], 5, 10 * MIN, 'brute-force'),
  /** A burst of 403/404s; a page with many missing images stays far below. */
  'http-errors': s(['http.status.403', 'http.status.404'], 40, MIN, 'probe'),
  /** The same burst seen in the error log (missing files, access rules); a scenario of its own so that watching both logs does not count a request twice. */
  'http-error-log': s(['http.error.not-found', 'http.error.denied'], 40, MIN, 'probe'),
  /** Basic/digest-auth failures (401 with a user name, error-log "password mismatch" / "not found"). */
  'http-auth': s(['http.auth-fail'], 5, 10 * MIN, 'brute-force'),
};
