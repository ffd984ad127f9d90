// The reply to one decoded question, as an authoritative server of our two
// zones answers it: pure (the clock reading comes in), so every branch is a
// unit test. Wire details — UDP size, truncation, rate limits — are the
// server's (server.ts).

import dnsPacket, { type Answer, type DecodedPacket, type Packet, type Question } from 'dns-packet';
import { ZoneData, type Listing } from './data.js';
import { meaningOf, splitName } from './names.js';

export type ZoneId = 'bl' | 'wl';

export interface ZoneApex {
  id: ZoneId;
  /** Lower case, no trailing dot. */
  apex: string;
  /** SOA RNAME as a name. */
  hostmaster: string;
}

export interface AnswerContext {
  zones: readonly ZoneApex[];
  data: ZoneData;
  /** The apex's NS and the SOA's MNAME. */
  ns: string;
  ttlS: number;
  negativeTtlS: number;
}

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** What we say we accept over UDP with EDNS (RFC 9715's advice against fragmentation). */
export const EDNS_UDP_SIZE = 1232;
const OPCODE_MASK = 0x7800;
const BADVERS_HIGH = 1; // extended RCODE 16 = 1 << 4 | 0

function soa(ctx: AnswerContext, z: ZoneApex, ttl: number): Answer {
  return {
    type: 'SOA',
    name: z.apex,
    ttl,
    class: 'IN',
    data: { mname: ctx.ns, rname: z.hostmaster, serial: ctx.data.serial >>> 0, refresh: 3600, retry: 600, expire: 604800, minimum: ctx.negativeTtlS },
  };
}

/** A TTL that ends before the earliest listing does (RFC 5782 lists; a resolver must not keep a lifted listing). */
export function listingTtl(listings: readonly Listing[], now: number, ttlS: number): number {
  return listingTtlOf(Math.min(...listings.map((l) => l.expiresAt)), now, ttlS);
}

/** listingTtl() for the earliest end alone. */
export function listingTtlOf(first: number, now: number, ttlS: number): number {
  if (!Number.isFinite(first)) return ttlS;
  const left = Math.ceil((first - now) / 1000) - 1;
  return Math.max(0, Math.min(ttlS, left));
}

function listingAnswers(name: string, type: string, listings: readonly Listing[], ttl: number): Answer[] {
  const out: Answer[] = [];
  if (type === 'A' || type === 'ANY') {
    for (const code of [...new Set(listings.map((l) => l.code))].sort((a, b) => a - b)) out.push({ type: 'A', name, ttl, class: 'IN', data: `127.0.0.${code}` });
  }
  if (type === 'TXT' || type === 'ANY') {
    for (const l of listings) out.push({ type: 'TXT', name, ttl, class: 'IN', data: ZoneData.txt(l) });
  }
  return out;
}

/**
 * The reply to `query` (already decoded, QR clear). Never throws on what a
 * client sent: every odd question gets an RCODE.
 */
export function answer(query: DecodedPacket, ctx: AnswerContext, now: number): Packet {
  const flags = ((query.flags ?? 0) & (OPCODE_MASK | dnsPacket.RECURSION_DESIRED)) | dnsPacket.AUTHORITATIVE_ANSWER;
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT');
  const questions = (query.questions ?? []) as Question[];
  const reply = (rcode: number, body: Partial<Packet> = {}, aa = true): Packet => ({
    type: 'response',
    id: query.id,
    flags: (aa ? flags : flags & ~dnsPacket.AUTHORITATIVE_ANSWER) | rcode,
    questions,
    answers: [],
    authorities: [],
    ...body,
    additionals: opt ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  });
  if (opt && opt.type === 'OPT' && opt.ednsVersion !== 0) {
    const r = reply(RCODE.NOERROR, {}, false);
    r.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: BADVERS_HIGH, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
    return r;
  }
  if (((query.flags ?? 0) & OPCODE_MASK) !== 0) return reply(RCODE.NOTIMP, {}, false);
  if (questions.length !== 1) return reply(RCODE.FORMERR, {}, false);
  const q = questions[0];
  if (q.class !== undefined && q.class !== 'IN' && q.class !== 'ANY') return reply(RCODE.REFUSED, {}, false);
  const where = splitName(q.name, ctx.zones);
  if (!where) return reply(RCODE.REFUSED, {}, false);
  const z = ctx.zones.find((x) => x.id === where.id) as ZoneApex;
  const negative = (rcode: number) => reply(rcode, { authorities: [soa(ctx, z, ctx.negativeTtlS)] });
  const type = q.type as string;
  if (type === 'AXFR' || type === 'IXFR') return reply(RCODE.REFUSED, {}, false);
  const meaning = meaningOf(where.labels);
  switch (meaning.kind) {
    case 'apex': {
      const ns: Answer = { type: 'NS', name: z.apex, ttl: ctx.ttlS, class: 'IN', data: ctx.ns };
      const answers = type === 'SOA' ? [soa(ctx, z, ctx.ttlS)] : type === 'NS' ? [ns] : type === 'ANY' ? [soa(ctx, z, ctx.ttlS), ns] : [];
      return answers.length > 0 ? reply(RCODE.NOERROR, { answers }) : negative(RCODE.NOERROR);
    }
    case 'none':
      return negative(RCODE.NXDOMAIN);
    case 'partial':
      return negative(RCODE.NOERROR);
    case 'ip':
    case 'ambiguous': {
      const listings = where.id === 'bl' ? ctx.data.blocked(meaning.ip, now) : ctx.data.allowed(meaning.ip, now);
      if (listings.length === 0) return negative(meaning.kind === 'ip' ? RCODE.NXDOMAIN : RCODE.NOERROR);
      const answers = listingAnswers(q.name, type, listings, listingTtl(listings, now, ctx.ttlS));
      return answers.length > 0 ? reply(RCODE.NOERROR, { answers }) : negative(RCODE.NOERROR);
    }
  }
}

/**
 * FORMERR for a message that could not be decoded: its ID, opcode and RD
 * echoed, no sections (RFC 1035 §4.1.1). Undefined when the message is too
 * short to have a header, or is itself a response (never answer those: two
 * servers could bounce replies forever).
 */
export function formErr(msg: Buffer): Buffer | undefined {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0) return undefined;
  const out = Buffer.alloc(12);
  msg.copy(out, 0, 0, 2);
  out[2] = 0x80 | (msg[2] & 0x79);
  out[3] = RCODE.FORMERR;
  return out;
}
