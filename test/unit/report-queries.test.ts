// The report room's query layer: outcomes, vectors, top lists, bans and the
// Overview from the store's counters; the counters of an events file written
// before they existed (backfill); a zone sentence read from dnsbl evidence.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { zonesOfPiece } from '../../src/store/event-rollups.js';
import { ReportQueries, banSourceKind } from '../../src/report/queries.js';
import { outcomeOf, vectorOf } from '../../src/report/vectors.js';
import { parseAsnText } from '../../src/store/asn.js';
import type { DecisionEvent } from '../../src/store/types.js';
import { ManualClock } from '../helpers/fake-clock.js';

const dir = mkdtempSync(join(tmpdir(), 'fl-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const HOUR = 3_600_000;
const listed = { check: 'dnsbl', result: 'listed', detail: '203.0.113.5 listed by zen.example (127.0.0.2); score 1 ≥ 1' };

function event(ts: number, clientIp: string, rule: string, action: string, from = 'a@spam.example'): DecisionEvent {
  return { ts, clientIp, from, rcpts: ['u@local.example'], stage: 'rcpt', action, rule, evidence: rule === 'dnsbl' ? [listed] : [] };
}

const ruleChecks = new Map<string, string[]>([
  ['dnsbl', ['dnsbl']],
  ['grey', ['greylist']],
  ['or-rule', ['sender_domain', 'spf', 'mx', 'fcrdns_domain', 'dkim_domain']],
  ['trap', ['spamtrap']],
]);

describe('vectors and outcomes', () => {
  test('a rule is named by the checks it reads, else by its name', () => {
    assert.equal(vectorOf('grey', ruleChecks), 'greylist');
    assert.equal(vectorOf('or-rule', ruleChecks), 'spf');
    assert.equal(vectorOf('gate:pregreet'), 'door');
    assert.equal(vectorOf('gate:limit-per-ip'), 'ratelimit');
    assert.equal(vectorOf('banned'), 'ban');
    assert.equal(vectorOf('whatever'), 'other');
    assert.equal(outcomeOf('defer', 'grey', ruleChecks), 'greylisted');
    assert.equal(outcomeOf('defer', 'ratelimit', ruleChecks), 'deferred');
    assert.equal(outcomeOf('reject', 'x'), 'refused');
    assert.equal(outcomeOf('continue', 'default'), 'accepted');
  });

  test('ban sources: log watching, spamtraps, manual, feeds', () => {
    assert.equal(banSourceKind({ source: 'log:sshd', category: 'brute-force' }), 'log watching');
    assert.equal(banSourceKind({ source: 'spamtrap', category: 'spamtrap' }), 'spamtraps');
    assert.equal(banSourceKind({ source: 'cli:root', category: 'manual' }), 'manual');
    assert.equal(banSourceKind({ source: 'feed:peer', category: 'dnsbl' }), 'feeds');
  });

  test('zones are read from the dnsbl sentence, not from other evidence', () => {
    assert.deepEqual(zonesOfPiece(JSON.stringify(listed)), { listed: ['zen.example'], skipped: [] });
    assert.deepEqual(
      zonesOfPiece(JSON.stringify({ check: 'dnsbl', result: 'unlisted', detail: '192.0.2.1 not listed by a.example; not consulted: b.example (timeout)' })),
      { listed: [], skipped: ['b.example'] },
    );
    assert.deepEqual(zonesOfPiece(JSON.stringify({ check: 'helo', result: 'fail', detail: 'x' })), { listed: [], skipped: [] });
  });
});

describe('ReportQueries on a store', () => {
  test('overview: timeline, outcomes, vectors, top lists, countries, bans', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 7, 14, 37));
    const store = await SqliteStore.open({ backend: 'sqlite', path: join(dir, 'a.db') }, { clock, purgeIntervalSeconds: 0, ownAddresses: [] });
    try {
      const now = clock.now();
      await Promise.all([
        store.logEvent(event(now - 2 * 60_000, '203.0.113.5', 'dnsbl', 'reject')),
        store.logEvent(event(now - 2 * 60_000, '203.0.113.5', 'dnsbl', 'reject')),
        store.logEvent(event(now - 60_000, '198.51.100.7', 'grey', 'defer', '')),
        store.logEvent(event(now - 60_000, '198.51.100.7', 'default', 'continue', 'b@good.example')),
        store.logEvent(event(now - 2 * HOUR, '198.51.100.8', 'or-rule', 'reject')),
        store.logEvent(event(now - 30 * HOUR, '198.51.100.9', 'trap', 'reject')),
      ]);
      await store.ban({ cidr: '203.0.113.5', reason: 'trap', category: 'spamtrap', source: 'spamtrap' });
      await store.ban({ cidr: '198.51.100.0/24', reason: 'by hand', category: 'manual', source: 'cli:root', durationSeconds: 3600 });
      const asn = parseAsnText('203.0.113.0\t203.0.113.255\t64496\tNL\tEXAMPLE-NET\n198.51.100.0\t198.51.100.255\t64497\tUS\tDOC-NET\n', 't.tsv').table;
      const q = new ReportQueries({ store, clock, ruleChecks, asn });
      const o = await q.overview(q.last(86_400));
      assert.deepEqual(o.outcomes, { accepted: 1, refused: 3, deferred: 0, greylisted: 1 });
      assert.equal(o.total, 5);
      assert.equal(o.timeline.stepMs, 60_000);
      assert.equal(o.timeline.series.refused.reduce((a, b) => a + b, 0), 3);
      assert.equal(o.timeline.series.refused[o.timeline.buckets - 3], 2, 'two refusals two minutes ago');
      assert.deepEqual(
        o.vectors.map((v) => [v.vector, v.total]),
        [
          ['dnsbl', 2],
          ['spf', 1],
          ['greylist', 1],
        ],
      );
      assert.deepEqual(
        o.topClients.map((t) => [t.key, t.total]),
        [
          ['203.0.113.5', 2],
          ['198.51.100.8', 1],
        ],
      );
      assert.deepEqual(o.topDomains, [{ key: 'spam.example', total: 3, byAction: { reject: 3 } }]);
      assert.deepEqual(
        o.topCountries.map((t) => [t.key, t.total]),
        [
          ['NL', 2],
          ['US', 1],
        ],
      );
      assert.deepEqual(o.bans.byCategory, [
        { key: 'manual', n: 1 },
        { key: 'spamtrap', n: 1 },
      ]);
      assert.equal(o.bans.newInWindow, 2);
      assert.equal(o.store.ok, true);
      const week = await q.outcomes(q.last(7 * 86_400));
      assert.equal(week.refused, 4, 'the spamtrap refusal 30 hours ago is in the week');
      assert.deepEqual(
        (await q.top(q.last(7 * 86_400), 'asn', { actions: ['reject'] })).map((t) => [t.key, t.total, t.label]),
        [
          ['AS64496', 2, 'EXAMPLE-NET'],
          ['AS64497', 2, 'DOC-NET'],
        ],
      );
      const zones = await q.top(q.last(3600), 'zone');
      assert.deepEqual(zones, [{ key: 'zen.example', total: 2, byAction: { reject: 2 } }]);
    } finally {
      await store.close();
    }
  });

  test('an events file written before the counters existed is counted when first opened', async () => {
    const path = join(dir, 'old.db');
    const clock = new ManualClock(Date.UTC(2026, 11, 7, 10, 0));
    let store = await SqliteStore.open({ backend: 'sqlite', path }, { clock, purgeIntervalSeconds: 0, ownAddresses: [] });
    const t = clock.now();
    await Promise.all([store.logEvent(event(t, '203.0.113.5', 'dnsbl', 'reject')), store.logEvent({ ...event(t + 1, '203.0.113.6', 'x', 'accept'), wouldHave: [{ rule: 'no-ptr', action: 'reject' }] })]);
    const before = await store.countEvents({ dim: 'rule', since: 0 });
    store.eventsDatabase.exec('DROP TABLE event_rollups');
    await store.close();
    store = await SqliteStore.open({ backend: 'sqlite', path }, { clock, purgeIntervalSeconds: 0, ownAddresses: [] });
    try {
      assert.deepEqual(await store.countEvents({ dim: 'rule', since: 0 }), before);
      assert.deepEqual(await store.countEvents({ dim: 'zone', since: 0 }), [{ key: 'zen.example', action: 'reject', n: 1 }]);
      assert.deepEqual(await store.countEvents({ dim: 'would-have', since: 0 }), [{ key: 'no-ptr', action: 'reject', n: 1 }]);
    } finally {
      await store.close();
    }
  });
});
