// Envelope addresses, as more than one room reads them.

/** The domain part of an address (lower-cased), or undefined for the null sender / no `@`. */
export function domainOf(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const d = address.slice(at + 1).replace(/\.$/, '').toLowerCase();
  return d === '' ? undefined : d;
}
