// A unix socket file left by a server that is gone: removed before a new
// server listens on the path (the policy server, the milter, the cluster
// primary), but only when it is a socket and nothing answers on it.

import net from 'node:net';
import { lstat, unlink } from 'node:fs/promises';

/** Remove a socket file no server is listening on; refuse to touch anything else. */
export async function removeStaleSocket(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path }, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
  if (live) throw new Error(`${path}: another process is listening on this socket`);
  await unlink(path);
}
