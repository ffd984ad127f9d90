// Debian's postgrey (`apt-get install postgrey`), run for a comparison on a
// loopback port with a database directory of its own that is removed after.
// Its defaults but the delay (--delay, so a triplet passes within the
// warm-up); its whitelists are Debian's. Started as root it drops to the
// `postgrey` user the package creates, which must own the directory.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { findBinary } from '../../test/helpers/binaries.js';
import { freePort } from '../../test/helpers/ports.js';

export interface Postgrey {
  /** The TCP port (0 when it listens on a unix socket). */
  port: number;
  /** The unix socket, with `unixSocket`. */
  path?: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The postgrey binary, or undefined when the package is not installed. */
export function postgreyBinary(): string | undefined {
  return findBinary('postgrey');
}

/** `postgrey --version`'s number, e.g. 1.37. */
export function postgreyVersion(binary: string): string {
  return /postgrey (\S+)/.exec(spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '';
}

/** The uid and gid of `user` from /etc/passwd (the package creates `postgrey`). */
function account(user: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) return undefined;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

async function accepting(where: { port: number } | { path: string }, deadline: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgrey exited (${child.exitCode}) before it listened`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect('path' in where ? { path: where.path } : { host: '127.0.0.1', port: where.port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('postgrey did not listen within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPostgrey(binary: string, opts: { delayS: number; unixSocket?: boolean }): Promise<Postgrey> {
  const dir = mkdtempSync(join(os.tmpdir(), 'frontline-postgrey-'));
  if (os.userInfo().uid === 0) {
    const owner = account('postgrey');
    if (owner) chownSync(dir, owner.uid, owner.gid);
  }
  // The socket goes in the database directory: the postgrey user may write there.
  const path = opts.unixSocket ? join(dir, 'policy.sock') : undefined;
  const port = path ? 0 : await freePort();
  const listen = path ? `--unix=${path}` : `--inet=127.0.0.1:${port}`;
  const child = spawn(binary, [listen, `--dbdir=${dir}`, `--delay=${opts.delayS}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await accepting(path ? { path } : { port }, Date.now() + 20_000, child);
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}\n${stderr}`);
  }
  return {
    port,
    path,
    child,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      // A SIGTERM has been seen to go unanswered on a loaded machine: SIGKILL after 5 s.
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
