// Option negotiation (SMFIC_OPTNEG): what we ask of what the MTA offers.
// We take every stage and reply to each (so the policy can refuse there),
// except the header fields, which need no reply when the MTA allows it;
// we ask for header values with their leading space (the message is rebuilt
// byte for byte for DKIM) and for SKIP (the body past milter.max_body is not
// sent). Actions: add/insert headers (Authentication-Results) and change
// headers (removing forged ones); and, when offered, our own macro lists.

import { ACTION, MACRO_STAGE, MILTER_VERSION, PROTO } from './protocol.js';

export interface Agreement {
  version: number;
  actions: number;
  protocol: number;
  /** Header values arrive with the space after the colon. */
  leadingSpace: boolean;
  /** The MTA understands SMFIR_SKIP in reply to a body chunk. */
  skip: boolean;
  /** No reply is sent to header fields. */
  noHeaderReply: boolean;
  /** We may add/insert headers, and change/remove them. */
  addHeaders: boolean;
  changeHeaders: boolean;
  /** Macro lists we asked for (SMFIR_SETSYMLIST); empty when the MTA does not take them. */
  symlists: Array<[number, string]>;
}

/**
 * The macros frontline reads, per stage (docs/milter.md): the client's
 * reverse name and our address at connect; the SASL login and queue id at
 * MAIL; the queue id later (Postfix assigns it after the first valid RCPT).
 */
export const WANTED_MACROS: Array<[number, string]> = [
  [MACRO_STAGE.CONNECT, 'j _ {client_addr} {client_name} {client_ptr} {daemon_addr} {daemon_name}'],
  [MACRO_STAGE.ENVFROM, 'i {auth_type} {auth_authen} {mail_addr}'],
  [MACRO_STAGE.ENVRCPT, 'i {rcpt_addr}'],
  [MACRO_STAGE.DATA, 'i'],
  [MACRO_STAGE.EOM, 'i'],
];

const WANTED_PROTOCOL = PROTO.NOUNKNOWN | PROTO.NR_HDR | PROTO.HDR_LEADSPC | PROTO.SKIP;

export type Negotiation = { ok: true; agreement: Agreement } | { ok: false; problem: string };

export function negotiate(offer: { version: number; actions: number; protocol: number }): Negotiation {
  if (offer.version < 2) return { ok: false, problem: `MTA speaks milter protocol version ${offer.version}; we need 2 or later` };
  const version = Math.min(offer.version, MILTER_VERSION);
  const symlist = version >= 6 && (offer.actions & ACTION.SETSYMLIST) !== 0;
  const actions = offer.actions & (ACTION.ADDHDRS | ACTION.CHGHDRS | (symlist ? ACTION.SETSYMLIST : 0));
  // Before version 6 the protocol bits beyond the NO* steps mean nothing: ask only for what the MTA offered.
  const protocol = offer.protocol & WANTED_PROTOCOL;
  return {
    ok: true,
    agreement: {
      version,
      actions,
      protocol,
      leadingSpace: (protocol & PROTO.HDR_LEADSPC) !== 0,
      skip: (protocol & PROTO.SKIP) !== 0,
      noHeaderReply: (protocol & PROTO.NR_HDR) !== 0,
      addHeaders: (actions & ACTION.ADDHDRS) !== 0,
      changeHeaders: (actions & ACTION.CHGHDRS) !== 0,
      symlists: symlist ? WANTED_MACROS : [],
    },
  };
}
