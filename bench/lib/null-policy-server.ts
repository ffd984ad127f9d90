// The ceiling of the policy-server bench: a server that answers every
// request with DUNNO and does nothing else (it only looks for the blank
// line that ends a request), run with the same number of worker processes
// as frontline. Whatever rate it reaches on this machine, with this load
// generator, no policy server in Node can beat: what is left between its
// rate and frontline's is frontline's own work per decision.
//
//   node --import tsx bench/lib/null-policy-server.ts WORKERS [SOCKET]   (prints "ready PORT")
//
// With SOCKET (a path), it listens on that unix socket instead of a TCP port
// (and prints "ready 0").

import cluster from 'node:cluster';
import net from 'node:net';

const workers = Math.max(1, Number(process.argv[2] ?? 1));
const socketPath = process.argv[3];

function serve(port: number, onListening: (port: number) => void): void {
  const server = net.createServer((socket) => {
    if (socketPath === undefined) socket.setNoDelay(true);
    socket.setEncoding('latin1');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        buffer = buffer.slice(end + 2);
        socket.write('action=DUNNO\n\n');
      }
    });
    socket.on('error', () => undefined);
  });
  if (socketPath !== undefined) server.listen(socketPath, () => onListening(0));
  else server.listen(port, '127.0.0.1', () => onListening((server.address() as net.AddressInfo).port));
}

/** Fork the workers; print "ready PORT" once all of them listen. */
function forkWorkers(port: number): void {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork({ NULL_POLICY_PORT: String(port) }).on('message', () => {
      if (++ready === workers) console.log(`ready ${port}`);
    });
  }
}

if (workers === 1) {
  serve(0, (port) => console.log(`ready ${port}`));
} else if (cluster.isPrimary && socketPath !== undefined) {
  // A unix socket path is shared by the workers through the primary as it is.
  forkWorkers(0);
} else if (cluster.isPrimary) {
  // The primary picks a free port first, so that every worker shares it.
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const port = (probe.address() as net.AddressInfo).port;
    probe.close(() => forkWorkers(port));
  });
} else {
  serve(Number(process.env.NULL_POLICY_PORT), () => process.send?.('ready'));
}
