// Routes each line to the formats that read it. A syslog line goes to the
// format of its program (the tag syslog wrote); a line without a syslog header
// (access and error logs) to the web formats. `auto` tries all of them.

import { parseSyslog, unfoldRepeated, type LogLine } from '../line.js';
import { apache } from './apache.js';
import { customFormat, type CustomPatternSpec } from './custom.js';
import { dovecot } from './dovecot.js';
import { parseAccess, parseApacheError, parseNginxError } from './http.js';
import { nginx } from './nginx.js';
import { postfix } from './postfix.js';
import { sshd } from './sshd.js';
import type { Entry, Format, LogEvent } from './types.js';

export type { Entry, Format, LogEvent } from './types.js';

export const BUILTIN_FORMATS = { sshd, postfix, dovecot, nginx, apache } as const;
export type BuiltinFormatName = keyof typeof BUILTIN_FORMATS;
export const FORMAT_NAMES = ['auto', ...(Object.keys(BUILTIN_FORMATS) as BuiltinFormatName[])] as const;

/** Every event kind the built-in formats produce (scenarios are checked against these). */
export const BUILTIN_KINDS = [
  'sshd.auth-fail',
  'sshd.invalid-user',
  'sshd.max-auth',
  'sshd.preauth-close',
  'sshd.no-ident',
  'sshd.pam-auth-fail',
  'sshd.preauth-drop',
  'sshd.kex-fail',
  'sshd.penalty',
  'postfix.sasl-fail',
  'postfix.auth-dropped',
  'postfix.pregreet',
  'postfix.dnsbl',
  'postfix.denylisted',
  'postfix.protocol',
  'postfix.too-many-errors',
  'postfix.unknown-user',
  'postfix.relay-denied',
  'postfix.reject',
  'dovecot.auth-fail',
  'dovecot.auth-mismatch',
  'dovecot.probe',
  'http.probe.env',
  'http.probe.tmunblock',
  'http.probe.git',
  'http.probe.wordpress',
  'http.probe.wp-login',
  'http.probe.xmlrpc',
  'http.probe.phpmyadmin',
  'http.probe.cgi-bin',
  'http.status.403',
  'http.status.404',
  'http.auth-fail',
  'http.auth-none',
  'http.error.not-found',
  'http.error.denied',
] as const;

/** rsyslog never folds more than this; a larger count is not believed. */
const MAX_REPEAT = 1000;

const SYSLOG_FORMATS: Format[] = [sshd, postfix, dovecot, nginx, apache];

/** Web logs without a syslog header: one access parser serves both servers (same format), plus each error log. */
const webAuto: Format = {
  name: 'web',
  accepts: (program) => program === undefined,
  parse(entry, out) {
    const line = entry.message;
    const c0 = line.charCodeAt(0);
    if (c0 === 91 /* [ */) parseApacheError(line, entry.times, out);
    else if (line.charCodeAt(4) === 47 /* 2026/ */) parseNginxError(line, entry.times, out);
    else parseAccess(line, entry.times, out);
  },
};

/** Pushes the events of a line into `out`; returns the line's syslog time stamp text, if it had one. */
export type LineParser = (line: LogLine, out: LogEvent[]) => string | undefined;

/**
 * A function that finds the events of a line. `format`: `auto`, a built-in
 * name, or the name of one of `patterns` (then only that pattern runs). In
 * `auto`, every custom pattern runs as well as the built-ins.
 */
export function createLineParser(format: string, patterns: readonly CustomPatternSpec[] = []): LineParser {
  const customs = patterns.map(customFormat);
  let formats: Format[];
  if (format === 'auto') formats = [];
  else if (format in BUILTIN_FORMATS) formats = [BUILTIN_FORMATS[format as BuiltinFormatName]];
  else {
    const custom = customs.find((c) => c.name === format);
    if (!custom) throw new Error(`unknown log format ${JSON.stringify(format)} (expected ${FORMAT_NAMES.join(', ')} or a pattern name)`);
    formats = [custom];
  }
  const auto = format === 'auto';
  const entry: Entry = { line: '', message: '', program: undefined, cut: false, times: 1 };
  /** Syslog program → its format (null: none); programs are few, the cap only bounds a hostile log. */
  const byProgram = new Map<string, Format | null>();

  return (line, out) => {
    entry.line = line.text;
    entry.cut = line.cut;
    entry.times = 1;
    let message: string;
    let program: string | undefined;
    let stamp: string | undefined;
    if (line.message !== undefined) {
      message = line.message;
      program = line.program;
    } else {
      const parts = parseSyslog(line.text);
      message = parts ? parts.message : line.text;
      program = parts?.program;
      stamp = parts?.stamp;
    }
    if (program !== undefined) {
      const unfolded = unfoldRepeated(message, MAX_REPEAT);
      message = unfolded.message;
      entry.times = unfolded.times;
    }
    entry.message = message;
    entry.program = program;
    if (!auto) {
      for (const f of formats) if (f.accepts(program)) f.parse(entry, out);
      return stamp;
    }
    if (program === undefined) webAuto.parse(entry, out);
    else {
      let f = byProgram.get(program);
      if (f === undefined) {
        if (byProgram.size >= 256) byProgram.clear();
        f = SYSLOG_FORMATS.find((x) => x.accepts(program)) ?? null;
        byProgram.set(program, f);
      }
      f?.parse(entry, out);
    }
    for (const c of customs) if (c.accepts(program)) c.parse(entry, out);
    return stamp;
  };
}
