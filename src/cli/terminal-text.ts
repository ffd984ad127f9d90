// What the command line prints is safe on a terminal: every non-printable
// character of the data it shows — C0 and C1 controls (ESC starts terminal
// escape sequences; U+009B is a one-character CSI to some terminals), DEL,
// Unicode format characters (U+202E turns text around), line and paragraph
// separators, private-use, unassigned and lone surrogate code points — is
// written as an escape, never raw. Ban reasons, senders, recipients, list
// entries, greylist keys and SMTP texts come from clients and log lines an
// attacker writes (`MAIL FROM:<a\x1b]0;pwned\x07@x>`).
//
// Text is escaped as `\xNN` (below U+0100) or `\u{NNNN}`; JSON output keeps
// JSON's own `\uNNNN`, so it still parses to the same strings. Escapes are
// printable ASCII: escaping twice changes nothing.

import { Writable } from 'node:stream';

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]|\p{Cs}/gu;
const UNPRINTABLE_KEEP_NEWLINE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]|\p{Cs}/gu;

function textEscape(ch: string): string {
  const cp = ch.codePointAt(0) as number;
  if (cp === 0x09) return '\\t';
  if (cp === 0x0a) return '\\n';
  if (cp === 0x0d) return '\\r';
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

function jsonEscape(ch: string): string {
  let out = '';
  for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** One table cell or value: every non-printable character escaped, newlines too. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, textEscape);
}

/** Lines of text: as printable(), but a newline stays a newline. */
export function printableLines(text: string): string {
  return text.replace(UNPRINTABLE_KEEP_NEWLINE, textEscape);
}

/** JSON text (from JSON.stringify): what it left raw (C1, format characters…) as `\uNNNN`, which only occurs inside strings. */
export function printableJson(json: string): string {
  return json.replace(UNPRINTABLE_KEEP_NEWLINE, jsonEscape);
}

/**
 * `out`, with every non-printable character but the newline escaped in what
 * is written to it (`json`: JSON's escapes). Writes pass straight through,
 * synchronously, so nothing is held back when a command returns.
 */
export function printableStream(out: Writable, json = false): Writable {
  const escape = json ? printableJson : printableLines;
  const w = new Writable();
  w.write = ((chunk: unknown, ...rest: unknown[]) =>
    (out.write as (...a: unknown[]) => boolean)(escape(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')), ...rest)) as Writable['write'];
  return w;
}
