// The header block of a raw RFC 5322 message as a list of fields, for the
// checks that read headers (dmarc, arc, content). Parsing is bounded: the
// header block is cut at `maxHeaderBytes` and at most `maxFields` fields are
// kept, so a message built to be expensive costs no more than a large one.

export interface HeaderField {
  /** The field name as written. */
  name: string;
  /** The field name lower-cased, for lookups. */
  key: string;
  /** The value after the colon, unfolded (CRLF before continuation lines removed) and trimmed. */
  value: string;
}

export interface HeaderLimits {
  /** Fields kept at most (default 1000). */
  maxFields?: number;
  /** Bytes of the header block read at most (default 1 MB). */
  maxHeaderBytes?: number;
}

export interface ParsedHeader {
  fields: HeaderField[];
  /** True when fields or bytes beyond the limits were left out. */
  truncated: boolean;
}

export const DEFAULT_MAX_FIELDS = 1000;
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

/** Offset of the body: just after the first empty line (CRLF CRLF or LF LF); the message length when there is none. */
function bodyOffset(msg: Buffer): { headerEnd: number; bodyStart: number } {
  for (let i = 0; i < msg.length; i++) {
    if (msg[i] !== 0x0a) continue;
    if (i === 0) return { headerEnd: 0, bodyStart: 1 }; // message starts with an empty line: no header
    if (msg[i + 1] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 2 };
    if (msg[i + 1] === 0x0d && msg[i + 2] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 3 };
  }
  return { headerEnd: msg.length, bodyStart: msg.length };
}

/** Split a raw message at its first empty line. */
export function splitMessage(msg: Buffer): { header: Buffer; body: Buffer } {
  if (msg.length >= 2 && msg[0] === 0x0d && msg[1] === 0x0a) return { header: msg.subarray(0, 0), body: msg.subarray(2) };
  const { headerEnd, bodyStart } = bodyOffset(msg);
  return { header: msg.subarray(0, headerEnd), body: msg.subarray(bodyStart) };
}

/** Fields of a header block; lines that are neither `name: value` nor continuations are skipped. */
export function parseHeaderFields(header: Buffer | string, limits: HeaderLimits = {}): ParsedHeader {
  const maxFields = limits.maxFields ?? DEFAULT_MAX_FIELDS;
  const maxBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  let truncated = false;
  let text: string;
  if (typeof header === 'string') {
    text = header.length > maxBytes ? header.slice(0, maxBytes) : header;
    truncated = header.length > maxBytes;
  } else {
    truncated = header.length > maxBytes;
    text = header.subarray(0, maxBytes).toString('utf8');
  }
  const fields: HeaderField[] = [];
  let current: { name: string; parts: string[] } | undefined;
  const flush = (): void => {
    if (!current) return;
    if (fields.length >= maxFields) {
      truncated = true;
    } else {
      fields.push({ name: current.name, key: current.name.toLowerCase(), value: current.parts.join('').trim() });
    }
    current = undefined;
  };
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      current?.parts.push(line);
      continue;
    }
    flush();
    if (fields.length >= maxFields) {
      truncated = true;
      break;
    }
    const colon = line.indexOf(':');
    // RFC 5322 field names are printable ASCII without colon or space.
    if (colon <= 0 || !/^[\x21-\x39\x3b-\x7e]+$/.test(line.slice(0, colon).trimEnd())) continue;
    current = { name: line.slice(0, colon).trimEnd(), parts: [line.slice(colon + 1)] };
  }
  flush();
  return { fields, truncated };
}

/** Values of every field named `name` (case-insensitive), in message order. */
export function headerValues(fields: HeaderField[], name: string): string[] {
  const key = name.toLowerCase();
  return fields.filter((f) => f.key === key).map((f) => f.value);
}

/** Parse only the header of a raw message. */
export function messageHeader(msg: Buffer, limits: HeaderLimits = {}): ParsedHeader {
  return parseHeaderFields(splitMessage(msg).header, limits);
}
