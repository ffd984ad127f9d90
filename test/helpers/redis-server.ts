// A private redis-server for one test file: loopback only, a free port, no
// persistence, its own temp dir — never the shared instance on 6379. It can
// be stopped and started again on the same port (fault tests).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './binaries.js';
import { freePort } from './ports.js';

export interface PrivateRedis {
  port: number;
  url: string;
  /** Start (again) on the same port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Stop with SIGKILL (a crash, not a shutdown); resolves when the process is gone. */
  kill(): Promise<void>;
  /** Stop and remove the temp dir. */
  close(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Start a private redis-server, or return undefined when the binary is missing (the caller skips or fails). `args`: more of its flags (e.g. --replicaof). */
export async function startRedis(opts: { args?: string[] } = {}): Promise<PrivateRedis | undefined> {
  const bin = findBinary('redis-server');
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fl-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes', ...(opts.args ?? [])];
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}): ${output}`);
      if (await canConnect(port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    proc.kill('SIGKILL');
    throw new Error(`redis-server did not listen on ${port} within 10 s: ${output}`);
  };

  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    kill,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
