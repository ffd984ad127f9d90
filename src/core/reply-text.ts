// Text we put in an SMTP reply (the policy server's action text, the gate's
// and the milter's replies): one line, printable, bounded.

/** Longest reply text we send: a reply line is at most 512 octets with its code (RFC 5321 §4.5.3.1.5). */
export const MAX_TEXT = 450;

const NEEDS_CLEANING = /[\x00-\x1f\x7f]| {2}/;

/** Control characters (CR, LF, NUL…) become spaces; runs of space shrink; long text is cut. */
export function sanitizeText(text: string, max = MAX_TEXT): string {
  // The common case, already clean: no control characters, no runs of spaces, nothing to trim.
  if (text.length <= max && !NEEDS_CLEANING.test(text) && text.trim().length === text.length) return text;
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  return clean.length <= max ? clean : `${clean.slice(0, max - 3)}...`;
}
