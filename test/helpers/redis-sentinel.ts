// A private Redis Sentinel for one test file: loopback only, a free port, its
// own config file in a temp dir (Sentinel rewrites it), watching one primary
// under a master name. Quick timings so a fail-over takes seconds, not minutes.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findBinary } from './binaries.js';
import { freePort } from './ports.js';

export interface PrivateSentinel {
  port: number;
  /** Ask the sentinel which address it holds for the primary now. */
  primaryPort(): Promise<number | undefined>;
  /** Resolves when the sentinel knows `replicas` replicas of the primary that are up. */
  waitForReplicas(replicas: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** The sentinel binary: redis-sentinel, or redis-server (both run as a sentinel with --sentinel). */
function sentinelBinary(): string | undefined {
  return findBinary('redis-sentinel') ?? findBinary('redis-server');
}

export async function startSentinel(opts: { name: string; primaryPort: number; downAfterMs?: number }): Promise<PrivateSentinel | undefined> {
  const bin = sentinelBinary();
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fl-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${opts.name} 127.0.0.1 ${opts.primaryPort} 1`,
      `sentinel down-after-milliseconds ${opts.name} ${opts.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${opts.name} 4000`,
      `sentinel parallel-syncs ${opts.name} 2`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(bin, [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-sentinel exited (${child.exitCode}): ${output}`);
    try {
      await admin.connect();
      await admin.ping();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-sentinel did not listen on ${port} within 10 s: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    port,
    async primaryPort() {
      const r = (await admin.call('SENTINEL', 'get-master-addr-by-name', opts.name)) as [string, string] | null;
      return r ? Number(r[1]) : undefined;
    },
    async waitForReplicas(replicas, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const rows = (await admin.call('SENTINEL', 'replicas', opts.name)) as string[][];
        const up = rows.filter((row) => {
          const flags = row[row.indexOf('flags') + 1] ?? '';
          const link = row[row.indexOf('master-link-status') + 1] ?? '';
          return !/(s_down|o_down|disconnected)/.test(flags) && link === 'ok';
        });
        if (up.length >= replicas) return;
        if (Date.now() > end) throw new Error(`sentinel knows ${up.length} of ${replicas} replicas up after ${timeoutMs} ms: ${JSON.stringify(rows)}\n${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async close() {
      admin.disconnect();
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
