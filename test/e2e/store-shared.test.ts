// End to end: two `frontline serve` instances (A and B, two MX hosts) on one
// private redis-server. A ban made on one is enforced by the other within a
// second (made with `frontline ban add` against the same Redis, and made by
// a spamtrap hit through A's policy protocol); a greylisted triplet first
// seen on A passes on B after the delay; a rate limit is one budget for both.
//
// Run: npm run test:e2e  (needs redis-server; skipped loudly without it,
// failed under CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from '../helpers/binaries.js';
import { startRedis } from '../helpers/redis-server.js';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { runCli, startServe, type ServingCli } from '../helpers/cli.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;

/** A provider host whose SPF passes (world.yaml: bigprovider.test authorises 198.51.100.0/24). */
const PROVIDER = { helo_name: 'mx.bigprovider.test', sender: 'alice@bigprovider.test', reverse_client_name: 'unknown' };

test('two frontline instances share bans, greylist and rate limits through one Redis', { timeout: 120_000 }, async (t) => {
  if (!requireBinary('redis-server', t)) return;
  const cleanup: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch((e) => console.error('cleanup:', e));
  });

  const redis = await startRedis();
  assert.ok(redis);
  cleanup.push(() => redis.close());
  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  cleanup.push(() => dns.close());
  const dir = mkdtempSync(join(tmpdir(), 'fl-e2e-shared-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'frontline.yaml');
  writeFileSync(
    config,
    [
      'log: { level: warn }',
      'dns: { timeout_ms: 500, retries: 0 }',
      `store: { backend: redis, redis: { url: "${redis.url}", prefix: "e2e-${process.pid}:" } }`,
      'greylist: { enabled: true, delay_s: 2 }',
      'ratelimits:',
      '  - { name: per-user, key: sasl_user, capacity: 3, per_s: 3600 }',
      'spamtraps: [trap@dest.test]',
      '',
    ].join('\n'),
  );

  const start = async (name: string): Promise<{ serve: ServingCli; client: PolicyClient }> => {
    const serve = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', join(dir, name)]);
    cleanup.push(() => serve.stop());
    assert.match(serve.stderr(), /store redis redis:\/\/127\.0\.0\.1:/);
    const client = await PolicyClient.connect({ host: '127.0.0.1', port: serve.port });
    cleanup.push(() => client.close());
    return { serve, client };
  };
  const a = await start('a');
  const b = await start('b');
  let seq = 0;
  const ask = (c: PolicyClient, attrs: Record<string, string>) => c.ask(rcptRequest({ instance: `m${++seq}`, client_port: String(20000 + seq), ...attrs }));

  /** Ask `c` about the client until the answer matches; how long it took from `since`. */
  const until = async (c: PolicyClient, attrs: Record<string, string>, want: RegExp, since: number, maxMs = 5000) => {
    let last = '';
    while (Date.now() - since < maxMs) {
      last = await ask(c, attrs);
      if (want.test(last)) return { answer: last, ms: Date.now() - since };
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no answer matching ${want} within ${maxMs} ms; last: ${last}\n--- A ---\n${a.serve.stderr()}\n--- B ---\n${b.serve.stderr()}`);
  };

  await t.test('a ban made with `frontline ban add` on the shared Redis is enforced by both within a second', async (st) => {
    const small = { client_address: '203.0.113.5', reverse_client_name: 'mail.small.test', helo_name: 'mail.small.test', sender: 'info@small.test' };
    assert.doesNotMatch(await ask(b.client, small), /^554/);
    const r = await runCli(['ban', 'add', '203.0.113.5', '--reason', 'manual e2e ban', '--duration', '10m', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    const since = Date.now();
    const onB = await until(b.client, small, /^554 5\.7\.1 rejected: 203\.0\.113\.5 is banned \(manual: manual e2e ban\)/, since);
    const onA = await until(a.client, small, /^554 5\.7\.1 /, since);
    assert.ok(onB.ms < 1000, `B enforced the ban after ${onB.ms} ms`);
    assert.ok(onA.ms < 1000, `A enforced the ban after ${onA.ms} ms`);
    st.diagnostic(`ban enforced on B after ${onB.ms} ms, on A after ${onA.ms} ms`);
  });

  await t.test('a spamtrap hit through A bans the client on B within a second', async (st) => {
    const spammer = { ...PROVIDER, client_address: '198.51.100.20' };
    const trapped = await ask(a.client, { ...spammer, recipient: 'trap@dest.test' });
    const since = Date.now();
    assert.equal(trapped, '550 5.1.1 <trap@dest.test>: recipient address rejected: user unknown');
    const onB = await until(b.client, { ...spammer, recipient: 'u@dest.test' }, /^554 5\.7\.1 rejected: 198\.51\.100\.20 is banned \(spamtrap: sent to spamtrap <trap@dest\.test>\)/, since);
    assert.ok(onB.ms < 1000, `B enforced the spamtrap ban after ${onB.ms} ms`);
    st.diagnostic(`spamtrap ban enforced on B after ${onB.ms} ms`);
    const shown = await runCli(['ban', 'show', '198.51.100.20', '--json', '--config', config]);
    assert.equal(JSON.parse(shown.stdout).category, 'spamtrap');
  });

  await t.test('a triplet greylisted on A passes on B after the delay, from another host of the SPF pool too', async () => {
    const sender = { ...PROVIDER, client_address: '198.51.100.30', recipient: 'u@dest.test' };
    const first = await ask(a.client, sender);
    const t0 = Date.now();
    assert.equal(first, '450 4.7.1 Greylisted, try again in 2 seconds');
    assert.match(await ask(b.client, sender), /^450 4\.7\.1 Greylisted, try again in [12] seconds$/, 'B knows the triplet: it is not a first attempt there');
    await new Promise((r) => setTimeout(r, 2100 - (Date.now() - t0)));
    const retry = await ask(b.client, { ...sender, client_address: '198.51.100.31' });
    assert.match(retry, /^(DUNNO|PREPEND )/, `the retry from another pool host passes on B: ${retry}`);
    assert.match(await ask(a.client, sender), /^(DUNNO|PREPEND )/);
    const grey = await runCli(['grey', 'list', '--json', '--config', config]);
    const keys = (JSON.parse(grey.stdout) as Array<{ key: string }>).map((e) => e.key);
    assert.ok(keys.includes('spf:bigprovider.test|alice@bigprovider.test|u@dest.test'), keys.join('\n'));
  });

  await t.test('a rate limit is one budget across both hosts', async () => {
    const user = { client_address: '192.0.2.99', helo_name: 'laptop', sender: 'joe@bigisp.test', sasl_method: 'PLAIN', sasl_username: 'joe' };
    const answers = [await ask(a.client, user), await ask(b.client, user), await ask(a.client, user), await ask(b.client, user)];
    for (const x of answers.slice(0, 3)) assert.match(x, /^(DUNNO|PREPEND )/);
    assert.match(answers[3], /^450 4\.7\.1 rate limit per-user exceeded \(sasl_user joe\); try again in \d+ seconds$/);
    assert.match(await ask(a.client, user), /^450 4\.7\.1 rate limit per-user/);
  });
});
