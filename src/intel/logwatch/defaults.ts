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
  /** Port scanners connect and say nothing. */
  'ssh-scan': s(['sshd.no-ident'], 5, 10 * MIN, 'probe'),
  'smtp-auth': s(['postfix.sasl-fail'], 5, 10 * MIN, 'brute-force'),
  /** postscreen saw the client talk before its turn: a bot. */
  'smtp-pregreet': s(['postfix.pregreet'], 2, HOUR, 'probe'),
  /** postscreen (or smtpd) refused the client for its DNSBL score already. */
  'smtp-dnsbl': s(['postfix.dnsbl'], 1, HOUR, 'dnsbl'),
  /** Distinct unknown recipients from one client: a directory-harvest / address-guessing attack. */
  'smtp-address-guessing': s(['postfix.unknown-user'], 10, HOUR, 'address-guessing', { distinct: true }),
  /** The login processes' count of failed attempts (`auth failed, N attempts`). */
  'imap-auth': s(['dovecot.auth-fail'], 5, 10 * MIN, 'brute-force'),
  /** Asked for /.env, tmUnblock.cgi or /.git/: no honest client does. */
  'http-probe': s(['http.probe.env', 'http.probe.tmunblock', 'http.probe.git'], 1, 10 * MIN, 'probe'),
  /** Scanners for software the site does not have (only failed requests count). */
  'http-scan': s(['http.probe.wordpress', 'http.probe.phpmyadmin', 'http.probe.cgi-bin'], 5, 10 * MIN, 'probe'),
  /** POSTs to wp-login.php / xmlrpc.php that did not log in. On a site without WordPress, set count: 1. */
  'http-wordpress-login': s(['http.probe.wp-login', 'http.probe.xmlrpc'], 5, 10 * MIN, 'brute-force'),
  /** A burst of 403/404s; a page with many missing images stays far below. */
  'http-errors': s(['http.status.403', 'http.status.404'], 40, MIN, 'probe'),
  /** Basic-auth failures (401 with a user name, error-log "password mismatch" / "not found"). */
  'http-auth': s(['http.auth-fail'], 5, 10 * MIN, 'brute-force'),
};
