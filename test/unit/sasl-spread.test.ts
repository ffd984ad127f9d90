// sasl_spread through the real policy engine and the default policy: a SASL
// user sending from many addresses, networks, countries or to many new
// recipients is held and deferred (450, never 5xx) until released; rules
// read the counts; a store fault defers; holds survive on a second store.
// In-memory SQLite, in-memory DNS, an in-memory AS table, a manual clock.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope, Verdict } from '../../src/core/types.js';
import { parseConfig } from '../../src/config/load.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { Policy } from '../../src/policy/policy.js';
import { openStore, parseAsnText, StoreUnavailableError, type Store } from '../../src/store/index.js';
import { spreadUserKey } from '../../src/checks/sasl-spread.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';

const stores: Store[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

// Three networks in three countries (documentation ranges).
const { table: ASN } = parseAsnText(
  ['192.0.2.0\t192.0.2.255\t64496\tDE\tEXAMPLE-DE', '198.51.100.0\t198.51.100.255\t64497\tFR\tEXAMPLE-FR', '203.0.113.0\t203.0.113.255\t64498\tBR\tEXAMPLE-BR'].join('\n'),
);

interface Held {
  user: string;
  reason: string;
}

async function setup(yaml: string, opts: { store?: (s: Store) => Store } = {}) {
  const clock = new ManualClock(Date.parse('2024-06-01T00:00:00Z'));
  const cfg = parseConfig(yaml, 'test.yaml');
  cfg.headers.authserv_id = 'mx.test';
  const real = await openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock, purgeIntervalSeconds: 0 });
  stores.push(real);
  const store = opts.store ? opts.store(real) : real;
  const held: Held[] = [];
  const logger = {
    warn: (obj: Held & { event?: string }) => {
      if (obj.event === 'user-held') held.push({ user: obj.user, reason: obj.reason });
    },
    info() {},
    debug() {},
    error() {},
    child() {
      return logger;
    },
  };
  const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zoneFromYaml('')), clock, store, asn: { asnOf: (ip) => ASN.asnOf(ip), lookup: (ip) => ASN.lookup(ip) }, logger: logger as never });
  const send = async (env: Partial<Envelope> & { clientIp: string }, rcpts = ['friend@elsewhere.example']): Promise<Verdict> => {
    const tx = policy.transaction({ seesMessage: false });
    let v: Verdict | undefined;
    for (let i = 1; i <= rcpts.length; i++) v = await tx.evaluate('rcpt', { helo: 'laptop', from: 'joe@ours.example', rcpts: rcpts.slice(0, i), ...env });
    return v!;
  };
  return { clock, store: real, policy, send, held };
}

const ON = 'sasl_spread: { enabled: true }\n';

describe('sasl_spread', () => {
  test('off by default: the rule is left out quietly, authenticated mail is accepted from anywhere', async () => {
    const { send, policy } = await setup('');
    assert.ok(!policy.rules.some((r) => r.name === 'sasl-spread'));
    for (let i = 1; i <= 8; i++) assert.equal((await send({ clientIp: `192.0.2.${i}`, saslUser: 'joe' })).action, 'accept');
  });

  test('the fifth client address in the window holds the user: 450 4.7.1, its later mail too, from its usual address; release lets it through', async () => {
    const { send, store, held, clock } = await setup(ON);
    for (let i = 1; i <= 4; i++) {
      const v = await send({ clientIp: `192.0.2.${i}`, saslUser: 'Joe' });
      assert.equal(v.action, 'accept', `address ${i}`);
      assert.equal(v.evidence.find((e) => e.check === 'sasl_spread')?.data?.ips, i);
    }
    const v = await send({ clientIp: '192.0.2.5', saslUser: 'joe' });
    assert.equal(v.action, 'defer');
    assert.equal(v.code, 450);
    assert.equal(v.status, '4.7.1');
    assert.equal(v.rule, 'sasl-spread');
    assert.match(v.text ?? '', /^account joe is held for review \(5 client addresses in 3600 s \(hold at 5\)\); ask your postmaster$/);
    assert.deepEqual(held, [{ user: 'joe', reason: '5 client addresses in 3600 s (hold at 5)' }]);
    // Held: deferred from the first address too, hours later.
    clock.advance(5 * 3600);
    assert.equal((await send({ clientIp: '192.0.2.1', saslUser: 'JOE' })).action, 'defer');
    assert.equal((await store.userHoldGet('joe'))?.by, 'sasl_spread');
    // Another user is not affected; unauthenticated mail never reaches the rule.
    assert.equal((await send({ clientIp: '192.0.2.5', saslUser: 'ann' })).action, 'accept');
    assert.notEqual((await send({ clientIp: '192.0.2.5' })).rule, 'sasl-spread');
    assert.equal((await store.userRelease('joe'))?.reason, '5 client addresses in 3600 s (hold at 5)');
    assert.equal((await send({ clientIp: '192.0.2.5', saslUser: 'joe' })).action, 'accept');
    assert.equal(held.length, 1, 'one hold, one event');
  });

  test('countries and networks come from asn.table: three countries hold the user (the default), networks when configured', async () => {
    const { send } = await setup(ON);
    assert.equal((await send({ clientIp: '192.0.2.1', saslUser: 'joe' })).action, 'accept');
    const fr = await send({ clientIp: '198.51.100.1', saslUser: 'joe' });
    assert.equal(fr.action, 'accept');
    assert.deepEqual(
      (({ ips, asns, countries }) => ({ ips, asns, countries }))(fr.evidence.find((e) => e.check === 'sasl_spread')!.data as Record<string, number>),
      { ips: 2, asns: 2, countries: 2 },
    );
    const br = await send({ clientIp: '203.0.113.1', saslUser: 'joe' });
    assert.equal(br.action, 'defer');
    assert.match(br.text ?? '', /3 countries in 3600 s \(hold at 3\)/);

    const nets = await setup('sasl_spread: { enabled: true, hold: { ips: 0, countries: 0, asns: 2 } }\n');
    assert.equal((await nets.send({ clientIp: '192.0.2.1', saslUser: 'joe' })).action, 'accept');
    assert.equal((await nets.send({ clientIp: '192.0.2.2', saslUser: 'joe' })).action, 'accept', 'same network');
    assert.match((await nets.send({ clientIp: '198.51.100.9', saslUser: 'joe' })).text ?? '', /2 networks \(AS\) in 3600 s/);
  });

  test('new recipients per hour: nine known ones are not new an hour later; the limit holds at the nth new one', async () => {
    const { send, clock } = await setup('sasl_spread: { enabled: true, hold: { ips: 0, countries: 0, new_rcpts: 10 } }\n');
    const known = Array.from({ length: 9 }, (_, i) => `friend${i}@elsewhere.example`);
    assert.equal((await send({ clientIp: '192.0.2.1', saslUser: 'joe' }, known)).action, 'accept');
    clock.advance(3601);
    // The same nine again, an hour later: known, not new.
    const again = await send({ clientIp: '192.0.2.1', saslUser: 'joe' }, known);
    assert.equal(again.evidence.find((e) => e.check === 'sasl_spread')?.data?.new_rcpts, 0);
    const fresh = Array.from({ length: 10 }, (_, i) => `stranger${i}@spam.example`);
    const v = await send({ clientIp: '192.0.2.1', saslUser: 'joe' }, fresh);
    assert.equal(v.action, 'defer');
    assert.match(v.text ?? '', /10 new recipients in 3600 s \(hold at 10\)/);
  });

  test('rules read the counts: sasl_spread.ips>=3 defers without holding (hold limits 0)', async () => {
    const rules = `
sasl_spread: { enabled: true, hold: { ips: 0, countries: 0 } }
policy:
  rules:
    - { name: spread-ips, if: "sasl_spread.ips>=3", action: defer, text: "too many places ({evidence.sasl_spread.ips})" }
    - { name: authenticated, if: auth, action: accept }
`;
    const { send, store } = await setup(rules);
    assert.equal((await send({ clientIp: '192.0.2.1', saslUser: 'joe' })).action, 'accept');
    assert.equal((await send({ clientIp: '192.0.2.2', saslUser: 'joe' })).action, 'accept');
    const v = await send({ clientIp: '192.0.2.3', saslUser: 'joe' });
    assert.equal(v.rule, 'spread-ips');
    assert.equal(v.text, 'too many places (3)');
    assert.equal(await store.userHoldGet('joe'), undefined);
  });

  test('a held user (frontline user hold) is deferred with the reason given; the store fault defers 451 4.3.0, never a 5xx, never an accept', async () => {
    const { send, store } = await setup(ON);
    await store.userHold({ user: 'joe', by: 'cli:root', reason: 'password leaked', createdAt: 0 });
    const v = await send({ clientIp: '192.0.2.1', saslUser: 'joe' });
    assert.equal(v.action, 'defer');
    assert.match(v.text ?? '', /held for review \(password leaked\)/);

    const down = await setup(ON, {
      store: (s) =>
        new Proxy(s, {
          get(target, prop) {
            if (prop === 'userHoldGet') return async () => Promise.reject(new StoreUnavailableError('redis down (test)'));
            const x = Reflect.get(target, prop, target) as unknown;
            return typeof x === 'function' ? (x as (...a: unknown[]) => unknown).bind(target) : x;
          },
        }),
    });
    const f = await down.send({ clientIp: '192.0.2.1', saslUser: 'joe' });
    assert.equal(f.action, 'defer');
    assert.equal(f.code, 451);
    assert.equal(f.status, '4.3.0');
    const cont = await setup(`${ON}store: { on_unavailable: continue }\n`, {
      store: (s) =>
        new Proxy(s, {
          get(target, prop) {
            if (prop === 'userHoldGet') return async () => Promise.reject(new StoreUnavailableError('redis down (test)'));
            const x = Reflect.get(target, prop, target) as unknown;
            return typeof x === 'function' ? (x as (...a: unknown[]) => unknown).bind(target) : x;
          },
        }),
    });
    assert.equal((await cont.send({ clientIp: '192.0.2.1', saslUser: 'joe' })).action, 'accept', 'on_unavailable: continue lets the user through');
  });

  test('hostile logins: a long one is keyed by its hash (never merged with another by truncation); case folds', () => {
    const a = `${'a'.repeat(300)}1`;
    const b = `${'a'.repeat(300)}2`;
    assert.notEqual(spreadUserKey(a), spreadUserKey(b));
    assert.match(spreadUserKey(a), /^sha256:[0-9a-f]{64}$/);
    assert.equal(spreadUserKey(' Joe@Example.COM '), 'joe@example.com');
  });
});
