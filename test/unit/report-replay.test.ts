// Replay (src/report/replay.ts): decisions made by the real policy over a
// DNS world, logged through the decision log into each store backend, then
// re-evaluated under proposed policies — unchanged policy changes nothing, a
// stricter rule changes exactly the decisions it should, evidence the log
// never had is reported as not reproducible (and computed with live DNS),
// and records from before replay data was kept are told apart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZoneResolver } from '../../src/dns/zone.js';
import { ConfigError, parseConfig, type Config } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import type { Envelope } from '../../src/core/types.js';
import { DecisionLog, silentLogger, type Store } from '../../src/store/index.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { parseReplayConfig, replayDecisions, type ReplayReport } from '../../src/report/replay.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { requireBinary } from '../helpers/binaries.js';

const ZONES = `
# 192.0.2.10 is listed; 192.0.2.20 and .30 are not.
10.2.0.192.bl.test:
  - A: 127.0.0.2
fail.test:
  - TXT: "v=spf1 -all"
  - A: 192.0.2.250
soft.test:
  - TXT: "v=spf1 ~all"
  - A: 192.0.2.251
good.test:
  - TXT: "v=spf1 ip4:192.0.2.0/24 -all"
  - A: 192.0.2.252
`;

const BASE = `
checks:
  dnsbl:
    zones: [bl.test]
    probe_interval_s: 0
`;

function config(rules: string, extra = ''): string {
  return `${BASE}${extra}\npolicy:\n  rules:\n${rules.replace(/^/gm, '    ')}\n`;
}

const CURRENT = config(`- name: dnsbl
  if: dnsbl=listed
  action: reject
  code: 554
- name: spf-fail
  if: spf=fail
  action: reject
  code: 550`);

/** The traffic: a listed bot forging an SPF -all domain, a softfail sender, a good one, an authenticated user. */
const TRAFFIC: Envelope[] = [
  { clientIp: '192.0.2.10', helo: 'bot.example', from: 'x@fail.test', rcpts: ['u1@dest.test'] },
  { clientIp: '192.0.2.20', clientPtr: 'host20.example', helo: 'h20.example', from: 'y@soft.test', rcpts: ['u1@dest.test', 'u2@dest.test'] },
  { clientIp: '192.0.2.30', helo: 'mail.good.test', from: 'z@good.test', rcpts: ['u3@dest.test'] },
  { clientIp: '198.51.100.7', helo: 'laptop', from: 'me@soft.test', rcpts: ['friend@dest.test'], saslUser: 'me' },
];

const T0 = Date.parse('2026-12-01T10:00:00Z');

/** Decide the traffic with the current policy at RCPT (one decision per recipient) and log every verdict. */
async function decideAndLog(store: Store, resolver: ZoneResolver): Promise<void> {
  const cfg = parseConfig(CURRENT, 'current.yaml');
  let now = T0;
  const clock = { now: () => now };
  const policy = Policy.fromConfig(cfg, { resolver, clock, store });
  const log = new DecisionLog(store, silentLogger, clock);
  for (const env of TRAFFIC) {
    const tx = policy.transaction({ seesMessage: false });
    for (let i = 1; i <= env.rcpts.length; i++) {
      const e = { ...env, rcpts: env.rcpts.slice(0, i) };
      log.record(await tx.evaluate('rcpt', e), e);
      now += 1000;
    }
  }
  await log.flush();
}

function replayWith(store: Store, proposed: string, extra: Partial<Parameters<typeof replayDecisions>[0]> = {}): Promise<ReplayReport> {
  return replayDecisions({ store, proposed: parseReplayConfig(proposed, 'new.yaml'), current: parseConfig(CURRENT, 'current.yaml'), since: T0 - 1, ...extra });
}

function engineTests(open: () => Promise<Store>): void {
  let store: Store;
  const resolver = new ZoneResolver(zoneFromYaml(ZONES));

  before(async () => {
    store = await open();
    await decideAndLog(store, resolver);
  });
  after(() => store?.close());

  it('logs what a replay needs: envelope fields and evidence data', async () => {
    const events = await store.queryEvents({ since: T0 - 1 });
    assert.equal(events.length, 5);
    const second = events.find((e) => e.clientIp === '192.0.2.20' && e.rcpts[0] === 'u2@dest.test');
    assert.ok(second);
    assert.equal(second.rcptCount, 2);
    assert.equal(second.clientPtr, 'host20.example');
    const user = events.find((e) => e.clientIp === '198.51.100.7');
    assert.equal(user?.saslUser, 'me');
    const bl = events.find((e) => e.clientIp === '192.0.2.10')?.evidence.find((x) => x.check === 'dnsbl');
    assert.equal(bl?.result, 'listed');
    assert.equal(typeof bl?.data?.score, 'number');
  });

  it('the unchanged policy changes nothing', async () => {
    const r = await replayWith(store, CURRENT);
    assert.equal(r.replayed, 5);
    assert.equal(r.changed, 0);
    assert.equal(r.notReproducible, 0);
    assert.equal(r.unchanged, 5);
    assert.deepEqual(r.changes, []);
    assert.equal(r.oldRecords, 0);
  });

  it('a stricter rule changes exactly the decisions it catches, by rule, with examples', async () => {
    const stricter = CURRENT.replace('if: spf=fail\n', 'if: spf=fail|softfail\n');
    const r = await replayWith(store, stricter);
    // The softfail client's two recipients, and the authenticated user sending as soft.test (no rule spares auth).
    assert.equal(r.changed, 3);
    assert.equal(r.unchanged, 2);
    assert.equal(r.notReproducible, 0);
    assert.equal(r.changes.length, 1);
    assert.deepEqual(r.changes[0].from, { action: 'continue', rule: 'default' });
    assert.deepEqual(r.changes[0].to, { action: 'reject', rule: 'spf-fail', code: 550 });
    assert.deepEqual(r.byRule, [{ rule: 'spf-fail', count: 3 }]);
    assert.ok(r.changes[0].examples.some((x) => x.clientIp === '192.0.2.20' && x.from === 'y@soft.test'));
  });

  it('a rule on a check recomputed from the envelope (auth) sees the logged SASL user', async () => {
    const stricter = config(`- name: auth-ok
  if: auth
  action: accept
- name: softfail
  if: spf=softfail
  action: reject
  code: 550`);
    const r = await replayWith(store, `${stricter}`);
    // The bot: dnsbl rule gone, spf was never computed for it (the dnsbl rule decided first).
    assert.equal(r.notReproducible, 1);
    assert.match(r.unreproducible[0].reason, /^spf: not computed then/);
    assert.equal(r.unreproducible[0].examples[0].clientIp, '192.0.2.10');
    const toAccept = r.changes.find((c) => c.to.action === 'accept');
    assert.equal(toAccept?.count, 1);
    assert.equal(toAccept?.examples[0].clientIp, '198.51.100.7');
    const toReject = r.changes.find((c) => c.to.rule === 'softfail');
    assert.equal(toReject?.count, 2);
  });

  it('evidence not recorded is never guessed, and --live-dns computes it', async () => {
    const spfOnly = config(`- name: spf-fail
  if: spf=fail
  action: reject
  code: 550`);
    const offline = await replayWith(store, spfOnly);
    assert.equal(offline.notReproducible, 1);
    assert.equal(offline.changed, 0);
    const live = await replayWith(store, spfOnly, { liveResolver: resolver });
    assert.equal(live.notReproducible, 0);
    // The bot forged fail.test (-all): refused by spf-fail now instead of by the DNSBL rule.
    assert.equal(live.otherRule, 1);
    assert.equal(live.changed, 0);
    assert.equal(live.liveDns, true);
  });

  it('a proposed sasl_spread rule is not reproducible and never records nor holds anyone, even with live DNS', async () => {
    const spread = config(`- name: spread
  if: [auth, sasl_spread=listed]
  action: defer`, 'sasl_spread: { enabled: true, hold: { ips: 1 } }\n');
    const r = await replayWith(store, spread, { liveResolver: resolver });
    assert.equal(r.notReproducible, 1);
    assert.match(r.unreproducible[0].reason, /^sasl_spread: a sasl_spread check records and may hold the user/);
    assert.deepEqual(await store.userHolds(), []);
  });

  it('a DNSBL zone added: the logged evidence is stale, not reused', async () => {
    const moreZones = CURRENT.replace('zones: [bl.test]', 'zones: [bl.test, other.test]');
    const r = await replayWith(store, moreZones);
    assert.equal(r.replayed, 5);
    assert.equal(r.notReproducible, 5);
    assert.ok(r.warnings.some((w) => /dnsbl: settings differ/.test(w)));
    assert.match(r.unreproducible[0].reason, /dnsbl: its settings changed/);
  });

  it('a deny list in the proposed config is matched anew against the logged sender', async () => {
    const deny = config(
      `- name: deny
  if: list:deny=listed
  action: reject
  code: 554
- name: dnsbl
  if: dnsbl=listed
  action: reject
  code: 554
- name: spf-fail
  if: spf=fail
  action: reject
  code: 550`,
      `lists:\n  deny:\n    type: domain\n    entries: [good.test]\n`,
    );
    const r = await replayWith(store, deny);
    assert.equal(r.changed, 1);
    assert.equal(r.changes[0].to.rule, 'deny');
    assert.equal(r.changes[0].examples[0].from, 'z@good.test');
  });

  it('a rule comparing evidence data uses the logged data', async () => {
    const scored = CURRENT.replace('if: dnsbl=listed', 'if: dnsbl.score>=100');
    const r = await replayWith(store, scored);
    // The listed bot is no longer refused by the DNSBL rule; spf for it was never computed.
    assert.equal(r.notReproducible, 1);
    assert.equal(r.changed, 0);
    assert.equal(r.unchanged, 4);
  });

  it('the window and the limit: newest first, the limit reported', async () => {
    const r = await replayWith(store, CURRENT, { limit: 2 });
    assert.equal(r.replayed, 2);
    assert.equal(r.limited, true);
    const none = await replayWith(store, CURRENT, { since: T0 + 3_600_000 });
    assert.equal(none.replayed, 0);
    assert.equal(none.limited, false);
  });

  it('records from before replay data was kept are counted, and their missing fields not guessed', async () => {
    const ts = T0 + 60_000;
    // As an events file version 3 row or an older Redis event reads: no rcptCount, no saslUser, no evidence data.
    await store.logEvent({
      ts,
      clientIp: '198.51.100.9',
      helo: 'old.example',
      from: 'old@soft.test',
      rcpts: ['u9@dest.test'],
      stage: 'rcpt',
      action: 'continue',
      rule: 'default',
      evidence: [
        { check: 'dnsbl', result: 'unlisted', detail: 'not listed' },
        { check: 'spf', result: 'softfail', detail: 'softfail' },
      ],
    });
    const authFirst = config(`- name: auth-ok
  if: auth
  action: accept`);
    const r = await replayWith(store, authFirst, { since: ts });
    assert.equal(r.replayed, 1);
    assert.equal(r.oldRecords, 1);
    assert.equal(r.notReproducible, 1);
    assert.match(r.unreproducible[0].reason, /^auth: /);
  });
}

describe('replay engine, SQLite store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-replay-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  engineTests(() => SqliteStore.open({ backend: 'sqlite', path: join(dir, 'frontline.db'), pollMs: 0 }, { purgeIntervalSeconds: 0 }));
});

const noRedis = requireBinary('redis-server') ? undefined : 'redis-server not installed';

describe('replay engine, Redis store', { skip: noRedis }, () => {
  let redis: PrivateRedis;
  before(async () => {
    redis = (await startRedis()) as PrivateRedis;
  });
  after(() => redis?.close());
  engineTests(() => RedisStore.open({ backend: 'redis', url: redis.url, prefix: 'replay:' }));
});

describe('replay of evidence data the log cut', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-replay-cut-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a condition on a field the log left out is not reproducible; one on a field it kept is judged', async () => {
    const store = await SqliteStore.open({ backend: 'sqlite', path: join(dir, 'f.db'), pollMs: 0 }, { purgeIntervalSeconds: 0 });
    try {
      const base = { clientIp: '192.0.2.44', helo: 'h.example', from: 'a@b.test', rcpts: ['u@dest.test'], rcptCount: 1, stage: 'rcpt', action: 'continue', rule: 'default' };
      await store.logEvent({ ...base, ts: T0, evidence: [{ check: 'dnsbl', result: 'listed', detail: 'listed', data: { zones: ['bl.test'] }, dataCut: ['score'] }] });
      await store.logEvent({ ...base, ts: T0 + 1, clientIp: '192.0.2.45', evidence: [{ check: 'dnsbl', result: 'listed', detail: 'listed', data: { score: 5 }, dataCut: ['*'] }] });
      const proposed = config(`- name: scored
  if: dnsbl.score>=3
  action: reject`);
      const r = await replayWith(store, proposed, { since: T0 - 1 });
      assert.equal(r.replayed, 2);
      assert.equal(r.notReproducible, 1);
      assert.equal(r.unreproducible[0].reason, 'dnsbl: dnsbl.score was too large to keep');
      assert.equal(r.unreproducible[0].examples[0].clientIp, '192.0.2.44');
      assert.equal(r.changed, 1);
      assert.equal(r.changes[0].examples[0].clientIp, '192.0.2.45');
    } finally {
      await store.close();
    }
  });
});

describe('replay config', () => {
  it('errors name file:line:key, as config check does', () => {
    const bad = `${BASE}\npolicy:\n  rules:\n    - name: x\n      if: spff=pass\n      action: reject\n`;
    assert.throws(
      () => parseReplayConfig(bad, 'pasted'),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => /^pasted:\d+:\d+: policy\.rules\[0\]\.if/.test(p) && /spff/.test(p)),
    );
    assert.throws(() => parseReplayConfig('policy: [', 'pasted'), (e: unknown) => e instanceof ConfigError && /^pasted:1:/.test(e.problems[0]));
  });

  it('a proposed config is a whole config', () => {
    const c: Config = parseReplayConfig('', 'empty');
    assert.equal(c.policy.rules, undefined);
  });
});
