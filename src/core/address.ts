// Envelope addresses, as more than one room reads them.
//
// Internationalised domains (RFC 6531 senders: `a@müller.de`) are turned into
// A-labels (UTS #46, as WHATWG URLs do: node's `domainToASCII`) before any
// syntax check, DNS question or list lookup; the U-label is only for texts a
// person reads. An ASCII name is only lower-cased: nearly every name is one.

import { domainToASCII, domainToUnicode } from 'node:url';

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * A domain in the form DNS and lists use: lower case, A-labels, no trailing
 * dot. A name that is not a valid internationalised name stays as written
 * (lower-cased), so the syntax checks refuse it.
 */
export function asciiDomain(domain: string): string {
  // One pass for both questions (any non-ASCII? any upper case?): most names need neither.
  const n = domain.length > 0 && domain.charCodeAt(domain.length - 1) === 46 ? domain.length - 1 : domain.length;
  let upper = false;
  let ascii = true;
  for (let i = 0; i < n; i++) {
    const c = domain.charCodeAt(i);
    if (c > 127) {
      ascii = false;
      break;
    }
    if (c >= 65 && c <= 90) upper = true;
  }
  const d = n === domain.length ? domain : domain.slice(0, n);
  if (ascii) return upper ? d.toLowerCase() : d;
  const a = domainToASCII(d);
  return a === '' ? d.toLowerCase() : a.replace(/\.$/, '');
}

/** The domain part of an address in A-labels (lower-cased), or undefined for the null sender / no `@`. */
export function domainOf(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const d = asciiDomain(address.slice(at + 1));
  return d === '' ? undefined : d;
}

/** The address with its domain in A-labels (the local part untouched): what SPF's %{s} and lists see. */
export function asciiAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0 || !NON_ASCII.test(address.slice(at + 1))) return address;
  return `${address.slice(0, at + 1)}${asciiDomain(address.slice(at + 1))}`;
}

/**
 * The domain of an address as a person reads it: the U-label when the sender
 * wrote the domain in Unicode, else the A-label form. An ASCII domain stays
 * ASCII even when it holds `xn--` labels: the reply goes to a client that may
 * not speak SMTPUTF8.
 */
export function displayDomainOf(address: string | undefined): string | undefined {
  const d = domainOf(address);
  if (d === undefined || !NON_ASCII.test(address as string)) return d;
  const u = domainToUnicode(d);
  return u === '' ? d : u;
}

/** The domain as a person reads it, when `written` (the address or name as received) was in Unicode. */
export function displayDomain(domain: string, written: string | undefined): string {
  if (written === undefined || !NON_ASCII.test(written)) return domain;
  const u = domainToUnicode(domain);
  return u === '' ? domain : u;
}
