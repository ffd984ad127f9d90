// From a Verdict to the `action=` a Postfix policy server answers.
//
// Postfix takes one action per reply: `NNN text` (4xx = defer, 5xx = reject),
// OK, DUNNO, DEFER_IF_PERMIT, PREPEND header, … So a verdict that carries
// headers can add only one of them per reply; the server picks which.

import type { Verdict } from '../core/types.js';
import { sanitizeText } from '../core/reply-text.js';

export interface ReplyOptions {
  /** What `accept` says: DUNNO lets later restrictions (reject_unauth_destination…) still run; OK ends them. */
  acceptReply: 'DUNNO' | 'OK';
  /** A fault (evaluation error, timeout, malformed request): defer the client, or let Postfix carry on. */
  onFault: 'defer' | 'dunno';
}

/** A header is one unfolded line; RFC 5322 caps a line at 998 characters. */
export const MAX_HEADER_LINE = 998;

const DEFAULT_REJECT = { code: 554, status: '5.7.1', text: 'Rejected by policy' };
const DEFAULT_DEFER = { code: 450, status: '4.7.1', text: 'Try again later' };
const FAULT = { code: 451, status: '4.3.0', text: 'Temporary policy service failure, try again later' };

/**
 * The action for a verdict. `header` is the one header this reply may
 * prepend; it is used only where the reply would otherwise be DUNNO
 * (accept with accept_reply DUNNO, tag, continue).
 */
export function actionFor(verdict: Verdict, opts: ReplyOptions, header?: [string, string]): string {
  switch (verdict.action) {
    case 'reject':
      return smtpReply(verdict, DEFAULT_REJECT, false);
    case 'defer':
    case 'tarpit':
      return smtpReply(verdict, DEFAULT_DEFER, true);
    case 'accept':
      if (opts.acceptReply === 'OK') return 'OK';
      return header ? prependAction(header) : 'DUNNO';
    case 'tag':
    case 'continue':
      return header ? prependAction(header) : 'DUNNO';
  }
}

/** Whether a reply for this verdict can carry a PREPEND (see actionFor). */
export function canPrepend(verdict: Verdict, opts: ReplyOptions): boolean {
  if (verdict.action === 'accept') return opts.acceptReply === 'DUNNO';
  return verdict.action === 'tag' || verdict.action === 'continue';
}

/**
 * Postfix takes one PREPEND per reply, so each header of a message goes out
 * once: Authentication-Results on the first reply that can carry it, the
 * others on later replies (further recipients, DATA) if there are any.
 * `prepended` holds the lower-cased names already sent and is updated.
 */
export function headerToPrepend(verdict: Verdict, opts: ReplyOptions, prepended: Set<string>): [string, string] | undefined {
  if (verdict.headers.length === 0 || !canPrepend(verdict, opts)) return undefined;
  const fresh = verdict.headers.filter(([name]) => !prepended.has(name.toLowerCase()));
  const pick = fresh.find(([name]) => name.toLowerCase() === 'authentication-results') ?? fresh[0];
  if (pick) prepended.add(pick[0].toLowerCase());
  return pick;
}

/** A fault is a 4xx (or DUNNO, as configured), never a 5xx. */
export function faultAction(opts: ReplyOptions, text?: string): string {
  if (opts.onFault === 'dunno') return 'DUNNO';
  return `${FAULT.code} ${FAULT.status} ${sanitizeText(text ?? FAULT.text)}`;
}

/** The answer to a request we could not read (malformed or oversized). */
export function invalidRequestAction(opts: ReplyOptions): string {
  return opts.onFault === 'dunno' ? 'DUNNO' : 'DEFER_IF_PERMIT Service temporarily unavailable';
}

export function prependAction([name, value]: [string, string]): string {
  const n = name.replace(/[^\x21-\x39\x3b-\x7e]/g, '');
  const line = `${n}: ${sanitizeText(value, MAX_HEADER_LINE)}`;
  return `PREPEND ${line.length <= MAX_HEADER_LINE ? line : line.slice(0, MAX_HEADER_LINE)}`;
}

function smtpReply(verdict: Verdict, fallback: { code: number; status: string; text: string }, temporary: boolean): string {
  let code = validCode(verdict.code) ?? fallback.code;
  let status = validStatus(verdict.status) ?? fallback.status;
  // A defer must stay temporary whatever the rule said; a reject may be 4xx (then Postfix defers).
  if (temporary && code >= 500) code -= 100;
  if (Math.floor(code / 100) !== Number(status[0])) status = `${Math.floor(code / 100)}${status.slice(1)}`;
  const text = sanitizeText(verdict.text ?? fallback.text) || fallback.text;
  return `${code} ${status} ${text}`;
}

function validCode(code: number | undefined): number | undefined {
  return code !== undefined && Number.isInteger(code) && code >= 400 && code <= 599 ? code : undefined;
}

function validStatus(status: string | undefined): string | undefined {
  return status !== undefined && /^[45]\.\d{1,3}\.\d{1,3}$/.test(status) ? status : undefined;
}
