// The one parser of IP addresses and networks (CIDRs) for the config, the
// store, the static lists and the intel room. Strict, so one text has one
// meaning everywhere:
//
// - IPv4 is four decimal parts 0–255 without leading zeros: `010.0.0.1`
//   (octal to inet_aton, decimal to others), `10.1`, `0x0a.0.0.1` and
//   `167772161` are refused.
// - IPv6 is RFC 4291 text: one `::` at most, 1–4 hex digits per group, a
//   dotted-quad tail only in the last 32 bits; no zone id, no brackets.
// - `::ffff:a.b.c.d` (IPv4-mapped) IS the IPv4 address a.b.c.d, and
//   `::ffff:a.b.c.d/len` with len ≥ 96 is the IPv4 network /len-96 (with a
//   shorter length it stays an IPv6 network). `::a.b.c.d` (the deprecated
//   IPv4-compatible form, RFC 4291 §2.5.5.1) is the IPv6 address `::a0b:c0d`
//   as RFC 4291 writes it, never IPv4: libuv and glibc print such a client
//   that way, so a lookup must read it, and reading it as a.b.c.d would let
//   one text name two different clients.
// - A prefix length is decimal without leading zeros, ≤ 32 / ≤ 128.
//
// The parse itself is allocation-free for IPv4 (ipaddr.js builds objects per
// call, and accepts `010.0.0.1`, `10.1` and `0xa.0.0.1` in its lax entry
// points): the store's lookups call it millions of times a second.

import { formatIp6Groups, formatV4, parseV4 } from './ip.js';

/** A parsed network: host bits cleared, IPv4-mapped IPv6 turned into IPv4. */
export type Network = { v6: false; addr: number; len: number } | { v6: true; words: Uint32Array; len: number };

/** A network as the text said it, or why the text is not one (`why` does not repeat the text). */
export type NetworkReading = { ok: true; net: Network; hostBitsSet: boolean } | { ok: false; why: string };

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groups = new Uint16Array(8);

/**
 * IPv6 text → four big-endian 32-bit words in `out`; false when `s` is not an
 * IPv6 address. Accepts `::` compression and a dotted-quad tail; a `%zone`
 * suffix is ignored (sockets report link-local clients with one), networks
 * refuse it (parseNetwork).
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

/** The words of `w` with only the first `len` bits kept; true when a bit was cleared. */
function maskWords(w: Uint32Array, len: number): boolean {
  let cleared = false;
  for (let k = 0; k < 4; k++) {
    const keep = Math.min(32, Math.max(0, len - 32 * k));
    const m = maskV4(w[k], keep);
    if (m !== w[k]) cleared = true;
    w[k] = m;
  }
  return cleared;
}

const PREFIX_LEN = /^(?:0|[1-9][0-9]{0,2})$/;

/** Why `host` (the part before any `/`) is not an address: names the odd forms people write. */
function whyNotAnAddress(host: string): string {
  if (host === '') return 'no address';
  if (/\s/.test(host)) return 'white space in the address';
  if (/^\[.*\]$/.test(host)) return 'write the address without brackets';
  if (host.includes('%')) return 'zone ids (%…) are not allowed';
  if (/^[0-9.]+$/.test(host)) {
    const parts = host.split('.');
    if (parts.length < 4) return 'a short form: write all four parts of an IPv4 address';
    if (parts.length > 4) return 'more than four parts';
    const zero = parts.find((p) => /^0[0-9]/.test(p));
    if (zero) return `leading zero in "${zero}" (octal to some programs, decimal to others)`;
    return 'each part of an IPv4 address is 0–255';
  }
  if (/^0x/i.test(host) || /\.0x/i.test(host)) return 'hexadecimal IPv4 parts are not allowed';
  if (host.includes(':') && host.includes('.')) return 'the IPv4 tail of an IPv6 address must be a strict dotted quad in its last 32 bits';
  return 'not an IP address';
}

/** Read "ip" or "ip/len"; the network has its host bits cleared, and says whether any were set. */
export function readNetwork(text: string): NetworkReading {
  const slash = text.indexOf('/');
  const host = slash < 0 ? text : text.slice(0, slash);
  let len = -1;
  if (slash >= 0) {
    const lt = text.slice(slash + 1);
    if (!PREFIX_LEN.test(lt)) return { ok: false, why: `bad prefix length ${JSON.stringify(lt)}` };
    len = Number(lt);
  }
  const a = parseV4(host);
  if (a >= 0) {
    if (len > 32) return { ok: false, why: `prefix length /${len} is longer than 32 (IPv4)` };
    const l = len < 0 ? 32 : len;
    const addr = maskV4(a, l);
    return { ok: true, net: { v6: false, addr, len: l }, hostBitsSet: addr !== a };
  }
  const words = new Uint32Array(4);
  if (host.includes('%') || !host.includes(':') || !parseV6(host, words)) return { ok: false, why: whyNotAnAddress(host) };
  if (len > 128) return { ok: false, why: `prefix length /${len} is longer than 128 (IPv6)` };
  const l = len < 0 ? 128 : len;
  if (isMappedV4(words) && l >= 96) {
    const addr = maskV4(words[3], l - 96);
    return { ok: true, net: { v6: false, addr, len: l - 96 }, hostBitsSet: addr !== words[3] };
  }
  const cleared = maskWords(words, l);
  return { ok: true, net: { v6: true, words, len: l }, hostBitsSet: cleared };
}

/**
 * Parse "ip" or "ip/len" into a canonical network, or undefined when it is
 * not one. Host bits are cleared ("192.0.2.9/24" is 192.0.2.0/24), as SPF
 * (`ip4:192.0.2.9/24`) and published lists mean them.
 */
export function parseNetwork(text: string): Network | undefined {
  const r = readNetwork(text);
  return r.ok ? r.net : undefined;
}

/**
 * What a person typed (config, `ban add`, `list add`): the network, or why
 * it is refused. Host bits set are refused, naming the network meant
 * ("host bits set: the network is 0.0.0.0/1" for 10.0.0.0/1): silently
 * changing what was typed is how a ban of one /1 becomes another.
 */
export function readExactNetwork(text: string): { ok: true; net: Network } | { ok: false; why: string } {
  const r = readNetwork(text);
  if (!r.ok) return r;
  if (r.hostBitsSet) return { ok: false, why: `host bits set: the network is ${formatNetwork(r.net)}` };
  return { ok: true, net: r.net };
}

export function formatNetwork(n: Network): string {
  return n.v6 ? `${formatV6(n.words)}/${n.len}` : `${formatV4(n.addr)}/${n.len}`;
}

/** Text of the network's address alone (no length). */
export function formatNetworkAddress(n: Network): string {
  return n.v6 ? formatV6(n.words) : formatV4(n.addr);
}

/** The network of `n`'s address with a shorter (or equal) prefix length. */
export function widen(n: Network, len: number): Network {
  if (!n.v6) return { v6: false, addr: maskV4(n.addr, len), len };
  const words = Uint32Array.from(n.words);
  maskWords(words, len);
  return { v6: true, words, len };
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

/** The first network of `nets` containing the address `ip` (text), or undefined (also when `ip` is no address). */
export function firstContaining(nets: readonly Network[], ip: string): Network | undefined {
  if (nets.length === 0) return undefined;
  // A plain IPv4 address (most clients) is read without building a Network (readNetwork allocates two objects).
  const a = parseV4(ip);
  if (a >= 0) {
    for (let i = 0; i < nets.length; i++) {
      const net = nets[i];
      if (!net.v6 && maskV4(a, net.len) === net.addr) return net;
    }
    return undefined;
  }
  // IPv6 read into scratch words, as readNetwork reads an address (no zone id, no prefix; `::ffff:a.b.c.d` is IPv4).
  if (ip.includes('/') || ip.includes('%') || !ip.includes(':') || !parseV6(ip, scratchWords)) return undefined;
  const mapped = isMappedV4(scratchWords);
  for (let i = 0; i < nets.length; i++) {
    const net = nets[i];
    if (mapped) {
      if (!net.v6 && maskV4(scratchWords[3], net.len) === net.addr) return net;
    } else if (net.v6 && wordsIn(net, scratchWords)) return net;
  }
  return undefined;
}

const scratchWords = new Uint32Array(4);

/** True when the IPv6 address `w` lies in `net`. */
function wordsIn(net: Extract<Network, { v6: true }>, w: Uint32Array): boolean {
  for (let k = 0; k < 4; k++) {
    const keep = Math.min(32, Math.max(0, net.len - 32 * k));
    if (maskV4(w[k], keep) !== net.words[k]) return false;
  }
  return true;
}

/** The network as [family, first address as an integer] (for exact arithmetic on ranges). */
export function networkBigInt(n: Network): bigint {
  if (!n.v6) return BigInt(n.addr);
  let v = 0n;
  for (let k = 0; k < 4; k++) v = (v << 32n) | BigInt(n.words[k]);
  return v;
}
