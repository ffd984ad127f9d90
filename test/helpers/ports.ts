// Free loopback ports for servers a test starts as a separate process (which
// cannot take port 0 and report back). Servers in this process should listen
// on port 0 themselves: a port found here may be taken by someone else before
// it is used, so callers that can should retry on EADDRINUSE.

import net from 'node:net';

/** A TCP port that was free on `host` a moment ago (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
