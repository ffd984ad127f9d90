// The fast path for the question nearly every MTA asks: an A query for an
// IPv4 address name (d.c.b.a.zone), with or without EDNS. Read straight from
// the datagram and written straight into the reply, with no decoded packet
// objects and no TXT text: dns-packet's decode and encode were most of the
// CPU a query cost (bench/zone.ts, docs/performance.md). Anything else —
// other types, IPv6 names, odd flags or sections, names with four one-digit
// labels — returns undefined and takes the general path (answer.ts), which
// answers the same way.

import type { AnswerContext, ZoneApex, ZoneId } from './answer.js';
import { EDNS_UDP_SIZE, listingTtlOf } from './answer.js';

interface Apex {
  id: ZoneId;
  /** The apex in wire form, lower case, with its terminating zero. */
  wire: Buffer;
  /** SOA RDATA up to the serial: MNAME and RNAME in wire form. */
  names: Buffer;
}

function wireName(name: string): Buffer {
  const parts = name.split('.').filter((l) => l !== '');
  return Buffer.concat([...parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l.toLowerCase(), 'ascii')])), Buffer.from([0])]);
}

export class FastPath {
  private readonly apexes: Apex[];

  constructor(private readonly ctx: AnswerContext) {
    this.apexes = ctx.zones.map((z: ZoneApex) => ({ id: z.id, wire: wireName(z.apex), names: Buffer.concat([wireName(ctx.ns), wireName(z.hostmaster)]) }));
  }

  /** The reply to `msg`, or undefined: not a question this path takes. */
  answer(msg: Buffer, now: number): Buffer | undefined {
    const n = msg.length;
    if (n < 17 || (msg[2] & 0xf8) !== 0) return undefined; // QR, opcode
    if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0 || msg[11] > 1) return undefined;
    // Four decimal labels.
    let i = 12;
    let ip = '';
    let oneDigit = true;
    const octets = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      const len = msg[i];
      if (len < 1 || len > 3 || i + len >= n) return undefined;
      if (len > 1 && msg[i + 1] === 48) return undefined; // leading zero: the general path says NXDOMAIN
      let v = 0;
      for (let j = 1; j <= len; j++) {
        const c = msg[i + j] - 48;
        if (c < 0 || c > 9) return undefined;
        v = v * 10 + c;
      }
      if (v > 255) return undefined;
      if (len > 1) oneDigit = false;
      octets[k] = v;
      i += len + 1;
    }
    if (oneDigit) return undefined;
    const apexAt = i;
    let zone: Apex | undefined;
    for (const a of this.apexes) {
      const w = a.wire;
      if (apexAt + w.length + 4 > n) continue;
      let same = true;
      for (let j = 0; j < w.length; j++) {
        let b = msg[apexAt + j];
        if (b >= 65 && b <= 90) b |= 0x20;
        if (b !== w[j]) {
          same = false;
          break;
        }
      }
      if (same) {
        zone = a;
        break;
      }
    }
    if (!zone) return undefined;
    const qEnd = apexAt + zone.wire.length + 4;
    if (msg[qEnd - 4] !== 0 || msg[qEnd - 3] !== 1 || msg[qEnd - 2] !== 0 || msg[qEnd - 1] !== 1) return undefined; // A, IN
    let edns = false;
    if (msg[11] === 1) {
      // Only a plain OPT: root name, type 41, version 0.
      if (qEnd + 11 > n || msg[qEnd] !== 0 || msg[qEnd + 1] !== 0 || msg[qEnd + 2] !== 41 || msg[qEnd + 6] !== 0) return undefined;
      if (qEnd + 11 + msg.readUInt16BE(qEnd + 9) !== n) return undefined;
      edns = true;
    } else if (qEnd !== n) return undefined;
    ip = `${octets[3]}.${octets[2]}.${octets[1]}.${octets[0]}`;
    const data = this.ctx.data;
    const mask = data.codes(zone.id, ip, now);
    let count = 0;
    for (let m = mask; m !== 0; m &= m - 1) count++;
    const soaLen = count === 0 ? 12 + zone.names.length + 20 : 0;
    const out = Buffer.allocUnsafe(qEnd + count * 16 + soaLen + (edns ? 11 : 0));
    msg.copy(out, 0, 0, qEnd);
    out[2] = 0x84 | (msg[2] & 0x01);
    out[3] = count === 0 ? 3 : 0;
    out.writeUInt16BE(count, 6);
    out.writeUInt16BE(count === 0 ? 1 : 0, 8);
    out.writeUInt16BE(edns ? 1 : 0, 10);
    let o = qEnd;
    if (count > 0) {
      const ttl = listingTtlOf(data.codesExpireAt, now, this.ctx.ttlS);
      for (let code = 0; code < 32; code++) {
        if ((mask & (1 << code)) === 0) continue;
        out.writeUInt16BE(0xc00c, o);
        out.writeUInt32BE(0x00010001, o + 2);
        out.writeUInt32BE(ttl, o + 6);
        out.writeUInt16BE(4, o + 10);
        out[o + 12] = 127;
        out[o + 13] = 0;
        out[o + 14] = 0;
        out[o + 15] = code;
        o += 16;
      }
    } else {
      out.writeUInt16BE(0xc000 | apexAt, o);
      out.writeUInt32BE(0x00060001, o + 2);
      out.writeUInt32BE(this.ctx.negativeTtlS, o + 6);
      out.writeUInt16BE(zone.names.length + 20, o + 10);
      o += 12;
      zone.names.copy(out, o);
      o += zone.names.length;
      out.writeUInt32BE(data.serial >>> 0, o);
      out.writeUInt32BE(3600, o + 4);
      out.writeUInt32BE(600, o + 8);
      out.writeUInt32BE(604800, o + 12);
      out.writeUInt32BE(this.ctx.negativeTtlS, o + 16);
      o += 20;
    }
    if (edns) {
      out[o] = 0;
      out.writeUInt16BE(41, o + 1);
      out.writeUInt16BE(EDNS_UDP_SIZE, o + 3);
      out.writeUInt32BE(0, o + 5);
      out.writeUInt16BE(0, o + 9);
    }
    return out;
  }
}
