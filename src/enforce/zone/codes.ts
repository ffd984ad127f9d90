// The A record a listing answers with (127.0.0.N, RFC 5782 §2.1: the last
// octet says why) and its TXT text. The codes are part of the interface
// admins write filters against (postscreen_dnsbl_sites bl=127.0.0.[2;3]),
// so they are fixed here and documented in docs/enforce.md; never renumber.

/** Block zone: a ban's category → the last octet. Log watching bans with its scenario's category. */
export const BAN_CODES: Readonly<Record<string, number>> = {
  'brute-force': 2,
  spamtrap: 3,
  manual: 4,
  probe: 5,
  'address-guessing': 6,
  dnsbl: 7,
  policy: 8,
};
/** A ban of any other category. */
export const OTHER_BAN_CODE = 9;
/** An entry of one of the lists in zone.bl_lists. */
export const BL_LIST_CODE = 10;

/** Allow zone: the allow list, the SPF-walked big senders, the learned correspondents, any other list in zone.wl_lists. */
export const WL_CODES = { allow: 2, spfWalked: 3, correspondents: 4, other: 5 } as const;

/** RFC 5782 §5: the test point every DNSxL lists (127.0.0.2, ::FFFF:7F00:2) answers 127.0.0.2. */
export const TEST_POINT_CODE = 2;

export function banCode(category: string): number {
  return BAN_CODES[category] ?? OTHER_BAN_CODE;
}

/** At most one TXT string (255 octets), printable ASCII: a reason may carry text from a log line. */
export function txtText(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]+/g, '?');
  return clean.length <= 255 ? clean : `${clean.slice(0, 252)}...`;
}

/** "until 2026-12-07T16:00:00Z", or "no expiry". */
export function untilText(expiresAt: number): string {
  return Number.isFinite(expiresAt) ? `until ${new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}` : 'no expiry';
}
