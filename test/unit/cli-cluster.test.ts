// `frontline serve --workers N`: workers share the TCP port and the unix
// socket, a dead worker is replaced, SIGTERM stops them all, and a worker that
// cannot start stops the whole server.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { loadZoneYaml, startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { runCli, START_TIMEOUT_MS, startServe } from '../helpers/cli.js';
import { children, workerSlot } from '../helpers/cluster.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { parseWorkersFlag, workerCount, workerExecArgv } from '../../src/cli/cluster.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const FORGER = rcptRequest({ client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test', recipient: 'u@dest.test' });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for a worker to start or a line to be said: generous, as it is start-up on a loaded machine that takes long (START_TIMEOUT_MS). */
async function until(what: string, ok: () => boolean, ms = START_TIMEOUT_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('worker count', () => {
  test('auto is one per CPU; numbers as given; garbage refused', () => {
    assert.equal(workerCount('auto'), os.availableParallelism());
    assert.equal(workerCount(3), 3);
    assert.equal(parseWorkersFlag('auto'), 'auto');
    assert.equal(parseWorkersFlag('2'), 2);
    assert.throws(() => parseWorkersFlag('0'), /--workers/);
    assert.throws(() => parseWorkersFlag('two'), /--workers/);
  });
});

describe('frontline serve --workers', () => {
  let dns: FixtureDns;
  const dir = mkdtempSync(join(os.tmpdir(), 'frontline-cluster-'));
  before(async () => {
    dns = await startFixtureDns(loadZoneYaml(WORLD));
  });
  after(async () => {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two workers answer on one port and one socket; a dead worker is replaced; SIGTERM stops all', async () => {
    const socket = join(dir, 'policy.sock');
    const s = await startServe(['--workers', '2', '--policy-listen', '127.0.0.1:0', '--policy-socket', socket, '--dns', dns.server, '--data-dir', join(dir, 'data')], { timeoutMs: 2 * START_TIMEOUT_MS });
    const primary = s.child.pid!;
    let workers: number[] = [];
    try {
      assert.match(s.stderr(), /frontline ready: policy server on 127\.0\.0\.1:\d+ and unix:.*, 2 workers/);
      assert.equal(s.stderr().match(/frontline ready/g)?.length, 1, 'one ready line for all workers');
      workers = children(primary);
      assert.equal(workers.length, 2);

      // Connections are dealt out to both workers; every one is answered.
      const clients = await Promise.all(Array.from({ length: 4 }, () => PolicyClient.connect({ host: '127.0.0.1', port: s.port })));
      const answers = await Promise.all(clients.map((c, i) => c.ask({ ...FORGER, instance: `i${i}` })));
      for (const a of answers) assert.match(a, /^554 5\.7\.1 /);
      const u = await PolicyClient.connect({ path: socket });
      assert.match(await u.ask({ ...FORGER, instance: 'unix' }), /^554 5\.7\.1 /);
      await u.close();
      await Promise.all(clients.map((c) => c.close()));

      // A worker killed outright is replaced (after the backoff), and the port keeps answering meanwhile.
      process.kill(workers[0], 'SIGKILL');
      await until('the restart notice', () => /worker \d+ died \(SIGKILL\); restarting in \d+ ms/.test(s.stderr()));
      const c = await PolicyClient.connect({ host: '127.0.0.1', port: s.port });
      assert.match(await c.ask({ ...FORGER, instance: 'during' }), /^554 5\.7\.1 /);
      await c.close();
      await until('a replacement worker', () => {
        const now = children(primary);
        return now.length === 2 && !now.includes(workers[0]);
      });
      workers = children(primary);
      const c2 = await PolicyClient.connect({ path: socket });
      assert.match(await c2.ask({ ...FORGER, instance: 'after' }), /^554 5\.7\.1 /);
      await c2.close();
    } finally {
      assert.equal(await s.stop(), 0);
    }
    await until('the workers to exit', () => workers.every((p) => !alive(p)), 5000);
    assert.match(s.stderr(), /SIGTERM, stopping 2 workers/);
  });

  test('a ready worker killed while the others start: start-up forks only the missing workers (3 workers, slots 0, 1, 2 once each)', async () => {
    let primary: number | undefined;
    const starting = startServe(['--workers', '3', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data-startup')], {
      onSpawn: (c) => (primary = c.pid),
      // Four workers start one after another (slot 0, 1, slot 0's replacement, 2), each as slow as a serve on a loaded machine.
      timeoutMs: 4 * START_TIMEOUT_MS,
    });
    try {
      // The primary forks the second worker when the first is ready: kill the first then, while the second starts.
      await until('the second worker', () => primary !== undefined && children(primary).length === 2);
    } catch (e) {
      process.kill(primary!, 'SIGKILL');
      await starting.catch(() => undefined);
      throw e;
    }
    const first = children(primary!).find((p) => workerSlot(p) === '0');
    assert.ok(first !== undefined, 'the first worker is in slot 0');
    process.kill(first, 'SIGKILL');
    const s = await starting;
    try {
      assert.match(s.stderr(), new RegExp(`worker ${first} died \\(SIGKILL\\); restarting in \\d+ ms`));
      assert.match(s.stderr(), /frontline ready: .*, 3 workers/);
      // Past the restart backoff (1 s): a stray fork would be there by now.
      await new Promise((r) => setTimeout(r, 1500));
      const workers = children(primary!);
      assert.equal(workers.length, 3, `workers: ${workers.map((p) => `${p} in slot ${workerSlot(p)}`).join(', ')}`);
      assert.ok(!workers.includes(first));
      assert.deepEqual(workers.map(workerSlot).sort(), ['0', '1', '2']);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  test('a worker that cannot start (address in use) stops the server with exit 1', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['serve', '--workers', '2', '--policy-listen', `127.0.0.1:${port}`, '--dns', dns.server, '--data-dir', join(dir, 'data2')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /EADDRINUSE/);
      assert.match(r.stderr, /exited before it was ready/);
    } finally {
      holder.close();
    }
  });

  test('workers from the config file; --workers 1 overrides it and runs no cluster', async () => {
    const config = join(dir, 'two.yaml');
    writeFileSync(config, 'workers: 2\n');
    const two = await startServe(['--config', config, '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data3')], { timeoutMs: 2 * START_TIMEOUT_MS });
    try {
      assert.match(two.stderr(), /, 2 workers/);
      assert.equal(children(two.child.pid!).length, 2);
    } finally {
      assert.equal(await two.stop(), 0);
    }
    const one = await startServe(['--config', config, '--workers', '1', '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data3')]);
    try {
      assert.doesNotMatch(one.stderr(), /workers/);
      assert.equal(children(one.child.pid!).length, 0);
      const c = await PolicyClient.connect({ host: '127.0.0.1', port: one.port });
      assert.match(await c.ask(FORGER), /^554 5\.7\.1 /);
      await c.close();
    } finally {
      assert.equal(await one.stop(), 0);
    }
  });
});

describe('worker node flags', () => {
  test('workers get a 128 MB semi-space and a scavenger without helper threads unless already given', () => {
    assert.deepEqual(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', '--max-semi-space-size=128', '--no-parallel-scavenge']);
    assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], ''), ['--max-semi-space-size=8', '--no-parallel-scavenge']);
    assert.deepEqual(workerExecArgv(['--parallel-scavenge'], '--max-semi-space-size=32 --trace-warnings'), ['--parallel-scavenge']);
    assert.deepEqual(workerExecArgv([], '--single-threaded-gc'), ['--max-semi-space-size=128']);
  });
});
