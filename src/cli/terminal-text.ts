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
import { printableJson, printableLines } from '../core/printable.js';

export { printable, printableLines, printableJson } from '../core/printable.js';

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
