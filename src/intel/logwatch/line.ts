// One log line as the sources hand it over, and the syslog header every
// daemon's line starts with in a file (`Nov 22 05:01:02 host sshd[123]: …`,
// with the day padded by a space, a zero or not at all, journalctl's
// microseconds, or the RFC 3339 stamp of rsyslog's high-precision template and
// `journalctl -o short-iso`; without the host in a daemon's own log file). The header is
// written by syslog, not by the remote party: the program name in it is what
// routes a line to its format.

export interface LogLine {
  /** The line, already cut to max_line_bytes. */
  text: string;
  /** True when the line was longer than max_line_bytes (or had an embedded newline): its end is not the daemon's. */
  cut: boolean;
  /** 1-based line number within its source, when known (0 = unknown). */
  lineNo: number;
  /** Set by sources that split lines themselves (the journal): no syslog header is parsed then. */
  program?: string;
  message?: string;
  /** Milliseconds since the epoch, when the source knows it (the journal). */
  time?: number;
}

export interface SyslogParts {
  stamp: string;
  program: string;
  message: string;
}

/** The end of a BSD stamp at the start of `line` (`Nov 22 05:01:02`, `Jun  7 …`, `Jun 7 …`, `Jun 07 …`, `… 05:01:02.123456`), or -1. */
function bsdStampEnd(line: string): number {
  if (line.charCodeAt(3) !== 32) return -1;
  let i = line.charCodeAt(4) === 32 ? 5 : 4; // "Jun  7": a space pads the day
  if (!isDigit(line.charCodeAt(i))) return -1;
  i += isDigit(line.charCodeAt(i + 1)) ? 2 : 1;
  if (line.charCodeAt(i) !== 32 || line.charCodeAt(i + 3) !== 58 || line.charCodeAt(i + 6) !== 58) return -1;
  i += 9;
  if (line.charCodeAt(i) === 46) {
    // journalctl -o short-precise: microseconds
    i++;
    while (isDigit(line.charCodeAt(i))) i++;
  }
  return line.charCodeAt(i) === 32 ? i : -1;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Split a syslog line; undefined when it does not start with a syslog header. */
export function parseSyslog(line: string): SyslogParts | undefined {
  let end: number;
  const c0 = line.charCodeAt(0);
  if (c0 >= 65 && c0 <= 90) {
    end = bsdStampEnd(line); // "Nov 22 05:01:02"
    if (end < 0) return undefined;
  } else if (c0 >= 48 && c0 <= 57 && line.charCodeAt(4) === 45 && line.charCodeAt(7) === 45) {
    const sep = line.charCodeAt(10);
    if (sep === 84 /* T */) end = line.indexOf(' ', 11); // "2026-11-22T05:01:02.123456+00:00"
    else if (sep === 32 && line.charCodeAt(13) === 58 && line.charCodeAt(16) === 58) end = line.indexOf(' ', 17); // "2026-11-22 05:01:02" (Dovecot's log_timestamp)
    else return undefined;
    if (end < 0) return undefined;
  } else return undefined;
  const hostEnd = line.indexOf(' ', end + 1);
  if (hostEnd < 0) return undefined;
  // No host: a daemon's own log file (Dovecot's log_path: `Jun 07 07:00:00 imap-login: Info: …`)
  // or a local syslogd that leaves the host out (busybox): the first word after the stamp is the tag.
  const noHost = line.charCodeAt(hostEnd - 1) === 58; /* : */
  const colon = noHost ? hostEnd - 1 : line.indexOf(': ', hostEnd + 1);
  if (colon < 0) return undefined;
  const tag = line.slice(noHost ? end + 1 : hostEnd + 1, colon);
  if (tag.length === 0 || tag.length > 64 || tag.includes(' ')) return undefined;
  let program = tag;
  const bracket = tag.indexOf('[');
  if (bracket >= 0) {
    if (bracket === 0 || tag.charCodeAt(tag.length - 1) !== 93) return undefined;
    program = tag.slice(0, bracket);
  }
  return { stamp: line.slice(0, end), program, message: line.slice(colon + 2) };
}

const REPEATED = /^message repeated (\d{1,9}) times: \[ (.*)\]$/;

/** rsyslog folds repeats into `message repeated N times: [ msg]`: the message and N (capped). */
export function unfoldRepeated(message: string, cap: number): { message: string; times: number } {
  if (message.charCodeAt(0) !== 109 || !message.startsWith('message repeated ')) return { message, times: 1 };
  const m = REPEATED.exec(message);
  return m ? { message: m[2], times: Math.min(Number(m[1]), cap) } : { message, times: 1 };
}

/** Cut a string to at most `maxBytes` of UTF-8 (sources that get strings, not bytes: the journal). */
export function cutText(text: string, maxBytes: number): { text: string; cut: boolean } {
  const nl = text.search(/[\r\n]/);
  let cut = false;
  if (nl >= 0) {
    text = text.slice(0, nl);
    cut = true;
  }
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return { text, cut };
  return { text: Buffer.from(text).subarray(0, maxBytes).toString(), cut: true };
}
