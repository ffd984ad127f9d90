// A backend MTA that offers CHUNKING (smtp-server does not): a raw socket
// server that records every command line and every BDAT chunk it receives,
// answers 250 to everything else (but the gate's relay self-test), and says
// how many transactions it saw.

import net from 'node:net';

export interface ChunkingBackend {
  address: string;
  /** Command lines, without CRLF, in the order received. */
  commands: string[];
  /** The bytes of each BDAT chunk. */
  chunks: Buffer[];
  close(): Promise<void>;
}

export async function startChunkingBackend(): Promise<ChunkingBackend> {
  const commands: string[] = [];
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let need = -1;
    sock.write('220 chunking backend ESMTP\r\n');
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (need >= 0) {
          if (buf.length < need) return;
          chunks.push(buf.subarray(0, need));
          buf = buf.subarray(need);
          need = -1;
          sock.write(`250 2.0.0 Ok: ${chunks[chunks.length - 1].length} bytes queued\r\n`);
          continue;
        }
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        commands.push(line);
        const verb = line.split(' ')[0].toUpperCase();
        if (verb === 'EHLO') sock.write('250-chunking\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 XCLIENT ADDR PORT NAME HELO PROTO\r\n');
        else if (verb === 'XCLIENT') sock.write('220 chunking backend ESMTP\r\n');
        // Not an open relay: the gate's relay self-test (RCPT to example.invalid) is refused, as Postfix refuses it.
        else if (verb === 'RCPT' && /@example\.invalid>/i.test(line)) sock.write('454 4.7.1 Relay access denied\r\n');
        else if (verb === 'BDAT') need = Number(line.split(' ')[1]);
        else if (verb === 'QUIT') sock.end('221 2.0.0 Bye\r\n');
        else sock.write('250 2.0.0 Ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    commands,
    chunks,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
