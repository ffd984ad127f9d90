// Spamtrap poisoning (issue 16 item 5): a trap hit from a client we trust by
// address or by SPF for a big sender is refused but bans nothing; so is a
// hit from this host's own address. Through the real policy engine and the
// default policy, an in-memory SQLite store, in-memory DNS, a manual clock.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Envelope, Verdict } from '../../src/core/types.js';
import { parseConfig } from '../../src/config/load.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { Policy } from '../../src/policy/policy.js';
import { dnsblQueryName } from '../../src/checks/dnsbl.js';
import { openStore, type Store } from '../../src/store/index.js';
import type { Logger } from '../../src/log.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';

const ZONES = `
bigmail.example:
  - TXT: "v=spf1 ip4:198.51.100.0/24 -all"
mail.bigmail.example:
  - TXT: "v=spf1 include:bigmail.example -all"
small.example:
  - TXT: "v=spf1 ip4:203.0.113.0/24 -all"
broken.example:
  - SERVFAIL
37.2.0.192.list.dnswl.test:
  - A: 127.0.10.2
`;

const stores: Store[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

interface Setup {
  store: Store;
  logged: Array<{ obj: unknown; msg: string }>;
  send(env: Partial<Envelope> & { clientIp: string }, rcpt?: string): Promise<Verdict>;
}

const BASE = 'spamtraps: [trap@dest.example]\nintel:\n  spf_whitelist:\n    domains: [bigmail.example]\n';

async function setup(configYaml = BASE, opts: { own?: string[] } = {}): Promise<Setup> {
  const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));
  const cfg = parseConfig(configYaml, 'test.yaml');
  cfg.headers.authserv_id = 'mx.test';
  const store = await openStore(
    { backend: 'sqlite', path: ':memory:', pollMs: 0 },
    { clock, purgeIntervalSeconds: 0, neverBan: cfg.my_networks, neverBanLists: ['allow'], ownAddresses: (opts.own ?? []).map((address) => ({ address, iface: 'eth0' })) },
  );
  stores.push(store);
  const logged: Setup['logged'] = [];
  const logger = { info: (obj: unknown, msg: string) => logged.push({ obj, msg }), warn() {}, error() {}, debug() {} } as unknown as Logger;
  const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zoneFromYaml(ZONES)), clock, store, logger });
  return {
    store,
    logged,
    async send(env, rcpt = 'trap@dest.example') {
      return policy.transaction({ seesMessage: false }).evaluate('rcpt', { rcpts: [rcpt], ...env });
    },
  };
}

function trapEvidence(v: Verdict) {
  return v.evidence.find((e) => e.check === 'spamtrap');
}

async function assertRefusedNotBanned(s: Setup, v: Verdict, ip: string, why: RegExp): Promise<void> {
  assert.equal(v.action, 'reject');
  assert.equal(v.rule, 'spamtrap');
  assert.equal(v.code, 550);
  const ev = trapEvidence(v);
  assert.equal(ev?.data?.banned, false);
  assert.match(String(ev?.data?.spared ?? ev?.data?.refused), why);
  assert.match(ev?.detail ?? '', new RegExp(`not banned: `));
  assert.equal(await s.store.getBan(ip), undefined, `${ip} must not be banned`);
  assert.deepEqual(await s.store.listBans(), []);
}

describe('spamtrap poisoning: a trap hit from a trusted client is refused and bans nothing', () => {
  test('a client that is not trusted is banned (the ordinary case)', async () => {
    const s = await setup();
    const v = await s.send({ clientIp: '203.0.113.9', helo: 'x.small.example', from: 'a@small.example' });
    assert.equal(v.rule, 'spamtrap');
    assert.equal(trapEvidence(v)?.data?.banned, true);
    assert.equal((await s.store.getBan('203.0.113.9'))?.category, 'spamtrap');
  });

  test('SPF pass for a big-sender domain (a free-mail user of the provider)', async () => {
    const s = await setup();
    const v = await s.send({ clientIp: '198.51.100.20', helo: 'out.bigmail.example', from: 'someone@bigmail.example' });
    await assertRefusedNotBanned(s, v, '198.51.100.20', /passes SPF for bigmail\.example, a big sender/);
    assert.ok(s.logged.some((l) => /spamtrap hit: 198\.51\.100\.20 not banned: .*big sender/.test(l.msg)), 'logged');
  });

  test('SPF pass for a name below a big-sender domain', async () => {
    const s = await setup();
    const v = await s.send({ clientIp: '198.51.100.21', helo: 'out.bigmail.example', from: 'bounce@mail.bigmail.example' });
    await assertRefusedNotBanned(s, v, '198.51.100.21', /passes SPF for mail\.bigmail\.example, a big sender \(bigmail\.example\)/);
  });

  test('a forger claiming the big sender without passing its SPF is banned', async () => {
    const s = await setup();
    const v = await s.send({ clientIp: '203.0.113.66', helo: 'x.example', from: 'fake@bigmail.example' });
    assert.equal(trapEvidence(v)?.data?.banned, true);
    assert.equal((await s.store.getBan('203.0.113.66'))?.category, 'spamtrap');
  });

  test('the big-sender list off (intel.spf_whitelist.enabled: false): SPF pass spares nobody', async () => {
    const s = await setup('spamtraps: [trap@dest.example]\nintel:\n  spf_whitelist:\n    enabled: false\n    domains: [bigmail.example]\n');
    const v = await s.send({ clientIp: '198.51.100.20', helo: 'out.bigmail.example', from: 'someone@bigmail.example' });
    assert.equal(trapEvidence(v)?.data?.banned, true);
  });

  test('on the SPF-walked big-senders list (store list spf-walked)', async () => {
    const s = await setup();
    await s.store.listAdd('spf-walked', '192.0.2.0/24', { source: 'spf:bigmail.example' });
    const v = await s.send({ clientIp: '192.0.2.33', helo: 'x.example', from: 'a@unrelated.example' });
    await assertRefusedNotBanned(s, v, '192.0.2.33', /on the spf-walked list/);
  });

  test("on the correspondents' networks (store list correspondents)", async () => {
    const s = await setup();
    await s.store.listAdd('correspondents', '192.0.2.0/25', { source: 'spf:friend.example' });
    const v = await s.send({ clientIp: '192.0.2.34', helo: 'x.example', from: 'a@unrelated.example' });
    await assertRefusedNotBanned(s, v, '192.0.2.34', /on the correspondents list/);
  });

  test("on the store's allow list, and on the config's lists.allow", async () => {
    let s = await setup();
    await s.store.listAdd('allow', '192.0.2.35', { source: 'admin' });
    let v = await s.send({ clientIp: '192.0.2.35', helo: 'x.example', from: 'a@unrelated.example' });
    assert.equal(v.rule, 'spamtrap', 'the trap is refused even to an allow-listed client');
    await assertRefusedNotBanned(s, v, '192.0.2.35', /on the allow list/);
    s = await setup(`${BASE}lists:\n  allow:\n    type: ip\n    entries: [192.0.2.36]\n`);
    v = await s.send({ clientIp: '192.0.2.36', helo: 'x.example', from: 'a@unrelated.example' });
    await assertRefusedNotBanned(s, v, '192.0.2.36', /on the allow list \(lists\.allow\)/);
  });

  test('listed by DNSWL', async () => {
    assert.equal(dnsblQueryName('192.0.2.37', 'list.dnswl.test'), '37.2.0.192.list.dnswl.test');
    const s = await setup(`${BASE}checks:\n  dnswl:\n    zones: [list.dnswl.test]\n    probe_interval_s: 0\n`);
    const v = await s.send({ clientIp: '192.0.2.37', helo: 'x.example', from: 'a@unrelated.example' });
    await assertRefusedNotBanned(s, v, '192.0.2.37', /listed by DNSWL/);
    const other = await s.send({ clientIp: '192.0.2.38', helo: 'x.example', from: 'a@unrelated.example' });
    assert.equal(trapEvidence(other)?.data?.banned, true, 'an unlisted client is banned');
  });

  test('SPF of a big sender that cannot be checked now (SERVFAIL): not banned while unknown', async () => {
    const s = await setup('spamtraps: [trap@dest.example]\nintel:\n  spf_whitelist:\n    domains: [broken.example]\n');
    const v = await s.send({ clientIp: '198.51.100.22', helo: 'x.example', from: 'a@broken.example' });
    await assertRefusedNotBanned(s, v, '198.51.100.22', /could not be checked/);
  });

  test("this host's own address is never banned by a trap hit (the store refuses it)", async () => {
    const s = await setup(BASE, { own: ['203.0.113.25'] });
    const v = await s.send({ clientIp: '203.0.113.25', helo: 'x.small.example', from: 'a@small.example' });
    await assertRefusedNotBanned(s, v, '203.0.113.25', /this host's own address 203\.0\.113\.25 \(eth0\)/);
  });
});
