// What a format is: a reader of one daemon's lines that finds events — "this
// address failed a login", "this address asked for /.env" — and nothing else.
// Every pattern is anchored on the text the daemon writes itself; the address
// is taken from a position the remote party cannot reach (see docs/logwatch.md,
// "Safe against the logs' authors").

export interface LogEvent {
  /** `sshd.auth-fail`, `postfix.unknown-user`, `http.probe.env`, `custom.<name>` … */
  kind: string;
  /** Canonical address (strictly validated). */
  ip: string;
  /** What distinct-counting scenarios count (the unknown recipient of address guessing). */
  key?: string;
  /** How many occurrences the line stands for (`message repeated 3 times`, `3 attempts`). */
  times: number;
  /** The line's own time stamp text, when the format found one inside the line (access logs). */
  stamp?: string;
}

export interface Entry {
  /** The whole line (custom patterns without a program read this). */
  line: string;
  /** The syslog message, or the whole line when it has no syslog header. */
  message: string;
  /** Syslog tag without pid (`sshd`, `postfix/smtpd`), undefined for lines without a header. */
  program?: string;
  /** True when the line was cut: its end was not written by the daemon. */
  cut: boolean;
  /** Occurrences (`message repeated N times`). */
  times: number;
}

export interface Format {
  readonly name: string;
  /** Does this format read lines of this syslog program? (`undefined`: a line without a syslog header.) */
  accepts(program: string | undefined): boolean;
  /** Push the events of one line. */
  parse(entry: Entry, out: LogEvent[]): void;
}

/** An address-shaped token; strictIp() decides whether it is one. */
export const IP = '([0-9A-Fa-f:.]{2,45})';
