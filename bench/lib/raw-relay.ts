// The cheapest relay a Node process can be: each client connection gets a new
// connection to the backend and bytes are piped both ways, with no SMTP
// parsing at all. Measurement apparatus, not product: what it costs per
// message on a machine is the floor under any relay written in Node there,
// the SMTP gate included.

import net from 'node:net';

export interface RawRelay {
  port: number;
  close(): Promise<void>;
}

export function startRawRelay(backendPort: number, backendHost = '127.0.0.1', host = '127.0.0.1', port = 0): Promise<RawRelay> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = net.createServer((client) => {
    // The gate answers nothing before it has the backend either; Nagle off on both legs, as the gate does.
    const backend = net.connect({ host: backendHost, port: backendPort });
    track(client);
    track(backend);
    client.setNoDelay(true);
    backend.setNoDelay(true);
    const end = (): void => {
      client.destroy();
      backend.destroy();
    };
    client.on('error', end);
    backend.on('error', end);
    client.pipe(backend);
    backend.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
