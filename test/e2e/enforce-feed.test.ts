// End to end: two `frontline serve` instances with separate SQLite stores
// (two mail servers that share no Redis). A serves its bans as a feed
// (enforce.feed.listen, a bearer token); B pulls it every second. A ban made
// on A with `frontline ban add` reaches B's policy decisions and B's firewall
// script; lifting it on A lifts it on B. The feed is read over real HTTP,
// also with curl-like plain text, and refuses a request without the token
// from off loopback (tested in test/unit/enforce-feed.test.ts with inject).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe, type ServingCli } from '../helpers/cli.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { freePort } from '../helpers/ports.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const TOKEN = 'e2e-feed-token-0123456789abcdef';

test('a ban on one server reaches the other through the feed, and is lifted with it', { timeout: 240_000 }, async (t) => {
  const cleanup: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch((e) => console.error('cleanup:', e));
  });
  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  cleanup.push(() => dns.close());
  const dir = mkdtempSync(join(tmpdir(), 'fl-e2e-feed-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'feed.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const feedPort = await freePort();
  const configA = join(dir, 'a.yaml');
  const configB = join(dir, 'b.yaml');
  const common = ['log: { level: warn }', 'dns: { timeout_ms: 500, retries: 0 }', 'web: { listen: null }'];
  writeFileSync(configA, [...common, `data_dir: ${join(dir, 'a')}`, 'enforce:', '  feed:', `    listen: 127.0.0.1:${feedPort}`, `    token_file: ${tokenFile}`, ''].join('\n'));
  writeFileSync(
    configB,
    [
      ...common,
      `data_dir: ${join(dir, 'b')}`,
      'enforce:',
      '  firewall: { backend: none }',
      '  feed:',
      '    pull:',
      `      - { name: mx-a, url: "http://127.0.0.1:${feedPort}", token_file: ${tokenFile}, interval_s: 1 }`,
      '',
    ].join('\n'),
  );

  const start = async (config: string): Promise<{ serve: ServingCli; client: PolicyClient }> => {
    const serve = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0'], { timeoutMs: 120_000 });
    cleanup.push(() => serve.stop());
    const client = await PolicyClient.connect({ host: '127.0.0.1', port: serve.port });
    cleanup.push(() => client.close());
    return { serve, client };
  };
  const a = await start(configA);
  assert.match(a.serve.stderr(), new RegExp(`feed http://127\\.0\\.0\\.1:${feedPort}`));
  const b = await start(configB);
  let seq = 0;
  const small = { client_address: '203.0.113.5', reverse_client_name: 'mail.small.test', helo_name: 'mail.small.test', sender: 'info@small.test' };
  const askB = () => b.client.ask(rcptRequest({ instance: `f${++seq}`, ...small }));
  const until = async (want: RegExp, maxMs = 15_000) => {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < maxMs) {
      last = await askB();
      if (want.test(last)) return Date.now() - t0;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`B: no answer matching ${want} within ${maxMs} ms; last: ${last}\n--- A ---\n${a.serve.stderr()}\n--- B ---\n${b.serve.stderr()}`);
  };
  assert.doesNotMatch(await askB(), /^554/);

  const banned = await runCli(['ban', 'add', '203.0.113.5', '--reason', 'brute force on sshd', '--duration', '1h', '--config', configA]);
  assert.equal(banned.code, 0, banned.stderr);
  const ms = await until(/^554 5\.7\.1 rejected: 203\.0\.113\.5 is banned \(feed: listed by feed mx-a: brute force on sshd\)/);
  t.diagnostic(`the ban reached B's decisions ${ms} ms after ban add on A (pull interval 1 s)`);

  // The plain-text feed, as any blocklist reader sees it.
  const text = await (await fetch(`http://127.0.0.1:${feedPort}/feed/v1/bans.txt`)).text();
  assert.deepEqual(text.trim().split('\n').slice(1), ['203.0.113.5/32']);
  const shown = await runCli(['ban', 'show', '203.0.113.5', '--json', '--config', configB]);
  assert.equal(JSON.parse(shown.stdout).source, 'feed:mx-a');
  const listed = await runCli(['list', 'show', 'feed-mx-a', '--config', configB]);
  assert.match(listed.stdout, /203\.0\.113\.5\/32/);
  // B's firewall would carry it too (the exact nft script; running it needs CAP_NET_ADMIN in a namespace: test/e2e/firewall-*.test.ts).
  const fw = await runCli(['firewall', 'sync', '--dry-run', '--backend', 'nft', '--config', configB]);
  assert.equal(fw.code, 0, fw.stderr);
  assert.match(fw.stdout, /203\.0\.113\.5/);

  const lifted = await runCli(['ban', 'del', '203.0.113.5', '--config', configA]);
  assert.equal(lifted.code, 0, lifted.stderr);
  await until(/^(DUNNO|PREPEND )/);
});
