// The milter wire format: a packet is a 4-byte big-endian length, then that
// many bytes (a one-letter command and its data). PacketReader frames an
// incoming byte stream with a cap on the length, checked before any of the
// data is read; decodeCommand turns one packet into a typed command, or says
// why it is malformed; the encoders write our replies. Strings on the wire are
// NUL-terminated; header names and values are kept as latin1 text (one
// character per byte) so the message is rebuilt byte for byte.

import { CMD, REPLY } from './protocol.js';

export type MilterCommand =
  | { kind: 'optneg'; version: number; actions: number; protocol: number }
  | { kind: 'macro'; for: string; macros: Array<[string, string]> }
  | { kind: 'connect'; hostname: string; family: string; port?: number; address?: string }
  | { kind: 'helo'; name: string }
  | { kind: 'mail'; args: string[] }
  | { kind: 'rcpt'; args: string[] }
  | { kind: 'data' }
  | { kind: 'header'; name: string; value: string }
  | { kind: 'eoh' }
  | { kind: 'body'; chunk: Buffer }
  | { kind: 'eom'; chunk: Buffer }
  | { kind: 'abort' }
  | { kind: 'quit' }
  | { kind: 'quit_nc' }
  | { kind: 'unknown'; line: string };

export type Decoded = MilterCommand | { kind: 'malformed'; command: string; problem: string };

export type FrameEvent = { kind: 'packet'; command: string; data: Buffer } | { kind: 'error'; problem: string };

/**
 * Frames packets out of a byte stream. After an error it stays in error
 * (the stream is out of step and the connection must close).
 */
export class PacketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private failed = false;

  constructor(private readonly maxPacket: number) {}

  /** Feed bytes; returns the packets complete so far, or one error (then nothing more). */
  push(chunk: Buffer): FrameEvent[] {
    if (this.failed) return [];
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: FrameEvent[] = [];
    for (;;) {
      if (this.size < 4) return out;
      const len = this.peekLength();
      if (len === 0) return this.fail(out, 'packet of length 0 (no command)');
      if (len > this.maxPacket) return this.fail(out, `packet length ${len} over the limit of ${this.maxPacket} bytes`);
      if (this.size < 4 + len) return out;
      const packet = this.take(4 + len);
      out.push({ kind: 'packet', command: String.fromCharCode(packet[4]), data: packet.subarray(5) });
    }
  }

  /** Bytes held waiting for the rest of a packet. */
  get pending(): number {
    return this.size;
  }

  private fail(out: FrameEvent[], problem: string): FrameEvent[] {
    this.failed = true;
    this.chunks = [];
    this.size = 0;
    out.push({ kind: 'error', problem });
    return out;
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks).readUInt32BE(0);
  }

  /** The first n bytes held, as one buffer (a copy: the caller may keep it). */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const packet = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return packet;
  }
}

/** NUL-terminated strings filling `data` exactly; undefined when the last one is not terminated. */
function cStrings(data: Buffer, encoding: BufferEncoding): string[] | undefined {
  if (data.length === 0) return [];
  if (data[data.length - 1] !== 0) return undefined;
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nul = data.indexOf(0, start);
    out.push(data.toString(encoding, start, nul));
    start = nul + 1;
    if (start >= data.length) return out;
  }
}

function malformed(command: string, problem: string): Decoded {
  return { kind: 'malformed', command, problem };
}

/** One packet as a command; anything that does not fit the protocol is `malformed`. */
export function decodeCommand(command: string, data: Buffer): Decoded {
  switch (command) {
    case CMD.OPTNEG: {
      if (data.length < 12) return malformed(command, `option negotiation of ${data.length} bytes (needs 12)`);
      return { kind: 'optneg', version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) };
    }
    case CMD.MACRO: {
      if (data.length < 1) return malformed(command, 'macro packet without its command letter');
      const strings = cStrings(data.subarray(1), 'utf8');
      if (!strings || strings.length % 2 !== 0) return malformed(command, 'macro packet not made of name/value pairs');
      const macros: Array<[string, string]> = [];
      for (let i = 0; i < strings.length; i += 2) macros.push([strings[i], strings[i + 1]]);
      return { kind: 'macro', for: String.fromCharCode(data[0]), macros };
    }
    case CMD.CONNECT: {
      const nul = data.indexOf(0);
      if (nul < 0 || nul + 2 > data.length) return malformed(command, 'connect packet without host name and family');
      const hostname = data.toString('utf8', 0, nul);
      const family = String.fromCharCode(data[nul + 1]);
      const rest = data.subarray(nul + 2);
      if (family === 'U') {
        if (rest.length !== 0) return malformed(command, 'connect packet of unknown family with an address');
        return { kind: 'connect', hostname, family };
      }
      if (family !== '4' && family !== '6' && family !== 'L') return malformed(command, `connect packet of family ${JSON.stringify(family)}`);
      if (rest.length < 3) return malformed(command, 'connect packet without port and address');
      const address = cStrings(rest.subarray(2), 'latin1');
      if (!address || address.length !== 1) return malformed(command, 'connect packet address not one NUL-terminated string');
      return { kind: 'connect', hostname, family, port: rest.readUInt16BE(0), address: address[0] };
    }
    case CMD.HELO: {
      const s = cStrings(data, 'utf8');
      if (!s || s.length !== 1) return malformed(command, 'HELO packet not one NUL-terminated string');
      return { kind: 'helo', name: s[0] };
    }
    case CMD.MAIL:
    case CMD.RCPT: {
      const args = cStrings(data, 'utf8');
      if (!args || args.length === 0) return malformed(command, `${command === CMD.MAIL ? 'MAIL' : 'RCPT'} packet without an address`);
      return { kind: command === CMD.MAIL ? 'mail' : 'rcpt', args };
    }
    case CMD.HEADER: {
      const s = cStrings(data, 'latin1');
      if (!s || s.length !== 2) return malformed(command, 'header packet not a NUL-terminated name and value');
      return { kind: 'header', name: s[0], value: s[1] };
    }
    case CMD.BODY:
      return { kind: 'body', chunk: data };
    case CMD.BODYEOB:
      return { kind: 'eom', chunk: data };
    case CMD.UNKNOWN: {
      const s = cStrings(data, 'latin1');
      return { kind: 'unknown', line: s?.[0] ?? '' };
    }
    case CMD.DATA:
    case CMD.EOH:
    case CMD.ABORT:
    case CMD.QUIT:
    case CMD.QUIT_NC:
      if (data.length !== 0) return malformed(command, `command ${command} carries ${data.length} unexpected bytes`);
      return { kind: ({ T: 'data', N: 'eoh', A: 'abort', Q: 'quit', K: 'quit_nc' } as const)[command] };
    default:
      return malformed(command, `unknown command 0x${command.charCodeAt(0).toString(16).padStart(2, '0')}`);
  }
}

// ------------------------------------------------------------------ replies

function packet(code: string, body?: Buffer): Buffer {
  const len = 1 + (body?.length ?? 0);
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32BE(len, 0);
  out[4] = code.charCodeAt(0);
  if (body) body.copy(out, 5);
  return out;
}

function cString(s: string, encoding: BufferEncoding = 'utf8'): Buffer {
  return Buffer.concat([Buffer.from(s, encoding), Buffer.from([0])]);
}

/** A reply without data: accept, continue, reject, tempfail, skip, discard, progress. */
export function simpleReply(code: (typeof REPLY)[keyof typeof REPLY]): Buffer {
  return packet(code);
}

/** SMFIR_REPLYCODE: `NNN x.y.z text`, the SMTP reply the MTA gives. */
export function replyCode(code: number, status: string, text: string): Buffer {
  // A % in the text would be taken for a printf escape by Sendmail; Postfix takes it as is. Doubled, as libmilter does.
  return packet(REPLY.REPLYCODE, cString(`${code} ${status} ${text.replace(/%/g, '%%')}`));
}

export function addHeader(name: string, value: string): Buffer {
  return packet(REPLY.ADDHEADER, Buffer.concat([cString(name, 'latin1'), cString(value)]));
}

export function insertHeader(index: number, name: string, value: string): Buffer {
  const i = Buffer.alloc(4);
  i.writeUInt32BE(index, 0);
  return packet(REPLY.INSHEADER, Buffer.concat([i, cString(name, 'latin1'), cString(value)]));
}

/** SMFIR_CHGHEADER: the index-th (1-based) field of this name gets the value; an empty value removes it. */
export function changeHeader(index: number, name: string, value: string): Buffer {
  const i = Buffer.alloc(4);
  i.writeUInt32BE(index, 0);
  return packet(REPLY.CHGHEADER, Buffer.concat([i, cString(name, 'latin1'), cString(value)]));
}

/** Our side of the negotiation, with the macros we ask for per stage (only when SETSYMLIST was agreed). */
export function optnegReply(version: number, actions: number, protocol: number, symlists: Array<[number, string]> = []): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32BE(version, 0);
  head.writeUInt32BE(actions, 4);
  head.writeUInt32BE(protocol, 8);
  const lists = symlists.map(([stage, names]) => {
    const s = Buffer.alloc(4);
    s.writeUInt32BE(stage, 0);
    return Buffer.concat([s, cString(names, 'latin1')]);
  });
  return packet(REPLY.OPTNEG, Buffer.concat([head, ...lists]));
}
