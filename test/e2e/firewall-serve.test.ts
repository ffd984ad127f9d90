// `frontline serve` with enforce.firewall.backend: nft, as an admin runs it:
// `frontline ban add` in another process reaches the kernel through the
// store's change feed, `frontline ban del` takes it out, and
// `frontline firewall show` finds kernel and store in step. The `nft` serve
// and the CLI find first on PATH is a wrapper that runs the real one inside
// the test's server namespace, so nothing touches this host's firewall.
// With `--workers 2` only the worker in slot 0 keeps the firewall.
//
// Run: npm run test:e2e (as root; skipped without nft or ip outside CI).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from '../helpers/binaries.js';
import { runCli, startServe } from '../helpers/cli.js';
import { eventually, netnsPair } from '../helpers/netns.js';
import { children, workerSlot } from '../helpers/cluster.js';

/** A serve with enforce.firewall.backend: nft, whose nft runs in a namespace pair of its own; undefined: skipped. */
async function nftServe(t: TestContext, args: string[] = []) {
  const nft = requireBinary('nft', t);
  if (!nft) return undefined;
  const net = await netnsPair(t);
  if (!net) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fl-fw-serve-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'nft'), `#!/bin/sh\nexec ip netns exec ${net.server} ${nft} "$@"\n`);
  chmodSync(join(bin, 'nft'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  const config = join(dir, 'frontline.yaml');
  writeFileSync(
    config,
    [
      'log: { level: info }',
      'dns: { servers: [127.0.0.1], timeout_ms: 500, retries: 0 }',
      'web: { listen: null }',
      `data_dir: ${join(dir, 'data')}`,
      'enforce:',
      '  firewall:',
      '    backend: nft',
      `    ports: [${net.port}]`,
      '    action: reject',
      '',
    ].join('\n'),
  );
  const serve = await startServe(['--config', config, '--policy-listen', '127.0.0.1:0', ...args], { env, timeoutMs: 120_000 });
  t.after(() => serve.stop());
  await eventually('the first reconcile', async () => /firewall reconciled/.test(serve.stdout() + serve.stderr()));
  return { nft, net, env, config, serve };
}

test('serve keeps the nft sets in step with bans made by `frontline ban add`', { timeout: 240_000 }, async (t) => {
  const started = await nftServe(t);
  if (!started) return;
  const { nft, net, env, config } = started;

  const [a] = net.client4;
  assert.equal(await net.connects(a), true);
  const add = await runCli(['ban', 'add', a, '--duration', '1h', '--reason', 'e2e', '--config', config], { env });
  assert.equal(add.code, 0, add.stderr);
  await eventually('the ban made by another process is in the kernel', async () => !(await net.connects(a, 800)));

  const show = await runCli(['firewall', 'show', '--config', config], { env });
  assert.equal(show.code, 0, show.stdout + show.stderr);
  assert.match(show.stdout, /kernel: 1 bans/);
  assert.match(show.stdout, /in step/);

  const del = await runCli(['ban', 'del', `${a}/32`, '--config', config], { env });
  assert.equal(del.code, 0, del.stderr);
  await eventually('the lifted ban leaves the kernel', () => net.connects(a));

  // --dry-run prints the script, runs nothing.
  const dry = await runCli(['firewall', 'flush', '--dry-run', '--config', config], { env });
  assert.match(dry.stdout, /^\$ nft -f - <<EOF\nadd table inet frontline\ndelete table inet frontline\nEOF\n$/);
  assert.equal((await net.run([nft, 'list', 'table', 'inet', 'frontline'])).code, 0, 'the dry run left the table alone');
});

test('serve --workers 2: one worker keeps the firewall', { timeout: 240_000 }, async (t) => {
  const started = await nftServe(t, ['--workers', '2']);
  if (!started) return;
  const { net, env, config, serve } = started;
  const [a] = net.client4;
  const add = await runCli(['ban', 'add', a, '--duration', '1h', '--reason', 'e2e', '--config', config], { env });
  assert.equal(add.code, 0, add.stderr);
  await eventually('the ban is in the kernel', async () => !(await net.connects(a, 800)));
  // The workers' log lines are written in blocks, at least once a second.
  await new Promise((r) => setTimeout(r, 1500));
  const firewallPids = new Set(
    serve
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes('"msg":"firewall'))
      .map((l) => (JSON.parse(l) as { pid: number }).pid),
  );
  const workers = children(serve.child.pid!);
  assert.equal(workers.length, 2);
  assert.deepEqual([...firewallPids], workers.filter((p) => workerSlot(p) === '0'), serve.stdout());
});
