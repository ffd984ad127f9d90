// Allocation-free IP parsing for the lookup hot path (ipaddr.js builds objects
// per call; at millions of lookups a second that is the bottleneck), and the
// canonical text form of a CIDR that the store uses as a key.

import { formatIp6Groups, formatV4, parseV4 } from '../core/ip.js';
import { InvalidEntryError } from './errors.js';

// Shared with other rooms; re-exported for the store's callers that name them here.
export { formatV4, parseV4 };

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groups = new Uint16Array(8);

/**
 * IPv6 text → four big-endian 32-bit words in `out`; false when `s` is not an
 * IPv6 address. Accepts `::` compression, an embedded IPv4 tail and a `%zone`
 * suffix (ignored).
 */
export function parseV6(s: string, out: Uint32Array): boolean {
  let n = s.length;
  const pct = s.indexOf('%');
  if (pct >= 0) n = pct;
  if (n < 2 || n > 45) return false;
  let i = 0;
  let count = 0;
  let gap = -1;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let v = 0;
    let d = 0;
    while (i < n) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      v = v * 16 + h;
      i++;
      d++;
    }
    if (i < n && s.charCodeAt(i) === 46) {
      if (count > 6) return false;
      const v4 = parseV4(s, start, n);
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = n;
      break;
    }
    if (d === 0 || d > 4 || count === 8) return false;
    groups[count++] = v;
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    } else if (i === n) return false;
  }
  if (gap >= 0) {
    if (count > 7) return false;
    const tail = count - gap;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k];
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  } else if (count !== 8) return false;
  for (let w = 0; w < 4; w++) out[w] = ((groups[2 * w] << 16) | groups[2 * w + 1]) >>> 0;
  return true;
}

/** True when the words are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isMappedV4(w: Uint32Array): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
}

/** Keep the first `len` bits of a 32-bit word. */
export function maskV4(a: number, len: number): number {
  return len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
}

/** RFC 5952 text of four IPv6 words (lower case, longest zero run of ≥ 2 groups compressed). */
export function formatV6(w: Uint32Array | number[]): string {
  const g: number[] = [];
  for (let k = 0; k < 4; k++) g.push(w[k] >>> 16, w[k] & 0xffff);
  return formatIp6Groups(g);
}

/** A parsed, canonical network: host bits cleared, mapped IPv4 turned into IPv4. */
export type Network =
  | { v6: false; addr: number; len: number }
  | { v6: true; words: Uint32Array; len: number };

function maskWords(w: Uint32Array, len: number): void {
  for (let k = 0; k < 4; k++) {
    const keep = Math.min(32, Math.max(0, len - 32 * k));
    w[k] = maskV4(w[k], keep);
  }
}

/**
 * Parse "ip" or "ip/len" (IPv4 or IPv6) into a canonical network, or
 * undefined when it is not one. Host bits are cleared ("192.0.2.9/24" is
 * 192.0.2.0/24); `::ffff:a.b.c.d` with a length ≥ 96 becomes IPv4.
 */
export function parseNetwork(text: string): Network | undefined {
  const s = text.trim();
  const slash = s.indexOf('/');
  const host = slash < 0 ? s : s.slice(0, slash);
  let len = -1;
  if (slash >= 0) {
    const lt = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lt)) return undefined;
    len = Number(lt);
  }
  const a = parseV4(host);
  if (a >= 0) {
    if (len > 32) return undefined;
    const l = len < 0 ? 32 : len;
    return { v6: false, addr: maskV4(a, l), len: l };
  }
  const words = new Uint32Array(4);
  if (host.includes('%') || !parseV6(host, words)) return undefined;
  if (len > 128) return undefined;
  const l = len < 0 ? 128 : len;
  if (isMappedV4(words) && l >= 96) return { v6: false, addr: maskV4(words[3], l - 96), len: l - 96 };
  maskWords(words, l);
  return { v6: true, words, len: l };
}

export function formatNetwork(n: Network): string {
  return n.v6 ? `${formatV6(n.words)}/${n.len}` : `${formatV4(n.addr)}/${n.len}`;
}

/** Canonical "addr/len" text of an IP or CIDR; throws InvalidEntryError on anything else. */
export function canonicalCidr(text: string): string {
  const n = parseNetwork(text);
  if (!n) throw new InvalidEntryError(`not an IP address or CIDR: ${JSON.stringify(text)}`);
  return formatNetwork(n);
}

/** Canonical text of a single IP address (no length); throws InvalidEntryError otherwise. */
export function canonicalIp(text: string): string {
  const n = parseNetwork(text);
  if (!n || text.includes('/')) throw new InvalidEntryError(`not an IP address: ${JSON.stringify(text)}`);
  return n.v6 ? formatV6(n.words) : formatV4(n.addr);
}

/** The subnet of `ip` with the given prefix lengths, as "addr/len" (e.g. 192.0.2.0/24). */
export function subnetOf(ip: string, v4Len: number, v6Len: number): string {
  const n = parseNetwork(ip);
  if (!n || ip.includes('/')) throw new InvalidEntryError(`not an IP address: ${JSON.stringify(ip)}`);
  if (!n.v6) return formatNetwork({ v6: false, addr: maskV4(n.addr, v4Len), len: v4Len });
  maskWords(n.words, v6Len);
  return formatNetwork({ v6: true, words: n.words, len: v6Len });
}

/** True when network `outer` contains address or network `inner`. */
export function networkContains(outer: Network, inner: Network): boolean {
  if (outer.v6 !== inner.v6 || outer.len > inner.len) return false;
  if (!outer.v6 && !inner.v6) return maskV4(inner.addr, outer.len) === outer.addr;
  if (outer.v6 && inner.v6) {
    for (let k = 0; k < 4; k++) {
      const keep = Math.min(32, Math.max(0, outer.len - 32 * k));
      if (maskV4(inner.words[k], keep) !== outer.words[k]) return false;
    }
    return true;
  }
  return false;
}
