// The SQLite store commits decision events in batches, but greylist entries at
// the end of the turn that made them: a greylist write must not wait for the
// event timer, and close() must commit queued events.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';

/** Run `fn` with the path of a fresh database in a temporary directory, removed afterwards. */
async function withDatabase(name: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fl-batch-'));
  try {
    await fn(join(dir, name));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('sqlite: greyPut settles before the event batch timer; close() commits queued events', () =>
  withDatabase('a.db', async (path) => {
    const store = await openStore({ backend: 'sqlite', path }, { purgeIntervalSeconds: 0 });
    const now = Date.now();
    // Queue an event (not awaited: it settles when its batch commits).
    const logged = store.logEvent({ ts: now, clientIp: '192.0.2.1', rcpts: ['a@example.org'], stage: 'rcpt', action: 'reject', rule: 'r', evidence: [] });
    const t0 = performance.now();
    await store.greyPut('k1', { firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp: '192.0.2.1', expiresAt: now + 60_000 });
    const greyMs = performance.now() - t0;
    assert.ok(greyMs < 150, `greyPut took ${greyMs.toFixed(1)} ms; it must not wait for the 200 ms event batch`);
    // Another connection sees the greylist entry at once: it is committed.
    const reader = new Database(path, { readonly: true });
    try {
      const rows = reader.prepare("SELECT name FROM sqlite_master WHERE type='table'").all() as Array<{ name: string }>;
      const greyTable = rows.map((r) => r.name).find((n) => n.includes('grey'));
      assert.ok(greyTable, 'a greylist table exists');
      const count = (reader.prepare(`SELECT count(*) AS n FROM ${greyTable}`).get() as { n: number }).n;
      assert.equal(count, 1);
    } finally {
      reader.close();
    }
    // A second event queued right before close() is committed by close().
    void store.logEvent({ ts: now + 1, clientIp: '192.0.2.2', rcpts: [], stage: 'rcpt', action: 'defer', rule: 'r2', evidence: [] });
    await logged;
    await store.close();
    const again = await openStore({ backend: 'sqlite', path }, { purgeIntervalSeconds: 0 });
    const events = await again.queryEvents({ limit: 10 });
    assert.deepEqual(events.map((e) => e.clientIp).sort(), ['192.0.2.1', '192.0.2.2']);
    await again.close();
  }));

test('sqlite: a lone greylist write commits within three loop turns; four or more commit in the first', () =>
  withDatabase('g.db', async (path) => {
    const store = await openStore({ backend: 'sqlite', path }, { purgeIntervalSeconds: 0 });
    const now = Date.now();
    const entry = { firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp: '192.0.2.1', expiresAt: now + 60_000 };
    const turnsUntil = async (p: Promise<unknown>): Promise<number> => {
      let settled = false;
      void p.then(() => (settled = true));
      let turns = 0;
      while (!settled && turns < 20) {
        await new Promise((r) => setImmediate(r));
        turns++;
      }
      return turns;
    };
    const lone = await turnsUntil(store.greyPut('lone', entry));
    assert.ok(lone >= 1 && lone <= 3, `a lone entry took ${lone} turns`);
    const four = await turnsUntil(Promise.all(['a', 'b', 'c', 'd'].map((k) => store.greyPut(k, entry))));
    assert.ok(four <= lone && four <= 2, `four entries took ${four} turns`);
    assert.equal((await store.greyList()).length, 5);
    await store.close();
  }));
