// Evidence shared between transactions (policy.evidence_cache): reused for
// the same client/HELO/sender, bounded by ttl_s and by the DNS answers it was
// built from, never for faults; reuse is marked and changes no verdict.
// DNS through the real cache over an in-memory zone; time by a manual clock.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope, Evidence, Verdict } from '../../src/core/types.js';
import { CachedResolver } from '../../src/dns/cached-resolver.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { CACHEABLE_CHECKS, EvidenceCache } from '../../src/policy/evidence-cache.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { ZoneQuerier } from '../helpers/zone-querier.js';

const ZONES = `
sender.example:
  - TTL: 300
  - TXT: "v=spf1 ip4:192.0.2.0/24 -all"
  - MX: [10, mx.sender.example]
mx.sender.example:
  - A: 192.0.2.1
1.2.0.192.in-addr.arpa:
  - PTR: mx.sender.example
short.example:
  - TTL: 10
  - TXT: "v=spf1 ip4:192.0.2.0/24 -all"
  - MX: [10, mx.sender.example]
slow.example:
  - TIMEOUT
77.2.0.192.in-addr.arpa:
  - PTR: good.sender.example
  - PTR: broken.sender.example
good.sender.example:
  - A: 192.0.2.77
broken.sender.example:
  - TIMEOUT
`;

interface Setup {
  policy: Policy;
  querier: ZoneQuerier;
  clock: ManualClock;
  cache: EvidenceCache;
}

function setup(config = ''): Setup {
  const clock = new ManualClock(1_000_000_000_000);
  const querier = new ZoneQuerier(zoneFromYaml(ZONES));
  const resolver = new CachedResolver(querier, { clock });
  const cfg = parseConfig(`headers:\n  authserv_id: mx.test\n${config}`, 'test.yaml');
  const policy = Policy.fromConfig(cfg, { resolver, clock });
  assert.ok(policy.evidenceCache, 'the evidence cache is on by default');
  return { policy, querier, clock, cache: policy.evidenceCache };
}

function env(over: Partial<Envelope> = {}): Envelope {
  return { clientIp: '192.0.2.1', helo: 'mx.sender.example', from: 'alice@sender.example', rcpts: ['bob@dest.example'], ...over };
}

async function decide(policy: Policy, e: Envelope): Promise<Verdict> {
  return policy.transaction({ seesMessage: false }).evaluate('rcpt', e);
}

function byCheck(v: Verdict): Map<string, Evidence> {
  return new Map(v.evidence.map((e) => [e.check, e]));
}

/**
 * What reuse must not change: the decision, its reply and headers, and every
 * piece of evidence the first run had (result, detail, data but `cached`).
 * Reused evidence settles at once, so the second run may list evidence the
 * first one was still computing when it decided: extra entries are allowed.
 */
function assertSameDecision(second: Verdict, first: Verdict): void {
  const { evidence: _a, ...restSecond } = second;
  const { evidence: _b, ...restFirst } = first;
  assert.deepEqual(restSecond, restFirst);
  const reused = byCheck(second);
  for (const e of first.evidence) {
    const r = reused.get(e.check);
    assert.ok(r, `${e.check} is in the second verdict`);
    const data = { ...r.data };
    delete data.cached;
    assert.deepEqual({ ...r, ms: e.ms, data }, { ...e, data: { ...e.data } });
  }
}

describe('evidence cache', () => {
  test('a second message from the same client and sender reuses the evidence: no DNS, marked, same verdict', async () => {
    const { policy, querier } = setup();
    const first = await decide(policy, env());
    const asked = querier.queries.length;
    assert.ok(asked > 0);
    const second = await decide(policy, env({ rcpts: ['carol@dest.example'] }));
    assert.equal(querier.queries.length, asked, 'no DNS question for the second message');
    assertSameDecision(second, first);
    const ev = byCheck(second);
    for (const check of ['spf', 'mx', 'sender_domain']) {
      const e = ev.get(check);
      assert.ok(e, `${check} evidence present`);
      assert.equal(e.ms, 0);
      assert.equal(e.data?.cached, true, `${check} says it was reused`);
      assert.equal(e.detail, byCheck(first).get(check)?.detail);
      assert.ok(Object.isFrozen(e));
    }
    assert.equal(byCheck(first).get('spf')?.data?.cached, undefined, 'computed evidence is not marked');
  });

  test('reused fcrdns_domain brings its fcrdns along, so the headers stay the same', async () => {
    const { policy } = setup(`policy:\n  rules:\n    - name: fc\n      if: fcrdns_domain=match\n      action: accept\n`);
    const first = await decide(policy, env());
    const second = await decide(policy, env());
    assert.equal(byCheck(second).get('fcrdns_domain')?.data?.cached, true);
    assert.equal(byCheck(second).get('fcrdns')?.result, 'pass');
    assert.deepEqual(second.headers, first.headers);
    assert.match(second.headers.find(([n]) => n === 'Authentication-Results')?.[1] ?? '', /iprev=pass/);
  });

  test('another sender, HELO or client is another question', async () => {
    const { policy, querier } = setup();
    await decide(policy, env());
    const spfAsked = querier.asked('TXT sender.example');
    const other = await decide(policy, env({ clientIp: '192.0.2.9' }));
    assert.notEqual(byCheck(other).get('spf')?.data?.cached, true);
    const bob = await decide(policy, env({ from: 'bob@sender.example' }));
    assert.notEqual(byCheck(bob).get('spf')?.data?.cached, true, 'SPF may use the local part (%{l})');
    assert.equal(byCheck(bob).get('mx')?.data?.cached, true, 'MX match depends on the domain only');
    assert.equal(querier.asked('TXT sender.example'), spfAsked, 'the DNS cache still answered');
  });

  test('never reused past the first expiry of the DNS answers it came from', async () => {
    const { policy, querier, clock } = setup();
    const e = env({ from: 'alice@short.example' });
    await decide(policy, e);
    clock.advance(9.9);
    assert.equal(byCheck(await decide(policy, e)).get('spf')?.data?.cached, true);
    clock.advance(0.1); // short.example's TXT (TTL 10) has expired
    const txt0 = querier.asked('TXT short.example');
    const again = await decide(policy, e);
    assert.notEqual(byCheck(again).get('spf')?.data?.cached, true);
    assert.equal(querier.asked('TXT short.example'), txt0 + 1);
  });

  test('never reused longer than ttl_s', async () => {
    const { policy, querier, clock } = setup(`policy:\n  evidence_cache:\n    ttl_s: 5\n`);
    await decide(policy, env());
    clock.advance(4.9);
    assert.equal(byCheck(await decide(policy, env())).get('spf')?.data?.cached, true);
    clock.advance(0.1);
    const n = querier.queries.length;
    const v = await decide(policy, env());
    assert.notEqual(byCheck(v).get('spf')?.data?.cached, true, 'computed again after ttl_s');
    assert.equal(querier.queries.length, n, 'from the DNS cache, whose answers are still fresh');
  });

  test('temperror is never reused, nor evidence built while a DNS question failed', async () => {
    const { policy, querier, cache } = setup(`policy:\n  rules:\n    - name: spf\n      if: spf=fail\n      action: reject\n    - name: fc\n      if: fcrdns=fail\n      action: reject\n`);
    const slow = env({ from: 'carol@slow.example' });
    for (let i = 0; i < 2; i++) {
      const v = await decide(policy, slow);
      const spf = byCheck(v).get('spf');
      assert.equal(spf?.result, 'temperror');
      assert.notEqual(spf?.data?.cached, true);
    }
    assert.equal(querier.asked('TXT slow.example'), 2);
    // fcrdns passes through good.sender.example although broken.sender.example timed out: not kept.
    const stats0 = cache.stats.uncacheable;
    const fc = env({ clientIp: '192.0.2.77' });
    for (let i = 0; i < 2; i++) {
      const ev = byCheck(await decide(policy, fc)).get('fcrdns');
      assert.equal(ev?.result, 'pass');
      assert.deepEqual(ev?.data?.faulted, ['broken.sender.example']);
      assert.notEqual(ev?.data?.cached, true);
    }
    assert.ok(cache.stats.uncacheable > stats0);
  });

  test('a changed world (DNSBL zone health) stops the reuse of that check', () => {
    const { cache } = setup();
    const e = env();
    const before = cache.keyOf('dnsbl', e);
    cache.invalidate('dnsbl');
    assert.notEqual(cache.keyOf('dnsbl', e), before);
    assert.equal(cache.keyOf('spf', e), cache.keyOf('spf', e));
  });

  test('only the checks that depend on client, HELO and sender are shared', () => {
    const { cache } = setup();
    assert.deepEqual([...CACHEABLE_CHECKS].sort(), ['dnsbl', 'dnswl', 'fcrdns', 'fcrdns_domain', 'helo', 'mx', 'sender_domain', 'spf', 'spf_helo']);
    for (const local of ['auth', 'my_networks', 'null_sender', 'rcpt_fqdn', 'dkim', 'greylist', 'banned']) assert.equal(cache.keyOf(local, env()), undefined);
    assert.equal(cache.keyOf('mx', env({ from: '' })), undefined, 'null sender: nothing to share');
  });

  test('off with ttl_s 0, max_entries 0, or a resolver without a DNS cache', () => {
    const clock = new ManualClock();
    const resolver = new CachedResolver(new ZoneQuerier(zoneFromYaml(ZONES)), { clock });
    for (const c of ['ttl_s: 0', 'max_entries: 0']) {
      const cfg = parseConfig(`policy:\n  evidence_cache:\n    ${c}\n`, 't.yaml');
      assert.equal(Policy.fromConfig(cfg, { resolver, clock }).evidenceCache, undefined, c);
    }
    const zr = new ZoneResolver(zoneFromYaml(ZONES));
    assert.equal(Policy.fromConfig(parseConfig('', 't.yaml'), { resolver: zr, clock }).evidenceCache, undefined);
  });

  test('max_entries bounds the cache', async () => {
    const { policy, cache } = setup(`policy:\n  evidence_cache:\n    max_entries: 3\n`);
    await decide(policy, env());
    await decide(policy, env({ clientIp: '192.0.2.9' }));
    assert.ok(cache.size <= 3);
    assert.ok(cache.stats.evictions > 0);
  });
});
