// The rollups' coarser counters (src/store/event-rollups.ts): how a window
// is split into stretches of the coarsest counters that cover them whole,
// and a version 4 events file (hourly counters only, no search indexes)
// upgraded at open: its coarse counters summed from its own, the same
// answers, the Why? indexes there. The answers on both backends against
// every event summed: the store conformance suite.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { rollupSpans } from '../../src/store/event-rollups.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { EVENTS_VERSION, eventsPathFor } from '../../src/store/sqlite/events-file.js';

const H = 3_600_000;
const D = 86_400_000;
const M = 60_000;
const day = Date.UTC(2026, 11, 1);

describe('rollupSpans', () => {
  test('a week from 14:37: the hours to midnight, whole days, then the hours of the last day', () => {
    const since = day + 14 * H + 37 * M;
    const until = since + 7 * D;
    assert.deepEqual(rollupSpans('client', since, until, 0), [
      { stored: 'client', ms: H, from: day + 14 * H, to: day + D },
      { stored: 'client@day', ms: D, from: day + D, to: day + 7 * D },
      { stored: 'client', ms: H, from: day + 7 * D, to: day + 7 * D + 15 * H },
    ]);
  });

  test('minutes: hours only where the caller allows them whole (maxMs), minutes at the edges', () => {
    const since = day + 10 * H + 5 * M;
    const until = day + 13 * H + 20 * M;
    assert.deepEqual(rollupSpans('minute', since, until, 0, M), [{ stored: 'minute', ms: M, from: since, to: until + M }]);
    assert.deepEqual(rollupSpans('minute', since, until, 0, 10 * M), [{ stored: 'minute', ms: M, from: since, to: until + M }]);
    assert.deepEqual(rollupSpans('minute', since, until, 0, H), [
      { stored: 'minute', ms: M, from: since, to: day + 11 * H },
      { stored: 'minute@hour', ms: H, from: day + 11 * H, to: day + 13 * H },
      { stored: 'minute', ms: M, from: day + 13 * H, to: until + M },
    ]);
  });

  test('no coarse bucket before the floor (retention cut a day): those hours are read in hours', () => {
    const floor = day + D + 5 * H;
    assert.deepEqual(rollupSpans('domain', day, day + 3 * D - 1, floor), [
      { stored: 'domain', ms: H, from: day, to: day + 2 * D },
      { stored: 'domain@day', ms: D, from: day + 2 * D, to: day + 3 * D },
    ]);
  });

  test('dimensions without coarser counters, and a window with no end', () => {
    assert.deepEqual(rollupSpans('rule', day + 30 * M, day + 2 * D, 0), [{ stored: 'rule', ms: H, from: day, to: day + 2 * D + H }]);
    assert.deepEqual(rollupSpans('client', day - 2 * H, undefined, 0), [
      { stored: 'client', ms: H, from: day - 2 * H, to: day },
      { stored: 'client@day', ms: D, from: day, to: Infinity },
    ]);
  });
});

describe('events file version 4', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-levels-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('is upgraded at open: coarse counters summed from its hourly ones, the search indexes made, the same answers', async () => {
    mkdirSync(join(dir, 'v4'));
    const path = join(dir, 'v4', 'frontline.db');
    const open = () => SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0 });
    let s = await open();
    const ips = ['192.0.2.1', '192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1', '192.0.2.3'];
    const logged: Array<Promise<void>> = [];
    for (let i = 0; i < 60; i++) {
      logged.push(s.logEvent({ ts: day + i * 97 * M, clientIp: ips[i % ips.length], from: `u@d${i % 4}.example`, rcpts: ['x@rcpt.example'], stage: 'rcpt', action: i % 3 ? 'reject' : 'accept', rule: 'r', evidence: [] }));
    }
    await Promise.all(logged);
    const window = { since: day + 3 * H + 7 * M, until: day + 3 * D + 22 * H };
    const ask = async (st: SqliteStore) => ({
      clients: await st.countEvents({ dim: 'client', ...window, limit: 2, actions: ['reject'] }),
      domains: await st.countEvents({ dim: 'domain', ...window, limit: 3 }),
      hours: await st.countEvents({ dim: 'minute', ...window, maxBucketMs: D }),
      why: (await st.queryEvents({ domain: 'd2.example' })).length,
    });
    const before = await ask(s);
    await s.close();
    // Make it a version 4 file: no coarse counters, none of version 5's indexes.
    const db = new Database(eventsPathFor(path));
    db.prepare("DELETE FROM event_rollups WHERE dim LIKE '%@%'").run();
    for (const i of ['events_by_from_domain', 'events_by_rcpt_domains', 'events_by_ts_many_rcpt_domains', 'event_rollups_by_n']) db.exec(`DROP INDEX ${i}`);
    db.pragma('user_version = 4');
    db.close();
    s = await open();
    try {
      assert.equal(s.eventsDatabase.pragma('user_version', { simple: true }), EVENTS_VERSION);
      const indexes = (s.eventsDatabase.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map((r) => r.name);
      for (const i of ['events_by_from_domain', 'events_by_rcpt_domains', 'events_by_ts_many_rcpt_domains', 'event_rollups_by_n']) assert.ok(indexes.includes(i), i);
      const dims = (s.eventsDatabase.prepare('SELECT DISTINCT dim FROM event_rollups ORDER BY dim').all() as Array<{ dim: string }>).map((r) => r.dim);
      assert.deepEqual(
        dims.filter((d) => d.includes('@')),
        ['client@day', 'domain@day', 'minute@hour'],
      );
      const after = await ask(s);
      assert.deepEqual(after, before);
      // Decisions are 97 minutes apart: a row at a whole hour is an hour counter's.
      assert.ok(after.hours.some((r) => (r.bucket as number) % H === 0), 'hour counters read');
      assert.equal(after.why, 15);
    } finally {
      await s.close();
    }
  });
});
