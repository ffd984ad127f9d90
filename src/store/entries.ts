// What may go into a named list, in canonical form: the same text whichever
// way it was typed, so "Example.COM." and "example.com" are one entry.

import { domainToASCII } from 'node:url';
import { InvalidEntryError } from './errors.js';
import { canonicalCidr, exactNetwork, formatNetwork, parseNetwork } from './ip.js';
import { LIST_KINDS, type ListKind } from './types.js';

const LIST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

export function checkListName(name: string): string {
  if (!LIST_NAME.test(name)) {
    throw new InvalidEntryError(`bad list name ${JSON.stringify(name)}: use letters, digits, '_', '.', '-' (at most 64)`);
  }
  return name;
}

export function checkListKind(kind: string): ListKind {
  if (!(LIST_KINDS as readonly string[]).includes(kind)) throw new InvalidEntryError(`unknown list kind ${JSON.stringify(kind)} (${LIST_KINDS.join(', ')})`);
  return kind as ListKind;
}

/** Lower-case ASCII domain without trailing dot; a leading "*." or "." is dropped (an entry covers its subdomains anyway). */
export function canonicalDomain(text: string): string {
  let d = text.trim().toLowerCase().replace(/\.$/, '');
  d = d.replace(/^\*\./, '').replace(/^\./, '');
  if (/[^\x00-\x7f]/.test(d)) d = domainToASCII(d);
  const labels = d.split('.');
  if (d.length === 0 || d.length > 253 || !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1])) {
    throw new InvalidEntryError(`not a domain name: ${JSON.stringify(text)}${/^\d+$/.test(d) ? ' (write AS' + d + ' for an ASN)' : ''}`);
  }
  return d;
}

/** "AS64496" from "AS64496", "as64496" or 64496. */
export function canonicalAsn(value: string | number): string {
  const m = /^(?:as)?(\d{1,10})$/i.exec(String(value).trim());
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= 0 && n <= 0xffffffff)) throw new InvalidEntryError(`not an AS number: ${JSON.stringify(value)}`);
  return `AS${n}`;
}

/** Lower-cased whole address; angle brackets dropped. */
export function canonicalAddress(text: string): string {
  const a = text.trim().replace(/^<(.*)>$/, '$1').toLowerCase();
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1 || /\s/.test(a)) throw new InvalidEntryError(`not an e-mail address: ${JSON.stringify(text)}`);
  return `${a.slice(0, at)}@${canonicalDomain(a.slice(at + 1))}`;
}

/** Canonical text of an entry of a list of this kind; throws InvalidEntryError. `exact`: refuse an IP network with host bits set. */
export function canonicalEntry(kind: ListKind, text: string, exact = true): string {
  switch (kind) {
    case 'ip':
      // Typed by a person (list add): "192.0.2.9/24" is refused with the network it would be, not silently
      // widened. List files clear host bits, as published lists mean them (exact = false).
      return exact ? formatNetwork(exactNetwork(text)) : canonicalCidr(text);
    case 'domain':
      return canonicalDomain(text);
    case 'asn':
      return canonicalAsn(text);
    case 'address':
      return canonicalAddress(text);
  }
}

/** Guess the kind of a new list from its first entry: IP/CIDR, "AS…", something with "@", else a domain. */
export function inferKind(text: string): ListKind {
  const t = text.trim();
  if (parseNetwork(t)) return 'ip';
  if (/^as\d+$/i.test(t)) return 'asn';
  if (t.includes('@')) return 'address';
  return 'domain';
}
