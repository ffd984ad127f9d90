// Headers the gate adds at the top of a message: the verdict's
// (Authentication-Results, X-Frontline-*) and, when the backend cannot be told
// the real client (no XCLIENT or XFORWARD), a Received line of our own.

const FOLD_AT = 78;
/** What formatHeader's cleaning would change: line breaks, runs of spaces, whitespace at either end. */
const NEEDS_CLEANING = /[\r\n]| {2}|^\s|\s$/;

/** `Name: value` folded at whitespace so no line exceeds ~78 characters, CRLF-ended. */
export function formatHeader(name: string, value: string): string {
  const dirty = NEEDS_CLEANING.test(value);
  // Short and already clean (one line, single spaces, nothing to trim): as it is.
  if (!dirty && name.length + 2 + value.length <= FOLD_AT) return `${name}: ${value}\r\n`;
  const clean = dirty ? value.replace(/\r?\n[ \t]*/g, ' ').trim() : value;
  // The words are the runs between spaces (split(/ +/) without the array), each added to the line or starting a new one.
  const head = `${name}:`;
  let out = '';
  let line = head;
  let i = 0;
  for (;;) {
    const sp = clean.indexOf(' ', i);
    const w = sp < 0 ? clean.slice(i) : clean.slice(i, sp);
    if (line.length + 1 + w.length > FOLD_AT && line.trim() !== head) {
      out += `${line}\r\n`;
      line = `\t${w}`;
    } else {
      line += ` ${w}`;
    }
    if (sp < 0) break;
    i = sp + 1;
    while (clean.charCodeAt(i) === 32) i++;
  }
  return `${out}${line}\r\n`;
}

/**
 * The message with `headers` on top, as the parts to send one after the
 * other: the message itself is not copied (it may be megabytes).
 */
export function prependHeaders(message: Buffer, headers: Array<[string, string]>): Buffer[] {
  if (headers.length === 0) return [message];
  const top = headers.map(([n, v]) => formatHeader(n, v)).join('');
  return [Buffer.from(top, 'utf8'), message];
}

export interface ReceivedFacts {
  helo?: string;
  name?: string;
  ip: string;
  by: string;
  proto: string;
  id: string;
  rcpt?: string;
  date: Date;
}

/** RFC 5321 §4.4 trace line. */
export function receivedHeader(f: ReceivedFacts): [string, string] {
  const from = `${f.helo ?? 'unknown'} (${f.name ?? 'unknown'} [${f.ip}])`;
  const forRcpt = f.rcpt ? ` for <${f.rcpt}>` : '';
  return ['Received', `from ${from} by ${f.by} (frontline gate) with ${f.proto} id ${f.id}${forRcpt}; ${rfc5322Date(f.date)}`];
}

export function rfc5322Date(d: Date): string {
  // A Received line per message, most in the same second as the one before: made once a second.
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastDate.second) {
    // toUTCString gives "Tue, 02 Jan 2024 03:04:05 GMT"; RFC 5322 prefers a numeric zone.
    lastDate.text = d.toUTCString().replace(/GMT$/, '+0000');
    lastDate.second = second;
  }
  return lastDate.text;
}
const lastDate = { second: NaN, text: '' };
