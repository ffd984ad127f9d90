// Query names of a DNSxL (RFC 5782 §2.1, §2.4): an IPv4 address as its four
// octets reversed under the zone (2.0.0.127.bl.example), an IPv6 address as
// its 32 nibbles reversed (….f.f.f.f.0.0.0.0….bl.example). Read without
// allocating more than the labels, with every label checked: a malformed
// name is "not listed", never an exception.

import type { Network } from '../../core/cidr.js';

/**
 * What a name under one of our zones means:
 * - apex: the zone itself (SOA, NS);
 * - ip: a whole address, `ip` its text (IPv4 dotted, IPv6 in full hex groups);
 * - partial: a prefix of an address name (e.g. 0.127.bl.example): an empty
 *   non-terminal, answered NOERROR without records, so a resolver that
 *   minimises its question names (RFC 9156) goes on to the full name;
 * - ambiguous: four one-digit labels — an IPv4 address, and a prefix of IPv6
 *   names too: listed as IPv4, else an empty non-terminal;
 * - none: nothing can exist there (NXDOMAIN).
 */
export type NameMeaning = { kind: 'apex' } | { kind: 'ip'; ip: string } | { kind: 'ambiguous'; ip: string } | { kind: 'partial' } | { kind: 'none' };

const OCTET = /^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;
const NIBBLE = /^[0-9a-f]$/;

/** The meaning of the labels in front of a zone's apex (`labels` in query order, lower case; empty = the apex). */
export function meaningOf(labels: readonly string[]): NameMeaning {
  const n = labels.length;
  if (n === 0) return { kind: 'apex' };
  if (n <= 4 && labels.every((l) => OCTET.test(l))) {
    if (n < 4) return { kind: 'partial' };
    const ip = `${labels[3]}.${labels[2]}.${labels[1]}.${labels[0]}`;
    return labels.every((l) => l.length === 1) ? { kind: 'ambiguous', ip } : { kind: 'ip', ip };
  }
  if (n > 32 || !labels.every((l) => NIBBLE.test(l))) return { kind: 'none' };
  if (n < 32) return { kind: 'partial' };
  let ip = '';
  for (let i = 31; i >= 0; i--) {
    ip += labels[i];
    if (i % 4 === 0 && i > 0) ip += ':';
  }
  return { kind: 'ip', ip };
}

/** The labels of the zone the name falls in: `{zone, labels}` with labels before the apex, or undefined when in neither zone. */
export function splitName<Z extends string>(name: string, zones: ReadonlyArray<{ id: Z; apex: string }>): { id: Z; labels: string[] } | undefined {
  let q = name.toLowerCase();
  if (q.endsWith('.')) q = q.slice(0, -1);
  for (const z of zones) {
    if (q === z.apex) return { id: z.id, labels: [] };
    if (q.length > z.apex.length && q.endsWith(z.apex) && q.charCodeAt(q.length - z.apex.length - 1) === 46) {
      return { id: z.id, labels: q.slice(0, q.length - z.apex.length - 1).split('.') };
    }
  }
  return undefined;
}

/**
 * The query names of a network, for zone files that cannot hold a prefix
 * (BIND): a host as its full name; a shorter prefix as the wildcards of the
 * octet (IPv4) or nibble (IPv6) boundary at or below it — a /20 becomes 16
 * `*.N.M.L` names. Returns names relative to the apex, or undefined when
 * that takes more than `max` names.
 */
export function namesOfNetwork(net: Network, max = 256): string[] | undefined {
  const step = net.v6 ? 4 : 8;
  const width = net.v6 ? 128 : 32;
  const full = net.len === width;
  const boundary = full ? width : Math.ceil(net.len / step) * step;
  const count = 2 ** (boundary - net.len);
  if (count > max) return undefined;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const labels = labelsOf(net, boundary, i);
    out.push(full ? labels.join('.') : ['*', ...labels].join('.'));
  }
  return out;
}

/** The reversed labels of the first `bits` bits of the network's address with `extra` added at bit `bits`. */
function labelsOf(net: Network, bits: number, extra: number): string[] {
  if (!net.v6) {
    const a = (net.addr + extra * 2 ** (32 - bits)) >>> 0;
    const octets = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].slice(0, bits / 8);
    return octets.reverse().map(String);
  }
  const nibbles: number[] = [];
  for (const w of net.words) for (let s = 28; s >= 0; s -= 4) nibbles.push((w >>> s) & 15);
  // Add `extra` at the last kept nibble (the count never exceeds the nibbles between len and boundary).
  let carry = extra;
  for (let i = bits / 4 - 1; i >= 0 && carry > 0; i--) {
    const v = nibbles[i] + carry;
    nibbles[i] = v & 15;
    carry = v >>> 4;
  }
  return nibbles
    .slice(0, bits / 4)
    .reverse()
    .map((x) => x.toString(16));
}
