// A milter client for tests: plays the MTA's side over a socket, writing
// packets (well-formed or not) and reading the milter's replies.

import net from 'node:net';
import { PacketReader } from '../../src/milter/codec.js';

export interface MilterReply {
  code: string;
  data: Buffer;
}

export function packet(cmd: string, data: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length + 1, 0);
  head[4] = cmd.charCodeAt(0);
  return Buffer.concat([head, body]);
}

export const z = (...parts: string[]): string => parts.map((p) => `${p}\0`).join('');

export function optneg(version = 6, actions = 0x1ff, protocol = 0x1fffff): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(version, 0);
  b.writeUInt32BE(actions, 4);
  b.writeUInt32BE(protocol, 8);
  return packet('O', b);
}

export function connectPacket(host: string, ip: string, port = 40000): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port, 0);
  return packet('C', Buffer.concat([Buffer.from(`${host}\0${ip.includes(':') ? '6' : '4'}`, 'latin1'), p, Buffer.from(`${ip}\0`, 'latin1')]));
}

export class MilterClient {
  private readonly reader = new PacketReader(1 << 20);
  private readonly replies: MilterReply[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      for (const ev of this.reader.push(d)) if (ev.kind === 'packet') this.replies.push({ code: ev.command, data: ev.data });
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(opts: net.NetConnectOpts): Promise<MilterClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(opts, () => resolve(new MilterClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(...packets: Buffer[]): void {
    this.socket.write(Buffer.concat(packets));
  }

  /** The next reply; undefined when the connection closed first. */
  async next(timeoutMs = 10_000): Promise<MilterReply | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error('no milter reply in time');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.replies.shift();
  }

  /** Send packets and read one reply. */
  async ask(...packets: Buffer[]): Promise<MilterReply | undefined> {
    this.write(...packets);
    return this.next();
  }

  /** Replies up to and including the first final one (accept, continue, reject, tempfail, replycode, discard). */
  async untilFinal(): Promise<MilterReply[]> {
    const out: MilterReply[] = [];
    for (;;) {
      const r = await this.next();
      if (!r) return out;
      out.push(r);
      if ('acrtyds'.includes(r.code)) return out;
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A header packet's or replycode's strings. */
export function strings(data: Buffer, from = 0): string[] {
  return data.subarray(from).toString('latin1').split('\0').slice(0, -1);
}

/** A message's header fields as the MTA sends them (name, value with its leading space and folds). */
export function headerFields(message: Buffer): { fields: Array<[string, string]>; body: Buffer } {
  const text = message.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? Buffer.alloc(0) : message.subarray(end + 4);
  const fields: Array<[string, string]> = [];
  for (const line of head.split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return { fields, body };
}

export interface Dialogue {
  helo?: string;
  from: string;
  rcpts: string[];
  message?: Buffer;
  macros?: Record<string, string>;
  /** Body chunk size (default 65535). */
  chunk?: number;
}

export interface DialogueReplies {
  connect?: MilterReply;
  helo?: MilterReply;
  mail?: MilterReply;
  rcpt: Array<MilterReply | undefined>;
  data?: MilterReply;
  eoh?: MilterReply;
  body: MilterReply[];
  /** Modifications and the final reply at end of message. */
  eom: MilterReply[];
}

/** One SMTP session as the MTA tells the milter, stopping where the milter refuses (as Postfix would). */
export async function dialogue(c: MilterClient, client: { ip: string; name?: string }, d: Dialogue, negotiate = true): Promise<DialogueReplies> {
  const out: DialogueReplies = { rcpt: [], body: [], eom: [] };
  const refused = (r: MilterReply | undefined) => !r || r.code !== 'c';
  if (negotiate) {
    const o = await c.ask(optneg());
    if (o?.code !== 'O') throw new Error(`no negotiation reply: ${o?.code}`);
  }
  const macros = d.macros ?? {};
  c.write(packet('D', `C${z(...Object.entries(macros).flat())}`));
  out.connect = await c.ask(connectPacket(client.name ?? `[${client.ip}]`, client.ip));
  if (refused(out.connect)) return out;
  out.helo = await c.ask(packet('H', z(d.helo ?? 'client.example')));
  if (refused(out.helo)) return out;
  out.mail = await c.ask(packet('M', z(`<${d.from}>`)));
  if (refused(out.mail)) return out;
  let any = false;
  for (const r of d.rcpts) {
    const reply = await c.ask(packet('R', z(`<${r}>`)));
    out.rcpt.push(reply);
    if (!refused(reply)) any = true;
  }
  if (!any || !d.message) {
    c.write(packet('A'));
    return out;
  }
  out.data = await c.ask(packet('T'));
  if (refused(out.data)) return out;
  const { fields, body } = headerFields(d.message);
  // NR_HDR was offered: no reply to header fields.
  c.write(...fields.map(([n, v]) => packet('L', z(n, v))));
  out.eoh = await c.ask(packet('N'));
  if (refused(out.eoh)) return out;
  const size = d.chunk ?? 65535;
  for (let i = 0; i < body.length; i += size) {
    const r = await c.ask(packet('B', body.subarray(i, i + size)));
    out.body.push(r!);
    if (r?.code === 's') break;
    if (refused(r)) return out;
  }
  c.write(packet('E'));
  out.eom = await c.untilFinal();
  return out;
}
