// The store's checks through the real policy engine and the default policy:
// banned, spamtrap, greylist (SPF-keyed), rate limits, store lists, store
// faults, and the decision log. In-memory SQLite, in-memory DNS, a manual
// clock: no network, no sleeps.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope, Verdict } from '../../src/core/types.js';
import { parseConfig } from '../../src/config/load.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { Policy } from '../../src/policy/policy.js';
import { openStore, StoreUnavailableError, DecisionLog, decisionEvent, type Store } from '../../src/store/index.js';
import { cleanEvent } from '../../src/store/events.js';
import { PolicyServer } from '../../src/postfix/policy-server.js';
import { createLogger } from '../../src/log.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';

const ZONES = `
pool.example:
  - TXT: "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all"
  - MX: [10, mx.pool.example]
mx.pool.example:
  - A: 192.0.2.1
small.example:
  - MX: [10, mail.small.example]
mail.small.example:
  - A: 203.0.113.5
5.113.0.203.in-addr.arpa:
  - PTR: mail.small.example
other.example:
  - MX: [10, mail.other.example]
mail.other.example:
  - A: 203.0.113.77
77.113.0.203.in-addr.arpa:
  - PTR: mail.other.example
`;

const stores: Store[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

interface Setup {
  clock: ManualClock;
  store: Store;
  policy: Policy;
  /** One message, one transaction: each recipient in turn at RCPT; the last verdict. */
  send(env: Partial<Envelope> & { clientIp: string }, rcpts?: string[]): Promise<Verdict>;
}

async function setup(configYaml = '', opts: { store?: (s: Store) => Store } = {}): Promise<Setup> {
  const clock = new ManualClock(Date.parse('2024-06-01T00:00:00Z'));
  const cfg = parseConfig(configYaml, 'test.yaml');
  cfg.headers.authserv_id = 'mx.test';
  const real = await openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock, purgeIntervalSeconds: 0, neverBan: cfg.my_networks, neverBanLists: ['allow'], random: () => 0.5 });
  stores.push(real);
  const store = opts.store ? opts.store(real) : real;
  const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zoneFromYaml(ZONES)), clock, store });
  return {
    clock,
    store: real,
    policy,
    async send(env, rcpts = ['user@dest.example']) {
      const tx = policy.transaction({ seesMessage: false });
      let v: Verdict | undefined;
      for (let i = 1; i <= rcpts.length; i++) v = await tx.evaluate('rcpt', { rcpts: rcpts.slice(0, i), ...env });
      return v as Verdict;
    },
  };
}

const POOL = { helo: 'mx.pool.example', from: 'news@pool.example' };
const SMALL = { clientIp: '203.0.113.5', helo: 'mail.small.example', from: 'info@small.example' };

/** A store whose named methods fail as if Redis were down. */
function failing(methods: string[]): (s: Store) => Store {
  return (s) =>
    new Proxy(s, {
      get(target, prop, receiver) {
        if (typeof prop === 'string' && methods.includes(prop)) {
          return async () => {
            throw new StoreUnavailableError('redis down (test)');
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
}

describe('config: store, greylist, ratelimits, spamtraps', () => {
  test('defaults', () => {
    const c = parseConfig('', 'x.yaml');
    assert.equal(c.store.backend, 'sqlite');
    assert.equal(c.store.path, null);
    assert.deepEqual(c.store.redis, { url: 'redis://127.0.0.1:6379', prefix: 'fl:', min_replicas: 0, replica_wait_ms: 1000 });
    assert.equal(c.store.on_unavailable, 'defer');
    assert.deepEqual(c.store.bans, { base_s: 3600, factor: 2, max_s: 2592000, jitter: 0.1, forget_after_s: 7776000, min_prefix: { ipv4: 16, ipv6: 32 } });
    assert.deepEqual(c.store.events, { max_age_s: 2592000, max_rows: 1000000, writer_nice: 19 });
    assert.equal(c.greylist.enabled, false);
    assert.equal(c.greylist.delay_s, 300);
    assert.deepEqual(c.greylist.subnet, { v4: 24, v6: 64 });
    assert.deepEqual(c.ratelimits, []);
    assert.deepEqual(c.spamtraps, []);
  });

  test('errors name file:line:col and the key', () => {
    const bad = [
      'store: { backend: mysql }',
      'store:\n  bans: { base_s: 600, max_s: 60 }',
      'store: { never_ban: [10.0.0.0/33] }',
      'store: { redis: { url: "localhost:6379" } }',
      'greylist: { subnet: { v4: 40 } }',
      'ratelimits:\n  - { name: a, key: client, capacity: 1, per_s: 1 }\n  - { name: a, key: sender, capacity: 1, per_s: 1 }',
      'ratelimits:\n  - { name: a, key: ip, capacity: 1, per_s: 1 }',
      'spamtraps: [not-an-address]',
      'store: { events: { writer_nice: 20 } }',
    ];
    const want = [
      /x\.yaml:1:19: store\.backend: expected one of sqlite\|redis/,
      /x\.yaml:2:31: store\.bans\.max_s: must be ≥ bans\.base_s \(600\)/,
      /x\.yaml:1:22: store\.never_ban\[0\]: expected an IP address or CIDR/,
      /store\.redis\.url: expected redis:\/\//,
      /greylist\.subnet\.v4: /,
      /x\.yaml:3:13: ratelimits\[1\]\.name: duplicate rate limit name \(also ratelimits\[0\]\)/,
      /ratelimits\[0\]\.key: expected one of client\|sender\|sasl_user\|rcpt_domain/,
      /spamtraps\[0\]: expected an e-mail address/,
      /store\.events\.writer_nice: /,
    ];
    bad.forEach((yaml, i) => assert.throws(() => parseConfig(yaml, 'x.yaml'), (e: Error) => want[i].test(e.message) || assert.fail(`${yaml}\n${e.message}`)));
  });
});

describe('banned', () => {
  test('a banned client is refused 554 5.7.1 with category, reason and expiry; others pass', async () => {
    const s = await setup();
    await s.store.ban({ cidr: '203.0.113.0/24', reason: 'dictionary attack', category: 'brute-force', source: 'test', durationSeconds: 3600 });
    const v = await s.send(SMALL);
    assert.equal(v.action, 'reject');
    assert.equal(v.rule, 'banned');
    assert.equal(v.code, 554);
    assert.equal(v.status, '5.7.1');
    assert.equal(v.text, 'rejected: 203.0.113.5 is banned (brute-force: dictionary attack) until 2024-06-01T01:00:00Z');
    const ok = await s.send({ clientIp: '192.0.2.20', ...POOL });
    assert.equal(ok.action, 'continue');
    assert.equal(ok.evidence.find((e) => e.check === 'banned')?.result, 'unlisted');
  });

  test('bans expire by themselves', async () => {
    const s = await setup();
    await s.store.ban({ cidr: '203.0.113.5', reason: 'x', category: 'manual', source: 'test', durationSeconds: 60 });
    assert.equal((await s.send(SMALL)).rule, 'banned');
    s.clock.advance(61);
    assert.equal((await s.send(SMALL)).action, 'continue');
  });

  test("whitelists win: the store's allow list accepts a banned client, my_networks too", async () => {
    const s = await setup('my_networks: [127.0.0.0/8, 198.51.100.0/24]');
    await s.store.ban({ cidr: '203.0.113.5', reason: 'x', category: 'manual', source: 'test' });
    await s.store.listAdd('allow', '203.0.113.5', { source: 'test' });
    const v = await s.send(SMALL);
    assert.equal(v.action, 'accept');
    assert.equal(v.rule, 'allowlist');
    // my_networks are never banned at all
    const r = await s.store.ban({ cidr: '198.51.100.7', reason: 'x', category: 'manual', source: 'test' });
    assert.equal(r.refused, true);
  });
});

describe('spamtrap', () => {
  test('mail to a trap is refused like an unknown user, the client banned and its greylist entries dropped', async () => {
    const s = await setup('spamtraps: [Trap@Dest.Example]\ngreylist: { enabled: true }');
    const first = await s.send({ clientIp: '192.0.2.66', ...POOL });
    assert.equal(first.rule, 'greylist');
    assert.equal((await s.store.greyList()).length, 1);
    const v = await s.send({ clientIp: '192.0.2.66', ...POOL }, ['trap@dest.example']);
    assert.equal(v.action, 'reject');
    assert.equal(v.rule, 'spamtrap');
    assert.equal(v.code, 550);
    assert.equal(v.status, '5.1.1');
    assert.equal(v.text, '<trap@dest.example>: recipient address rejected: user unknown');
    const ev = v.evidence.find((e) => e.check === 'spamtrap');
    assert.equal(ev?.data?.banned, true);
    assert.equal(ev?.data?.greylistDropped, 1);
    const ban = await s.store.getBan('192.0.2.66');
    assert.equal(ban?.category, 'spamtrap');
    assert.equal(ban?.reason, 'sent to spamtrap <trap@dest.example>');
    assert.equal((await s.store.greyList()).length, 0);
    // Its next message, to anyone, meets the ban.
    const next = await s.send({ clientIp: '192.0.2.66', ...POOL });
    assert.equal(next.rule, 'banned');
    assert.match(next.text ?? '', /banned \(spamtrap: sent to spamtrap <trap@dest\.example>\)/);
  });

  test("the store's address list `spamtraps` holds traps too", async () => {
    const s = await setup();
    await s.store.listAdd('spamtraps', 'old-address@dest.example', { source: 'test' });
    const v = await s.send(SMALL, ['old-address@dest.example']);
    assert.equal(v.rule, 'spamtrap');
    assert.equal((await s.store.getBan('203.0.113.5'))?.category, 'spamtrap');
  });
});

describe('greylist', () => {
  const CFG = 'greylist: { enabled: true, delay_s: 300, auto_allow_after: 0 }';

  test('first attempt deferred with the seconds left; too early deferred again; after the delay accepted', async () => {
    const s = await setup(CFG);
    const v1 = await s.send(SMALL);
    assert.equal(v1.action, 'defer');
    assert.equal(v1.rule, 'greylist');
    assert.equal(v1.code, 450);
    assert.equal(v1.status, '4.7.1');
    assert.equal(v1.text, 'Greylisted, try again in 300 seconds');
    s.clock.advance(100);
    assert.equal((await s.send(SMALL)).text, 'Greylisted, try again in 200 seconds');
    s.clock.advance(201);
    const v3 = await s.send(SMALL);
    assert.equal(v3.action, 'continue');
    assert.equal(v3.evidence.find((e) => e.check === 'greylist')?.result, 'pass');
    // Known from now on.
    s.clock.advance(86400);
    assert.equal((await s.send(SMALL)).action, 'continue');
  });

  test('with SPF pass the key is the SPF domain: a retry from another subnet of the pool passes at once', async () => {
    const s = await setup(CFG);
    const v1 = await s.send({ clientIp: '192.0.2.20', ...POOL });
    assert.equal(v1.rule, 'greylist');
    assert.equal(v1.evidence.find((e) => e.check === 'greylist')?.data?.origin, 'spf:pool.example');
    s.clock.advance(301);
    const v2 = await s.send({ clientIp: '198.51.100.9', ...POOL });
    assert.equal(v2.action, 'continue', JSON.stringify(v2.evidence));
  });

  test('without SPF pass the key is the /24: the same subnet passes, another subnet starts over', async () => {
    const s = await setup(`${CFG}\npolicy:\n  rules:\n    - { name: greylist, if: greylist=fail, action: defer }`);
    assert.equal((await s.send(SMALL)).rule, 'greylist');
    s.clock.advance(301);
    const other = await s.send({ ...SMALL, clientIp: '192.0.2.20' });
    assert.equal(other.rule, 'greylist');
    assert.equal(other.evidence.find((e) => e.check === 'greylist')?.data?.origin, 'net:192.0.2.0/24');
    assert.equal((await s.send({ ...SMALL, clientIp: '203.0.113.77' })).action, 'continue');
  });

  test('only_untrusted: a client with forward-confirmed reverse DNS is not greylisted', async () => {
    const s = await setup('greylist: { enabled: true, only_untrusted: true }');
    const trusted = await s.send(SMALL);
    assert.equal(trusted.action, 'continue');
    assert.equal(trusted.evidence.find((e) => e.check === 'greylist')?.result, 'skipped');
    assert.equal((await s.send({ clientIp: '192.0.2.20', ...POOL })).rule, 'greylist');
  });

  test('authenticated clients and my networks are never greylisted (rule order)', async () => {
    const s = await setup(CFG);
    assert.equal((await s.send({ ...SMALL, saslUser: 'joe' })).rule, 'authenticated');
    assert.equal((await s.send({ ...SMALL, clientIp: '127.0.0.1' })).rule, 'my-networks');
  });

  test('greylisting is opt-in: off by default', async () => {
    const s = await setup();
    assert.equal((await s.send(SMALL)).action, 'continue');
    assert.ok(s.policy.skipped.some((r) => r.rule === 'greylist'));
  });

  test('store down: 451 4.3.0 (never 5xx); with on_unavailable: continue the mail passes', async () => {
    const down = await setup(CFG, { store: failing(['greyGet', 'greyPut', 'greyAttempt', 'greyClientPasses', 'greyClientPass']) });
    const v = await down.send(SMALL);
    assert.equal(v.action, 'defer');
    assert.equal(v.code, 451);
    assert.equal(v.status, '4.3.0');
    assert.match(v.text ?? '', /^temporary failure: greylist: store unavailable: redis down/);
    const lenient = await setup(`${CFG}\nstore: { on_unavailable: continue }`, { store: failing(['greyGet', 'greyPut', 'greyAttempt', 'greyClientPasses', 'greyClientPass']) });
    const v2 = await lenient.send(SMALL);
    assert.equal(v2.action, 'continue');
    assert.equal(v2.evidence.find((e) => e.check === 'greylist')?.result, 'none');
  });
});

describe('ratelimit', () => {
  test('per client: the message after the burst is deferred 450 4.7.1 with the wait; tokens come back', async () => {
    const s = await setup('ratelimits:\n  - { name: per-client, key: client, capacity: 2, per_s: 60 }');
    assert.equal((await s.send(SMALL, ['a@dest.example', 'b@dest.example', 'c@dest.example'])).action, 'continue');
    assert.equal((await s.send(SMALL)).action, 'continue');
    const v = await s.send(SMALL);
    assert.equal(v.action, 'defer');
    assert.equal(v.rule, 'ratelimit');
    assert.equal(v.code, 450);
    assert.equal(v.text, 'rate limit per-client exceeded (client 203.0.113.5); try again in 30 seconds');
    s.clock.advance(30);
    assert.equal((await s.send(SMALL)).action, 'continue');
    // Another client has its own bucket.
    assert.equal((await s.send({ clientIp: '192.0.2.20', ...POOL })).action, 'continue');
  });

  test('per SASL user: applies to authenticated clients (the rule comes before authenticated)', async () => {
    const s = await setup('ratelimits:\n  - { name: outbound, key: sasl_user, capacity: 1, per_s: 3600 }');
    assert.equal((await s.send({ ...SMALL, saslUser: 'joe' })).rule, 'authenticated');
    const v = await s.send({ ...SMALL, clientIp: '192.0.2.99', saslUser: 'joe' });
    assert.equal(v.rule, 'ratelimit');
    assert.equal(v.action, 'defer');
    assert.equal((await s.send({ ...SMALL, saslUser: 'ann' })).rule, 'authenticated');
  });

  test('per recipient domain: counts recipients; action log only reports', async () => {
    const s = await setup(
      'ratelimits:\n  - { name: per-domain, key: rcpt_domain, capacity: 2, per_s: 3600 }\n  - { name: watch, key: client, capacity: 1, per_s: 3600, action: log }',
    );
    const tx = s.policy.transaction({ seesMessage: false });
    const rcpts = ['a@dest.example', 'b@dest.example', 'c@dest.example', 'd@else.example'];
    const verdicts: Verdict[] = [];
    for (let i = 1; i <= rcpts.length; i++) verdicts.push(await tx.evaluate('rcpt', { ...SMALL, rcpts: rcpts.slice(0, i) }));
    assert.deepEqual(
      verdicts.map((v) => v.action),
      ['continue', 'continue', 'defer', 'continue'],
    );
    const again = await s.send(SMALL, ['x@else.example']);
    assert.equal(again.action, 'continue');
    const ev = again.evidence.find((e) => e.check === 'ratelimit');
    assert.equal(ev?.result, 'unlisted');
    assert.deepEqual(ev?.data?.logged, ['watch']);
  });

  test('store down: the rate limit rule defers 451, it never refuses', async () => {
    const s = await setup('ratelimits:\n  - { name: c, key: client, capacity: 5, per_s: 60 }', { store: failing(['rateTake']) });
    const v = await s.send(SMALL);
    assert.equal(v.code, 451);
    assert.equal(v.rule, 'ratelimit');
  });
});

describe('store lists', () => {
  test('list:deny in the store refuses the sender domain; the config list and the store list of one name both count', async () => {
    const s = await setup('lists:\n  deny: { type: ip, entries: [192.0.2.250] }');
    assert.equal((await s.send({ clientIp: '192.0.2.250', ...POOL })).rule, 'denylist');
    await s.store.listAdd('deny', '198.51.100.3', { source: 'test' });
    const v = await s.send({ clientIp: '198.51.100.3', ...POOL });
    assert.equal(v.rule, 'denylist');
    assert.match(v.text ?? '', /client 198\.51\.100\.3 is on the deny list/);
  });

  test('a list only in the store: domain entries match the sender domain', async () => {
    const s = await setup();
    await s.store.listAdd('deny', 'small.example', { source: 'test' });
    const v = await s.send(SMALL);
    assert.equal(v.rule, 'denylist');
    assert.match(v.text ?? '', /sender small\.example is on the deny list/);
  });
});

describe('decision log', () => {
  test('decisionEvent keeps what explains the decision', () => {
    const v: Verdict = {
      action: 'reject',
      code: 554,
      status: '5.7.1',
      text: 'no',
      headers: [],
      rule: 'banned',
      stage: 'rcpt',
      evidence: [{ check: 'banned', result: 'listed', detail: 'x'.repeat(400), ms: 0.1, data: { big: 'y' } }],
    };
    const e = decisionEvent(
      v,
      { clientIp: '192.0.2.1', clientPtr: 'h.example', helo: 'h', from: 'a@b.example', rcpts: ['one@d.example', 'two@d.example'], saslUser: 'me' },
      1000,
      'inst',
    );
    assert.deepEqual(e.rcpts, ['two@d.example']);
    assert.equal(e.sessionId, 'inst');
    assert.equal(e.code, 554);
    // The verdict's own evidence, compacted by the store as it serialises it (once, not twice).
    assert.equal(e.evidence, v.evidence);
    const stored = cleanEvent(e);
    assert.equal(stored.evidence[0].detail?.length, 300);
    // What a replay needs: the data conditions compare, the PTR, the SASL login, how many recipients so far.
    assert.deepEqual(stored.evidence[0].data, { big: 'y' });
    assert.equal(e.clientPtr, 'h.example');
    assert.equal(e.saslUser, 'me');
    assert.equal(e.rcptCount, 2);
  });

  test('a failing store is logged (at most every 10 s), never thrown', async () => {
    const warnings: unknown[] = [];
    const clock = new ManualClock(0);
    const log = new DecisionLog(
      { logEvent: () => Promise.reject(new StoreUnavailableError('down')) },
      { info() {}, warn: (o) => warnings.push(o), error() {} },
      clock,
    );
    const v: Verdict = { action: 'continue', headers: [], rule: 'default', stage: 'rcpt', evidence: [] };
    for (let i = 0; i < 5; i++) log.record(v, { clientIp: '192.0.2.1', rcpts: [] });
    await log.flush();
    assert.equal(warnings.length, 1);
    clock.advance(11);
    log.record(v, { clientIp: '192.0.2.1', rcpts: [] });
    await log.flush();
    assert.equal(warnings.length, 2);
    assert.equal((warnings[1] as { lost: number }).lost, 5);
  });

  test('the log keeps the score and what a test-mode rule would have refused (regression: both were dropped)', async () => {
    const s = await setup(
      'policy:\n  rules:\n    - { name: small-points, if: "helo.fqdn=true", score: 2 }\n    - { name: trial-refusal, if: "spf!=pass", action: reject, mode: test, text: "would refuse {from_domain}" }',
    );
    const log = new DecisionLog(s.store, { info() {}, warn() {}, error() {} }, s.clock);
    const env = { ...SMALL, rcpts: ['user@dest.example'] };
    const v = await s.send(SMALL);
    log.record(v, env);
    await log.flush();
    const [e] = await s.store.queryEvents({ wouldHave: true });
    assert.ok(e, 'the decision with a test-mode finding is found by wouldHave');
    assert.equal(e.score, v.score);
    assert.equal(e.score, 2);
    assert.deepEqual(e.wouldHave, [{ rule: 'trial-refusal', action: 'reject', code: 554, text: 'would refuse small.example' }]);
  });

  test('the policy server writes every decision to the store, with the instance as session', async () => {
    const s = await setup();
    const log = new DecisionLog(s.store, { info() {}, warn() {}, error() {} }, s.clock);
    const server = new PolicyServer({
      policy: s.policy,
      logger: createLogger({ level: 'silent' }),
      acceptReply: 'DUNNO',
      onFault: 'defer',
      onDecision: (v, env, session) => log.record(v, env, session),
    });
    const addr = await server.listenTcp('127.0.0.1', 0);
    const c = await PolicyClient.connect({ host: '127.0.0.1', port: addr.port });
    await s.store.ban({ cidr: '192.0.2.44', reason: 'x', category: 'manual', source: 'test' });
    const a1 = await c.ask(rcptRequest({ client_address: '192.0.2.44', helo_name: POOL.helo, sender: POOL.from, instance: 'i1' }));
    assert.match(a1, /^554 5\.7\.1 rejected: 192\.0\.2\.44 is banned/);
    await c.ask(rcptRequest({ client_address: '203.0.113.5', helo_name: SMALL.helo, sender: SMALL.from, instance: 'i2', recipient: 'x@other.example' }));
    await c.close();
    await server.close();
    await log.flush();
    const events = await s.store.queryEvents({});
    assert.equal(events.length, 2);
    const banned = await s.store.queryEvents({ ip: '192.0.2.44' });
    assert.equal(banned[0].rule, 'banned');
    assert.equal(banned[0].action, 'reject');
    assert.equal(banned[0].code, 554);
    assert.equal(banned[0].sessionId, 'i1');
    assert.equal(banned[0].from, POOL.from);
    const byDomain = await s.store.queryEvents({ domain: 'other.example' });
    assert.equal(byDomain[0].clientIp, '203.0.113.5');
  });
});
