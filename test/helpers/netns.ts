// Two network namespaces joined by a veth pair, made for one test: a server
// side (where the firewall under test is installed, and a TCP listener runs)
// and a client side with several addresses (v4 and v6) to connect from. No
// packet leaves them; everything is deleted by close().
//
//   const net = await netnsPair(t);       // undefined: skipped (not root, no `ip`)
//   if (!net) return;
//   await net.connects(net.client4[0]);   // true / false
//   net.run(['nft', 'list', 'ruleset']);  // runs inside the server namespace

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { spawnRunner, type CommandRunner } from '../../src/enforce/firewall/run.js';
import { requireBinary } from './binaries.js';

export interface NetnsPair {
  server: string;
  client: string;
  server4: string;
  server6: string;
  /** Client addresses to connect from. */
  client4: string[];
  client6: string[];
  port: number;
  /** Run a command inside the server namespace. */
  run: CommandRunner;
  /** Does a TCP connection from `src` to the listener succeed (and get its greeting) within `timeoutMs`? */
  connects(src: string, timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

const LISTENER = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('error', () => {}); c.end('hi\\n'); });
s.listen(Number(process.argv[1]), '::', () => process.stdout.write('listening\\n'));
`;

const PROBER = `
const net = require('node:net');
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const q = JSON.parse(line);
  let done = false;
  const answer = (ok, why) => { if (done) return; done = true; sock.destroy(); process.stdout.write(JSON.stringify({ id: q.id, ok, why }) + '\\n'); };
  const sock = net.connect({ host: q.dst, port: q.port, localAddress: q.src });
  sock.setTimeout(q.timeoutMs, () => answer(false, 'timeout'));
  sock.on('data', () => answer(true));
  sock.on('error', (e) => answer(false, e.code));
});
`;

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

export async function netnsPair(t: TestContext): Promise<NetnsPair | undefined> {
  if (!requireBinary('ip', t)) return undefined;
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('network namespace tests need root (CI=true: failing instead of skipping)');
    t.skip('needs root for ip netns');
    return undefined;
  }
  const id = randomBytes(3).toString('hex');
  const server = `fl-s-${id}`;
  const client = `fl-c-${id}`;
  // 10.0.0.0/8 and fd00::/8: private, and never this host's own addresses in a test namespace.
  const a = 1 + (randomBytes(1)[0] % 250);
  const b = 1 + (randomBytes(1)[0] % 250);
  const server4 = `10.${a}.${b}.1`;
  const client4 = [2, 3, 4, 5, 6].map((h) => `10.${a}.${b}.${h}`);
  const pre6 = `fd00:${a.toString(16)}:${b.toString(16)}::`;
  const server6 = `${pre6}1`;
  const client6 = [2, 3, 4].map((h) => `${pre6}${h}`);
  const port = 2525;
  const procs: ChildProcess[] = [];
  const close = async () => {
    for (const p of procs) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', server]);
    spawnSync('ip', ['netns', 'del', client]);
  };
  try {
    ip(['netns', 'add', server]);
    ip(['netns', 'add', client]);
    ip(['link', 'add', `flv${id}s`, 'netns', server, 'type', 'veth', 'peer', 'name', `flv${id}c`, 'netns', client]);
    for (const [ns, dev, addrs] of [
      [server, `flv${id}s`, [`${server4}/24`, `${server6}/64`]],
      [client, `flv${id}c`, [...client4.map((c) => `${c}/24`), ...client6.map((c) => `${c}/64`)]],
    ] as const) {
      for (const addr of addrs) ip(['-n', ns, 'addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : [])]);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const listener = spawn('ip', ['netns', 'exec', server, process.execPath, '-e', LISTENER, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(listener);
    await new Promise<void>((resolve, reject) => {
      listener.stdout!.once('data', () => resolve());
      listener.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
    });
  } catch (e) {
    await close();
    throw e;
  }
  const prober = spawn('ip', ['netns', 'exec', client, process.execPath, '-e', PROBER], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(prober);
  const waiting = new Map<number, (ok: boolean) => void>();
  createInterface({ input: prober.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as { id: number; ok: boolean };
    waiting.get(r.id)?.(r.ok);
    waiting.delete(r.id);
  });
  let next = 0;
  const pair: NetnsPair = {
    server,
    client,
    server4,
    server6,
    client4,
    client6,
    port,
    run: (argv, stdin) => spawnRunner(['ip', 'netns', 'exec', server, ...argv], stdin),
    connects(src, timeoutMs = 1500) {
      const id = next++;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        prober.stdin!.write(`${JSON.stringify({ id, src, dst: src.includes(':') ? server6 : server4, port, timeoutMs })}\n`);
      });
    },
    close,
  };
  t.after(close);
  return pair;
}

/** Poll `cond` until it holds or `ms` pass (generous: the machine is shared). */
export async function eventually(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
