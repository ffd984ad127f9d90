// Pure IP helpers shared by several rooms: parsed addresses, memoised (the
// same client and DNS-answer addresses come back decision after decision, and
// parsing them with ipaddr.js each time was a measurable share of a warm-cache
// policy decision); the strict literal forms of RFC 7208 (no leading zeros);
// allocation-free IPv4 ↔ number; RFC 5952 IPv6 text.

import ipaddr from 'ipaddr.js';
import { memoiseString } from './lru.js';

const MEMO_ENTRIES = 10_000;

/**
 * `ipaddr.process(text)` (IPv4-mapped IPv6 comes back as IPv4), shared
 * between callers: treat the result as read-only. Throws on garbage (not memoised).
 */
export const parseIpAddress: (text: string) => ipaddr.IPv4 | ipaddr.IPv6 = memoiseString((text: string) => ipaddr.process(text), MEMO_ENTRIES);

// qnum = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT / "25" %x30-35: no leading zeros (RFC 7208 §7.1).
const QNUM = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const STRICT_IP4 = new RegExp(`^${QNUM}\\.${QNUM}\\.${QNUM}\\.${QNUM}$`);
const IP6_CHARS = /^[0-9a-f:.]+$/i;

/** Is `text` a strict dotted quad (no leading zeros)? Such text is already canonical. */
export function isStrictIp4(text: string): boolean {
  return STRICT_IP4.test(text);
}

/** A strict dotted quad (no leading zeros, no hex or octal), or undefined. */
export function parseIp4(text: string): ipaddr.IPv4 | undefined {
  return STRICT_IP4.test(text) ? ipaddr.IPv4.parse(text) : undefined;
}

/** An IPv6 address in RFC 4291 text form (no zone id), or undefined. */
export function parseIp6(text: string): ipaddr.IPv6 | undefined {
  if (!IP6_CHARS.test(text) || !text.includes(':')) return undefined;
  let t = text;
  // ipaddr.js reads `::1.2.3.4` as `::ffff:1.2.3.4`; spell a trailing dotted quad as two hex groups instead.
  const dot = t.lastIndexOf(':');
  const tail = t.slice(dot + 1);
  if (tail.includes('.')) {
    const v4 = parseIp4(tail);
    if (!v4) return undefined;
    const [a, b, c, d] = v4.octets;
    t = `${t.slice(0, dot + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  return ipaddr.IPv6.isValid(t) ? ipaddr.IPv6.parse(t) : undefined;
}

/** RFC 5952 text of eight 16-bit groups: lower case, no leading zeros, the longest run of two or more zero groups as `::`. */
export function formatIp6Groups(groups: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * Dotted-quad IPv4 text (of `s` from `from` to `to`) → unsigned 32-bit number,
 * or -1 when it is not one. Allocation-free, for lookup hot paths. A part
 * with a leading zero (`010`) is refused: inet_aton reads it as octal, most
 * other programs as decimal (src/core/cidr.ts).
 */
export function parseV4(s: string, from = 0, to = s.length): number {
  const n = to - from;
  if (n < 7 || n > 15) return -1;
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      acc = acc * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return acc * 256 + part;
}

/** Dotted-quad text of an unsigned 32-bit number. */
export function formatV4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** `[addr]` and `IPv6:addr` (as SMTP address literals and some logs write them) → the address text; anything else unchanged. */
export function unwrapIpText(text: string): string {
  // Nearly every text is a bare address (a client IP): no regex pass for it.
  const c = text.charCodeAt(0);
  if (c !== 91 && c !== 73 && c !== 105 && text.charCodeAt(text.length - 1) !== 93) return text;
  return text.replace(/^\[|\]$/g, '').replace(/^ipv6:/i, '');
}

/** Is `text` a loopback address (127/8, ::1, or IPv4-mapped 127/8)? Anything unparsable is not. */
export function isLoopbackAddress(text: string): boolean {
  try {
    return ipaddr.process(text).range() === 'loopback';
  } catch {
    return false;
  }
}
