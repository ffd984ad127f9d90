// The text a reader of a message sees, for content rules: RFC 2047 encoded
// words in headers decoded, and the text/* parts of the body with their
// transfer encoding (base64, quoted-printable) and charset undone. A small
// walk of our own rather than libmime/mailsplit: libmime is only present as
// mailauth's dependency (not ours to import) and has no types, and the walk
// needs hard limits (parts, depth, bytes) that a general parser would not give.

import { parseHeaderValue } from 'nodemailer/lib/mime-funcs';
import { parseHeaderFields, splitMessage, type HeaderField } from './message.js';

export interface TextLimits {
  /** Characters of decoded body text produced at most (default 1 MiB). */
  maxTextChars?: number;
  /** MIME parts visited at most (default 200). */
  maxParts?: number;
  /** Nesting depth of multiparts and attached messages (default 10). */
  maxDepth?: number;
}

export const DEFAULT_MAX_TEXT_CHARS = 1024 * 1024;
const DEFAULT_MAX_PARTS = 200;
const DEFAULT_MAX_DEPTH = 10;

/** Decode bytes in a charset; unknown charsets fall back to UTF-8 (with replacement characters), never throw. */
export function decodeCharset(bytes: Uint8Array, charset: string | undefined): string {
  const label = (charset ?? 'utf-8').trim().toLowerCase();
  // us-ascii text with 8-bit bytes in it is nearly always UTF-8 in practice.
  const effective = label === 'us-ascii' || label === 'ascii' || label === '' ? 'utf-8' : label;
  try {
    return new TextDecoder(effective).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/** Quoted-printable (RFC 2045 §6.7) to bytes; malformed escapes are kept as they are. */
export function decodeQuotedPrintable(text: string): Buffer {
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d /* = */) {
      const next = text.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(next)) {
        out[n++] = parseInt(next, 16);
        i += 2;
        continue;
      }
      // soft line break: `=` then optional whitespace then CRLF or LF
      const soft = /^[ \t]*\r?\n/.exec(text.slice(i + 1, i + 80));
      if (soft) {
        i += soft[0].length;
        continue;
      }
    }
    out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

/** Base64 to bytes, ignoring line breaks and anything outside the alphabet. */
export function decodeBase64(text: string): Buffer {
  return Buffer.from(text.replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

/** RFC 2047 encoded words decoded; whitespace between two adjacent encoded words dropped. */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let pending: { charset: string; bytes: Buffer[] } | undefined;
  const flush = (): void => {
    if (pending) out += decodeCharset(Buffer.concat(pending.bytes), pending.charset);
    pending = undefined;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const start = m.index ?? 0;
    const between = value.slice(last, start);
    const charset = m[1].split('*')[0].toLowerCase(); // RFC 2231 language suffix
    const bytes = m[2].toLowerCase() === 'b' ? decodeBase64(m[3]) : decodeQuotedPrintable(m[3].replace(/_/g, ' '));
    if (pending && /^[ \t\r\n]*$/.test(between) && pending.charset === charset) {
      // adjacent words of one charset: join bytes first, so a character split across words survives
      pending.bytes.push(bytes);
    } else {
      flush();
      if (!/^[ \t\r\n]*$/.test(between) || last === 0) out += between;
      pending = { charset, bytes: [bytes] };
    }
    last = start + m[0].length;
  }
  flush();
  return out + value.slice(last);
}

interface Part {
  fields: HeaderField[];
  body: string; // latin1: one char per byte, so slicing never splits a byte
}

function field(fields: HeaderField[], key: string): string | undefined {
  return fields.find((f) => f.key === key)?.value;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Bodies of a multipart's parts (the preamble and epilogue are not parts). */
function splitMultipart(body: string, boundary: string, maxParts: number): string[] {
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${escapeRegExp(boundary)}(--)?[ \\t]*(?=\\r?\\n|$)`, 'g');
  const parts: string[] = [];
  let start = -1;
  for (const m of body.matchAll(delimiter)) {
    const at = m.index ?? 0;
    if (start >= 0) parts.push(body.slice(start, at));
    if (m[1] || parts.length >= maxParts) return parts;
    // the part starts after the delimiter line's line break
    const lineEnd = body.indexOf('\n', at + m[0].length);
    start = lineEnd < 0 ? body.length : lineEnd + 1;
  }
  if (start >= 0 && start < body.length) parts.push(body.slice(start)); // no closing delimiter
  return parts;
}

function parsePart(raw: string): Part {
  const { header, body } = splitMessage(Buffer.from(raw, 'latin1'));
  return { fields: parseHeaderFields(header.toString('latin1'), { maxFields: 100 }).fields, body: body.toString('latin1') };
}

export interface BodyText {
  text: string;
  /** True when text, parts or depth beyond the limits were left out. */
  truncated: boolean;
  /** Text parts decoded. */
  parts: number;
}

/**
 * The decoded text of a message's text/* parts that are not attachments,
 * joined by newlines. A message without Content-Type is text/plain.
 */
export function bodyText(message: Buffer, limits: TextLimits = {}): BodyText {
  const maxChars = limits.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS;
  const maxParts = limits.maxParts ?? DEFAULT_MAX_PARTS;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  const { header, body } = splitMessage(message);
  const top: Part = { fields: parseHeaderFields(header).fields, body: body.toString('latin1') };
  const texts: string[] = [];
  let chars = 0;
  let visited = 0;
  let truncated = false;

  const walk = (part: Part, depth: number, defaultType: string): void => {
    if (++visited > maxParts || depth > maxDepth) {
      truncated = true;
      return;
    }
    if (chars >= maxChars) {
      truncated = true;
      return;
    }
    const ct = parseHeaderValue(field(part.fields, 'content-type') ?? defaultType);
    const type = ct.value.toLowerCase().trim() || defaultType;
    if (type.startsWith('multipart/')) {
      const boundary = ct.params.boundary;
      if (!boundary) return;
      const childType = type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
      for (const raw of splitMultipart(part.body, boundary, maxParts)) walk(parsePart(raw), depth + 1, childType);
      return;
    }
    const encoding = (field(part.fields, 'content-transfer-encoding') ?? '7bit').toLowerCase().trim();
    if (type === 'message/rfc822') {
      const inner = encoding === 'base64' ? decodeBase64(part.body).toString('latin1') : encoding === 'quoted-printable' ? decodeQuotedPrintable(part.body).toString('latin1') : part.body;
      walk(parsePart(inner), depth + 1, 'text/plain');
      return;
    }
    if (!type.startsWith('text/')) return;
    const disposition = parseHeaderValue(field(part.fields, 'content-disposition') ?? 'inline').value.toLowerCase();
    if (disposition === 'attachment') return;
    // Decode no more of the part than can still fit (base64 is 4 chars per 3 bytes; QP at worst 3 per byte).
    const room = maxChars - chars;
    const rawCap = encoding === 'base64' ? Math.ceil((room * 4) / 3) + 4 : encoding === 'quoted-printable' ? room * 3 + 3 : room * 4;
    const raw = part.body.length > rawCap ? part.body.slice(0, rawCap) : part.body;
    const bytes = encoding === 'base64' ? decodeBase64(raw) : encoding === 'quoted-printable' ? decodeQuotedPrintable(raw) : Buffer.from(raw, 'latin1');
    let text = decodeCharset(bytes, ct.params.charset);
    if (text.length > room || raw.length < part.body.length) {
      truncated = true;
      text = text.slice(0, room);
    }
    texts.push(text);
    chars += text.length;
  };

  walk(top, 0, 'text/plain');
  return { text: texts.join('\n'), truncated, parts: texts.length };
}
