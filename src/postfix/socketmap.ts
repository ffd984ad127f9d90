// Postfix's socketmap lookup protocol (socketmap_table(5)), the server side:
// a request is the netstring "<name> <key>", the reply the netstring
// "OK <value>", "NOTFOUND ", "TEMP <reason>" or "PERM <reason>". Postfix keeps
// the connection and sends request after request.
//
// Limits on what a client sends: a request of at most 10,000 bytes, 100
// connections at once, 10 s idle. Anything that is not a netstring ends
// the connection after a PERM reply: without framing no later request can
// be read.

import net from 'node:net';

export type SocketmapAnswer = { ok: string } | { notFound: true } | { temp: string };
/** One map: the key in, its answer out. A thrown error answers TEMP (Postfix then retries: 4xx, never a silent wrong value). */
export type SocketmapLookup = (key: string) => SocketmapAnswer | Promise<SocketmapAnswer>;

export interface SocketmapServerOptions {
  maps: ReadonlyMap<string, SocketmapLookup>;
  maxRequestBytes?: number;
  maxConnections?: number;
  idleTimeoutMs?: number;
  logger: { warn(obj: object, msg: string): void };
}

export interface RunningSocketmap {
  address: { host: string; port: number };
  close(): Promise<void>;
}

function netstring(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(',')]);
}

function replyOf(a: SocketmapAnswer): string {
  if ('ok' in a) return `OK ${a.ok}`;
  if ('temp' in a) return `TEMP ${a.temp}`;
  return 'NOTFOUND ';
}

/** Take the first netstring off `buf`: its text, the rest, or why it is not one (undefined: wait for more). */
export function readNetstring(buf: Buffer, max: number): { text: string; rest: Buffer } | { error: string } | undefined {
  const colon = buf.indexOf(0x3a);
  const digits = colon < 0 ? buf.length : colon;
  if (digits > String(max).length) return { error: `netstring length longer than ${max} bytes` };
  for (let i = 0; i < digits; i++) if (buf[i] < 0x30 || buf[i] > 0x39) return { error: 'not a netstring (expected <length>:<data>,)' };
  if (colon < 0) return undefined;
  if (colon === 0) return { error: 'not a netstring (no length)' };
  const len = Number(buf.subarray(0, colon).toString('latin1'));
  if (len > max) return { error: `request of ${len} bytes, more than the limit of ${max}` };
  if (buf.length < colon + 1 + len + 1) return undefined;
  if (buf[colon + 1 + len] !== 0x2c) return { error: 'not a netstring (no "," after the data)' };
  return { text: buf.subarray(colon + 1, colon + 1 + len).toString('utf8'), rest: buf.subarray(colon + 2 + len) };
}

export async function startSocketmapServer(host: string, port: number, opts: SocketmapServerOptions): Promise<RunningSocketmap> {
  const max = opts.maxRequestBytes ?? 10_000;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    if (sockets.size >= (opts.maxConnections ?? 100)) {
      opts.logger.warn({ client: sock.remoteAddress, limit: opts.maxConnections ?? 100 }, 'socketmap: connection limit reached, connection closed');
      sock.destroy();
      return;
    }
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setTimeout(opts.idleTimeoutMs ?? 10_000, () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    // Answers go out in request order even when a lookup is async.
    let chain: Promise<void> = Promise.resolve();
    sock.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        const r = readNetstring(buf, max);
        if (r === undefined) return;
        if ('error' in r) {
          opts.logger.warn({ client: sock.remoteAddress, why: r.error }, 'socketmap: malformed request, connection closed');
          chain = chain.then(() => void sock.end(netstring(`PERM ${r.error}`)));
          sock.pause();
          return;
        }
        buf = r.rest;
        const text = r.text;
        chain = chain.then(async () => {
          const sp = text.indexOf(' ');
          const name = sp < 0 ? text : text.slice(0, sp);
          const key = sp < 0 ? '' : text.slice(sp + 1);
          const lookup = opts.maps.get(name);
          let answer: string;
          if (!lookup) answer = `PERM no map named ${JSON.stringify(name.slice(0, 64))}`;
          else {
            try {
              answer = replyOf(await lookup(key));
            } catch (e) {
              answer = `TEMP ${(e as Error).message}`.slice(0, 500);
            }
          }
          if (!sock.destroyed) sock.write(netstring(answer));
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as net.AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
