// Headers the gate adds at the top of a message: the verdict's
// (Authentication-Results, X-Frontline-*) and, when the backend cannot be told
// the real client (no XCLIENT or XFORWARD), a Received line of our own.

import { formatHeader } from '../core/header-line.js';

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
