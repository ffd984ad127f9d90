// issue 17 item 6: smaller things a newcomer tripped over, each pinned by
// the failure it showed.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope, Verdict } from '../../src/core/types.js';
import { CachedResolver } from '../../src/dns/cached-resolver.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { ZoneQuerier } from '../helpers/zone-querier.js';
import { header, run, world } from '../helpers/policy-world.js';
import { runCli } from '../helpers/cli.js';

// The SPF record lives 10 s, the MX and its host an hour: after 20 s the
// cached MX match is still fresh, the cached SPF result is not.
const ZONES = `
d.example:
  - TTL: 10
  - TXT: "v=spf1 mx -all"
  - TTL: 3600
  - MX: [10, mx.d.example]
mx.d.example:
  - TTL: 3600
  - A: 192.0.2.1
slow.example:
  - TIMEOUT
dkimless.example:
  - MX: [10, mx.dkimless.example]
mx.dkimless.example:
  - A: 203.0.113.5
`;

function env(over: Partial<Envelope> = {}): Envelope {
  return { clientIp: '192.0.2.1', helo: 'mx.d.example', from: 'alice@d.example', rcpts: ['bob@dest.example'], ...over };
}

describe('Authentication-Results names every method known or cached for the message', () => {
  test('regression: a cached MX match decided first and spf=pass, still being computed, was left out', async () => {
    const clock = new ManualClock(1_000_000_000_000);
    const resolver = new CachedResolver(new ZoneQuerier(zoneFromYaml(ZONES)), { clock });
    const policy = Policy.fromConfig(parseConfig('headers: { authserv_id: mx.test }\nmy_networks: []\n', 'test.yaml'), { resolver, clock });
    const decide = (e: Envelope): Promise<Verdict> => policy.transaction({ seesMessage: false }).evaluate('rcpt', e);

    const first = await decide(env());
    assert.match(header(first, 'Authentication-Results') ?? '', /spf=pass smtp\.mailfrom=d\.example/);
    clock.advance(20);
    const second = await decide(env());
    assert.equal(second.action, 'continue');
    assert.equal(second.evidence.find((e) => e.check === 'mx')?.data?.cached, true, 'the MX match came from the cache');
    assert.equal(second.evidence.find((e) => e.check === 'spf')?.data?.cached, undefined, 'SPF was computed again');
    assert.match(header(second, 'Authentication-Results') ?? '', /^mx\.test; spf=pass smtp\.mailfrom=d\.example/);
  });

  test('evidence in the shared cache is named even when the deciding rule never asked for it', async () => {
    const clock = new ManualClock(1_000_000_000_000);
    const resolver = new CachedResolver(new ZoneQuerier(zoneFromYaml(ZONES)), { clock });
    const cfg = 'headers: { authserv_id: mx.test }\nmy_networks: []\nlists:\n  allow:\n    type: domain\n    match: rcpt\n    entries: [vip.example]\n';
    const policy = Policy.fromConfig(parseConfig(cfg, 'test.yaml'), { resolver, clock });
    // A message the OR rule judged (SPF computed and cached), then one to an allow-listed
    // recipient, accepted before any DNS question.
    await policy.transaction({ seesMessage: false }).evaluate('rcpt', env());
    const v = await policy.transaction({ seesMessage: false }).evaluate('rcpt', env({ rcpts: ['boss@vip.example'] }));
    assert.equal(v.rule, 'allowlist');
    assert.match(header(v, 'Authentication-Results') ?? '', /spf=pass smtp\.mailfrom=d\.example/);
  });
});

describe('rule names and texts', () => {
  test('a DNS fault in the sender-domain check is logged under its own rule, not sender-fqdn', async () => {
    const v = await run(world(ZONES), { clientIp: '192.0.2.77', helo: 'pc', from: 'x@slow.example', rcpts: ['y@dest.example'] });
    assert.deepEqual([v.action, v.code, v.status, v.rule], ['defer', 451, '4.4.3', 'sender-domain-fault']);
    assert.match(v.text ?? '', /^temporary failure: sender_domain: sender domain slow\.example: DNS /);
  });

  test('with on_fault: continue that rule is left out and the fault continues', async () => {
    const w = world(ZONES, 'policy: { on_fault: continue }\n');
    assert.ok(!w.policy.rules.some((r) => r.name === 'sender-domain-fault'));
    const v = await run(w, { clientIp: '192.0.2.77', helo: 'pc', from: 'x@slow.example', rcpts: ['y@dest.example'] });
    assert.equal(v.action, 'continue');
  });

  test('the OR rule names DKIM where the message is seen (gate), not in the Postfix policy server', async () => {
    const forger = { clientIp: '192.0.2.77', helo: 'pc', from: 'x@dkimless.example', rcpts: ['y@dest.example'] };
    const gate = await run(world(ZONES, 'my_networks: []\n'), forger, { stages: ['rcpt', 'eom'], seesMessage: true });
    assert.equal(gate.rule, 'sender-authorised');
    assert.match(gate.text ?? '', /To fix: list 192\.0\.2\.77 in the SPF record of dkimless\.example, sign it with a DKIM key of dkimless\.example, or send through dkimless\.example's own MX hosts\.$/);
    const postfix = await run(world(ZONES, 'my_networks: []\n'), forger);
    assert.equal(postfix.rule, 'sender-authorised');
    assert.match(postfix.text ?? '', /To fix: list 192\.0\.2\.77 in the SPF record of dkimless\.example, or send through dkimless\.example's own MX hosts\.$/);
  });
});

describe('the CLI', () => {
  test('serve --help names the data directory actually used (/var/lib/frontline as root)', async () => {
    const r = await runCli(['serve', '--help']);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.replace(/\s+/g, ' ');
    if (process.getuid?.() === 0) {
      assert.match(text, /data in \/var\/lib\/frontline\)/);
      assert.doesNotMatch(text, /data in \.\/data/);
    } else {
      assert.match(text, /data in \.\/data, \/var\/lib\/frontline as root\)/);
    }
  });
});
