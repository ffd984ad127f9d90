// Organisational domains: the registrable domain under the Public Suffix List,
// ICANN section only, so `mail.example.co.uk` and `example.co.uk` count as one
// organisation. The private section (blogspot.com, amazonaws.com, …) is left
// out, as most DMARC implementations do; the price is that customers of such a
// provider share its organisational domain (`a.blogspot.com` ~ `b.blogspot.com`).

import { getDomain } from 'tldts';
import { normaliseName } from './hostname.js';

/** The organisational domain of `name`, or undefined for a public suffix, an IP or an invalid name. */
export function orgDomain(name: string): string | undefined {
  const n = normaliseName(name);
  if (n === '') return undefined;
  return getDomain(n, { allowPrivateDomains: false }) ?? undefined;
}

/** Both names have an organisational domain and it is the same one. */
export function sameOrgDomain(a: string, b: string): boolean {
  const oa = orgDomain(a);
  return oa !== undefined && oa === orgDomain(b);
}

/** `name` is `domain` or a name below it (case-insensitive, trailing dots ignored). */
export function isSubdomainOf(name: string, domain: string): boolean {
  const n = normaliseName(name);
  const d = normaliseName(domain);
  if (d === '') return false;
  return n === d || n.endsWith(`.${d}`);
}
