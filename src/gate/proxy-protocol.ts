// PROXY protocol (HAProxy's spec, versions 1 and 2): a load balancer in front
// of the gate prefixes each connection with the real client's address. The
// header is believed only from configured trusted peers — anyone else could
// claim any address — and is read incrementally with hard bounds: a v1 line is
// at most 107 bytes, a v2 header at most `maxV2Bytes`, and the whole header
// must arrive within `timeoutMs`.

import { isIPv4, isIPv6, type Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import { normaliseIp } from '../dns/reverse.js';

export interface ProxyAddresses {
  kind: 'proxy';
  version: 1 | 2;
  protocol: 'TCP4' | 'TCP6';
  sourceAddress: string;
  sourcePort: number;
  destAddress: string;
  destPort: number;
}

/** The connection's own endpoints are the real ones (health checks; v1 UNKNOWN; v2 LOCAL, or a family we do not relay). */
export interface ProxyLocal {
  kind: 'local';
  version: 1 | 2;
  reason: string;
}

export type ProxyInfo = ProxyAddresses | ProxyLocal;

export type ParseResult = { status: 'incomplete' } | { status: 'invalid'; reason: string } | { status: 'ok'; info: ProxyInfo; length: number };

export const V1_MAX_BYTES = 107;
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;
/** Address block plus TLVs; the spec allows 64 KiB, load balancers send a few hundred bytes. */
export const DEFAULT_V2_MAX_BYTES = 4096;
const V1_PREFIX = Buffer.from('PROXY ');

/** `buf` is not (yet) known to differ from `prefix`. */
function startsLike(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function port(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** A PROXY v1 line from the start of `buf`. */
export function parseProxyV1(buf: Buffer): ParseResult {
  if (!startsLike(buf, V1_PREFIX)) return { status: 'invalid', reason: 'not a PROXY v1 header' };
  const end = buf.subarray(0, V1_MAX_BYTES).indexOf('\r\n');
  if (end < 0) {
    return buf.length >= V1_MAX_BYTES ? { status: 'invalid', reason: `PROXY v1 line longer than ${V1_MAX_BYTES} bytes` } : { status: 'incomplete' };
  }
  const line = buf.subarray(0, end).toString('latin1');
  const length = end + 2;
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { status: 'ok', info: { kind: 'local', version: 1, reason: 'PROXY UNKNOWN' }, length };
  if (parts.length !== 6) return { status: 'invalid', reason: `PROXY v1 line has ${parts.length} fields, expected 6` };
  const [, proto, src, dst, sport, dport] = parts;
  if (proto !== 'TCP4' && proto !== 'TCP6') return { status: 'invalid', reason: `PROXY v1 protocol ${JSON.stringify(proto.slice(0, 10))}` };
  const valid = proto === 'TCP4' ? isIPv4 : isIPv6;
  if (!valid(src) || !valid(dst)) return { status: 'invalid', reason: `PROXY v1 addresses are not ${proto}` };
  const sourcePort = port(sport);
  const destPort = port(dport);
  if (sourcePort === undefined || destPort === undefined) return { status: 'invalid', reason: 'PROXY v1 port out of range' };
  return {
    status: 'ok',
    info: { kind: 'proxy', version: 1, protocol: proto, sourceAddress: normaliseIp(src), sourcePort, destAddress: normaliseIp(dst), destPort },
    length,
  };
}

function ipv6Text(bytes: Buffer): string {
  return ipaddr.fromByteArray([...bytes]).toString();
}

/** A PROXY v2 header from the start of `buf`. */
export function parseProxyV2(buf: Buffer, maxBytes = DEFAULT_V2_MAX_BYTES): ParseResult {
  if (!startsLike(buf, V2_SIGNATURE)) return { status: 'invalid', reason: 'not a PROXY v2 header' };
  if (buf.length < V2_FIXED) return { status: 'incomplete' };
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return { status: 'invalid', reason: `PROXY v2 version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  if (command > 1) return { status: 'invalid', reason: `PROXY v2 command ${command}` };
  const family = buf[13] >> 4;
  const transport = buf[13] & 0x0f;
  const length = V2_FIXED + buf.readUInt16BE(14);
  if (length > maxBytes) return { status: 'invalid', reason: `PROXY v2 header of ${length} bytes exceeds ${maxBytes}` };
  if (buf.length < length) return { status: 'incomplete' };
  // LOCAL: the balancer speaking for itself (health checks); the addresses, if any, are to be ignored.
  if (command === 0) return { status: 'ok', info: { kind: 'local', version: 2, reason: 'PROXY v2 LOCAL' }, length };
  if (transport !== 1 || (family !== 1 && family !== 2)) {
    // UNSPEC, UDP and unix sockets carry no TCP client address: the spec says use the connection's own.
    return { status: 'ok', info: { kind: 'local', version: 2, reason: `PROXY v2 family ${family} transport ${transport}` }, length };
  }
  const need = family === 1 ? 12 : 36;
  if (length - V2_FIXED < need) return { status: 'invalid', reason: `PROXY v2 address block of ${length - V2_FIXED} bytes, ${need} needed` };
  const a = buf.subarray(V2_FIXED);
  const info: ProxyAddresses =
    family === 1
      ? {
          kind: 'proxy',
          version: 2,
          protocol: 'TCP4',
          sourceAddress: [...a.subarray(0, 4)].join('.'),
          destAddress: [...a.subarray(4, 8)].join('.'),
          sourcePort: a.readUInt16BE(8),
          destPort: a.readUInt16BE(10),
        }
      : {
          kind: 'proxy',
          version: 2,
          protocol: 'TCP6',
          sourceAddress: normaliseIp(ipv6Text(a.subarray(0, 16))),
          destAddress: normaliseIp(ipv6Text(a.subarray(16, 32))),
          sourcePort: a.readUInt16BE(32),
          destPort: a.readUInt16BE(34),
        };
  return { status: 'ok', info, length };
}

/** Either version, told apart by the first byte. */
export function parseProxyHeader(buf: Buffer, maxV2Bytes = DEFAULT_V2_MAX_BYTES): ParseResult {
  if (buf.length === 0) return { status: 'incomplete' };
  if (buf[0] === V2_SIGNATURE[0]) return parseProxyV2(buf, maxV2Bytes);
  if (buf[0] === V1_PREFIX[0]) return parseProxyV1(buf);
  return { status: 'invalid', reason: 'connection does not start with a PROXY header' };
}

export class ProxyHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyHeaderError';
  }
}

export interface ReadProxyOptions {
  /** The whole header must arrive within this time (default 5000 ms). */
  timeoutMs?: number;
  maxV2Bytes?: number;
}

/**
 * Read the PROXY header from the first bytes of `socket`. Resolves with the
 * addresses and the bytes that followed the header (the client's first SMTP
 * bytes, if it spoke early: hand them to the SMTP side, e.g. socket.unshift);
 * the socket is left paused. Rejects with ProxyHeaderError on a malformed or
 * oversized header, a timeout, or the socket closing first.
 */
export function readProxyHeader(socket: Socket, opts: ReadProxyOptions = {}): Promise<{ info: ProxyInfo; rest: Buffer }> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      socket.pause();
    };
    const fail = (why: string): void => {
      cleanup();
      reject(new ProxyHeaderError(why));
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf, opts.maxV2Bytes);
      if (r.status === 'incomplete') return;
      if (r.status === 'invalid') return fail(r.reason);
      cleanup();
      resolve({ info: r.info, rest: buf.subarray(r.length) });
    };
    const onEnd = (): void => fail('connection closed before the PROXY header was complete');
    const onError = (e: Error): void => fail(`socket error before the PROXY header was complete: ${e.message}`);
    const timer = setTimeout(() => fail(`no complete PROXY header within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    socket.resume();
  });
}

/**
 * A matcher for the peers whose PROXY headers are believed: a list of
 * addresses and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
 * Throws on an invalid entry, so a config error shows at load.
 */
export function trustedProxies(list: string[]): (peer: string) => boolean {
  const ranges = list.map((entry) => {
    try {
      const [ip, bits] = entry.includes('/') ? ipaddr.parseCIDR(entry) : [ipaddr.parse(entry), -1];
      const addr = ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
      const prefix = bits < 0 ? (addr.kind() === 'ipv4' ? 32 : 128) : addr !== ip ? Math.max(0, bits - 96) : bits;
      return { addr, prefix };
    } catch {
      throw new Error(`invalid trusted proxy address or CIDR: ${JSON.stringify(entry)}`);
    }
  });
  return (peer: string): boolean => {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(peer);
    } catch {
      return false;
    }
    return ranges.some((r) => r.addr.kind() === ip.kind() && ip.match(r.addr, r.prefix));
  };
}
