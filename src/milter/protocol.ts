// The Sendmail milter protocol, version 6: command and reply codes and the
// negotiation bits, as libmilter's mfapi.h / mfdef.h name them. Only the
// names we use; the values are the protocol's.

/** Commands the MTA sends (SMFIC_*). */
export const CMD = {
  ABORT: 'A',
  BODY: 'B',
  CONNECT: 'C',
  MACRO: 'D',
  BODYEOB: 'E',
  HELO: 'H',
  QUIT_NC: 'K',
  HEADER: 'L',
  MAIL: 'M',
  EOH: 'N',
  OPTNEG: 'O',
  QUIT: 'Q',
  RCPT: 'R',
  DATA: 'T',
  UNKNOWN: 'U',
} as const;

/** Replies and requests the milter sends (SMFIR_*). */
export const REPLY = {
  ADDRCPT: '+',
  DELRCPT: '-',
  ACCEPT: 'a',
  REPLBODY: 'b',
  CONTINUE: 'c',
  DISCARD: 'd',
  CHGFROM: 'e',
  CONN_FAIL: 'f',
  ADDHEADER: 'h',
  INSHEADER: 'i',
  SETSYMLIST: 'l',
  CHGHEADER: 'm',
  PROGRESS: 'p',
  QUARANTINE: 'q',
  REJECT: 'r',
  SKIP: 's',
  TEMPFAIL: 't',
  REPLYCODE: 'y',
  OPTNEG: 'O',
} as const;

/** Actions the milter may take (SMFIF_*), offered by the MTA and asked for by the milter. */
export const ACTION = {
  ADDHDRS: 0x01,
  CHGBODY: 0x02,
  ADDRCPT: 0x04,
  DELRCPT: 0x08,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
  CHGFROM: 0x40,
  ADDRCPT_PAR: 0x80,
  SETSYMLIST: 0x100,
} as const;

/** Protocol steps (SMFIP_*): what the MTA may leave out, and what it need not wait a reply for. */
export const PROTO = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
  MDS_256K: 0x10000000,
  MDS_1M: 0x20000000,
} as const;

/** Macro stages of SMFIR_SETSYMLIST (SMFIM_*). */
export const MACRO_STAGE = {
  CONNECT: 0,
  HELO: 1,
  ENVFROM: 2,
  ENVRCPT: 3,
  DATA: 4,
  EOM: 5,
  EOH: 6,
} as const;

/** The protocol version we speak. */
export const MILTER_VERSION = 6;

/** The largest body chunk an MTA sends unless MDS_256K/MDS_1M was agreed (we never ask for those). */
export const BODY_CHUNK = 65535;
