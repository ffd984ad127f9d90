// Headers the gate adds at the top of a message: the verdict's
// (Authentication-Results, X-Frontline-*) and, when the backend cannot be told
// the real client (no XCLIENT or XFORWARD), a Received line of our own.

const FOLD_AT = 78;

/** `Name: value` folded at whitespace so no line exceeds ~78 characters, CRLF-ended. */
export function formatHeader(name: string, value: string): string {
  const clean = value.replace(/\r?\n[ \t]*/g, ' ').trim();
  const words = clean.split(/ +/);
  const lines: string[] = [];
  let line = `${name}:`;
  for (const w of words) {
    if (line.length + 1 + w.length > FOLD_AT && line.trim() !== `${name}:`) {
      lines.push(line);
      line = `\t${w}`;
    } else {
      line += ` ${w}`;
    }
  }
  lines.push(line);
  return `${lines.join('\r\n')}\r\n`;
}

export function prependHeaders(message: Buffer, headers: Array<[string, string]>): Buffer {
  if (headers.length === 0) return message;
  const top = headers.map(([n, v]) => formatHeader(n, v)).join('');
  return Buffer.concat([Buffer.from(top, 'utf8'), message]);
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
  // toUTCString gives "Tue, 02 Jan 2024 03:04:05 GMT"; RFC 5322 prefers a numeric zone.
  return d.toUTCString().replace(/GMT$/, '+0000');
}
