// From a Postfix policy request to our Stage and Envelope.

import type { Envelope, Stage } from '../core/types.js';
import { normaliseIp } from '../dns/reverse.js';
import type { PolicyAttributes } from './protocol.js';

/**
 * Postfix `protocol_state` → our Stage. VRFY and ETRN carry no mail
 * transaction, so only client-level rules (connect stage) apply to them.
 */
const STAGE_OF_STATE: Record<string, Stage> = {
  CONNECT: 'connect',
  EHLO: 'helo',
  HELO: 'helo',
  MAIL: 'mail',
  RCPT: 'rcpt',
  DATA: 'data',
  'END-OF-MESSAGE': 'eom',
  BDAT: 'data',
  VRFY: 'connect',
  ETRN: 'connect',
};

export function stageOf(protocolState: string | undefined): Stage | undefined {
  return protocolState === undefined ? undefined : STAGE_OF_STATE[protocolState.toUpperCase()];
}

/** Dotted-quad IPv4 without leading zeros: already in normal form (the common case, skips a parse). */
const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Stages at which Postfix has seen MAIL FROM, so an empty `sender` means the null sender. */
const HAS_SENDER = new Set<Stage>(['mail', 'rcpt', 'data', 'eom']);

export type RequestMapping =
  | { ok: true; stage: Stage; envelope: Envelope }
  /** `skip`: nothing to decide (answer DUNNO); `invalid`: not a request Postfix would send. */
  | { ok: false; kind: 'skip' | 'invalid'; reason: string };

/**
 * Build the Envelope of one request. `rcptsSoFar` are the recipients already
 * seen in this transaction; the request's own recipient is appended.
 */
export function envelopeOf(attrs: PolicyAttributes, rcptsSoFar: readonly string[] = []): RequestMapping {
  if (attrs.request !== 'smtpd_access_policy') {
    return { ok: false, kind: 'invalid', reason: `request=${attrs.request ?? '(missing)'} is not smtpd_access_policy` };
  }
  const state = attrs.protocol_state;
  const stage = stageOf(state);
  if (!stage) return { ok: false, kind: state === undefined ? 'invalid' : 'skip', reason: `protocol_state=${state ?? '(missing)'} not handled` };

  const rawIp = (attrs.client_address ?? '').trim();
  if (rawIp === '' || rawIp.toLowerCase() === 'unknown') {
    // Postfix says "unknown" only for sessions with no network peer (or XCLIENT ADDR=[UNAVAILABLE]).
    return { ok: false, kind: 'skip', reason: `client_address=${rawIp || '(empty)'}: no client IP to judge` };
  }
  let clientIp: string;
  try {
    clientIp = PLAIN_IPV4.test(rawIp) ? rawIp : normaliseIp(rawIp);
  } catch {
    return { ok: false, kind: 'invalid', reason: `client_address=${rawIp.slice(0, 64)} is not an IP address` };
  }

  const envelope: Envelope = { clientIp, rcpts: withRecipient(rcptsSoFar, attrs.recipient), attrs };
  const ptr = nonEmpty(attrs.reverse_client_name);
  if (ptr && ptr.toLowerCase() !== 'unknown') envelope.clientPtr = ptr;
  const helo = nonEmpty(attrs.helo_name);
  if (helo) envelope.helo = helo;
  if (HAS_SENDER.has(stage) && attrs.sender !== undefined) envelope.from = attrs.sender;
  else if (nonEmpty(attrs.sender)) envelope.from = attrs.sender;
  const sasl = nonEmpty(attrs.sasl_username);
  if (sasl) envelope.saslUser = sasl;
  const server = nonEmpty(attrs.server_address);
  if (server) envelope.serverAddress = server;
  const instance = nonEmpty(attrs.instance);
  if (instance) envelope.sessionId = instance;
  return { ok: true, stage, envelope };
}

/**
 * The transaction's recipients after this request. Postfix may ask twice about
 * one recipient (the policy named in two restriction lists); at DATA it names
 * the recipient only when there is exactly one.
 */
export function withRecipient(rcptsSoFar: readonly string[], recipient: string | undefined): string[] {
  const rcpts = [...rcptsSoFar];
  if (recipient && rcpts[rcpts.length - 1] !== recipient) rcpts.push(recipient);
  return rcpts;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
