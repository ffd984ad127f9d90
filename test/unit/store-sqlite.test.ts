// The Store conformance suite on SQLite: a fresh database file per test, in a temp dir.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import { openStore } from '../../src/store/index.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { storeConformance } from '../helpers/store-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
let n = 0;

storeConformance('sqlite', async () => ({
  async fresh() {
    const path = join(dir, `store-${++n}.db`);
    return { open: (deps) => SqliteStore.open({ backend: 'sqlite', path, pollMs: 20 }, deps) };
  },
  async close() {
    rmSync(dir, { recursive: true, force: true });
  },
}));

test('sqlite: WAL, synchronous NORMAL by default (FULL on request), schema version recorded', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
  try {
    const s = (await openStore({ backend: 'sqlite', path: join(d, 'a.db') }, { purgeIntervalSeconds: 0 })) as SqliteStore;
    assert.equal(s.database.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.database.pragma('synchronous', { simple: true }), 1);
    assert.ok((s.database.pragma('busy_timeout', { simple: true }) as number) > 0);
    await s.close();
    const f = (await openStore({ backend: 'sqlite', path: join(d, 'a.db'), synchronous: 'FULL' }, { purgeIntervalSeconds: 0 })) as SqliteStore;
    assert.equal(f.database.pragma('synchronous', { simple: true }), 2);
    await f.close();
    const db = new Database(join(d, 'a.db'));
    assert.equal((db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number }).v, MIGRATIONS.length);
    // A database from a newer frontline is refused, not damaged.
    db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, 0)').run(MIGRATIONS.length + 1);
    db.close();
    await assert.rejects(openStore({ backend: 'sqlite', path: join(d, 'a.db') }), StoreUnavailableError);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('sqlite: a write waiting on another process\'s lock fails as StoreUnavailableError after busy_timeout', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
  try {
    const path = join(d, 'b.db');
    const s = await openStore({ backend: 'sqlite', path, busyTimeoutMs: 50 }, { purgeIntervalSeconds: 0 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    await assert.rejects(s.ban({ cidr: '192.0.2.1', reason: 'x', category: 'manual', source: 't' }), StoreUnavailableError);
    other.exec('ROLLBACK');
    other.close();
    assert.equal((await s.ban({ cidr: '192.0.2.1', reason: 'x', category: 'manual', source: 't' })).refused, false);
    await s.close();
    await assert.rejects(s.getBan('192.0.2.1').then(() => s.showBan('192.0.2.1')), StoreUnavailableError);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('sqlite: a greylist commit that finds the write lock taken never blocks the event loop; it retries, and fails only after busy_timeout', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
  try {
    const path = join(d, 'g.db');
    const s = await SqliteStore.open({ backend: 'sqlite', path, busyTimeoutMs: 400, pollMs: 0 }, { purgeIntervalSeconds: 0 });
    const now = Date.now();
    const entry = (i: number) => ({ firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp: `192.0.2.${i}`, expiresAt: now + 60_000 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE'); // another process holds the write lock

    let settled = false;
    const first = s.greyPut('k1', entry(1)).then(() => (settled = true));
    // The loop keeps turning while the commit waits: timers fire on time, more entries join it.
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(performance.now() - t0 < 25 + 30, 'a 30 ms timer was not held up by the waiting commit');
    const second = s.greyPut('k2', entry(2));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(settled, false, 'not acknowledged while it is not committed');
    assert.equal((await s.greyGet('k1'))?.clientIp, '192.0.2.1', 'read-your-writes while it waits');
    assert.equal((other.prepare('SELECT count(*) AS n FROM greylist').get() as { n: number }).n, 0, 'nothing committed yet');

    other.exec('ROLLBACK'); // the lock is free: the retry commits both
    await Promise.all([first, second]);
    const check = new Database(path, { readonly: true });
    assert.deepEqual((check.prepare('SELECT key FROM greylist ORDER BY key').all() as Array<{ key: string }>).map((r) => r.key), ['k1', 'k2']);
    check.close();

    // Held longer than busy_timeout: the entries fail as a waiting write would (StoreUnavailableError → 4xx).
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    await assert.rejects(s.greyPut('k3', entry(3)), StoreUnavailableError);
    const waited = performance.now() - started;
    assert.ok(waited >= 390 && waited < 2000, `failed after ${Math.round(waited)} ms (busy_timeout 400)`);
    assert.equal(await s.greyGet('k3'), undefined, 'a failed entry is not answered from memory');
    other.exec('ROLLBACK');
    other.close();
    await s.greyPut('k3', entry(3));
    assert.equal((await s.greyGet('k3'))?.clientIp, '192.0.2.3');
    await s.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('sqlite: greyDeleteByClient scans past its chunk size (no client index), for a host and a subnet; migrations 4 and 5 drop the greylist indexes', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
  try {
    const path = join(d, 'g.db');
    const s = (await openStore({ backend: 'sqlite', path }, { purgeIntervalSeconds: 0 })) as SqliteStore;
    const now = Date.now();
    const entry = (clientIp: string) => ({ firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp, expiresAt: now + 60_000 });
    // 5,000 rows, more than two chunks; 192.0.2.7 owns every 500th, spread over all of them.
    const puts: Array<Promise<void>> = [];
    for (let i = 0; i < 5000; i++) {
      const ip = i % 500 === 0 ? '192.0.2.7' : `198.18.${i >> 8}.${i & 255}`;
      puts.push(s.greyPut(`net:x|s${String(i).padStart(5, '0')}@a.test|r@b.test`, entry(ip)));
    }
    await Promise.all(puts);
    assert.equal(await s.greyDeleteByClient('192.0.2.7'), 10);
    assert.equal(await s.greyDeleteByClient('192.0.2.7/32'), 0);
    // 198.18.0.0/24 held i = 0..255 minus i = 0 (192.0.2.7's).
    assert.equal(await s.greyDeleteByClient('198.18.0.0/24'), 255);
    assert.equal((await s.greyList({ limit: 10_000 })).length, 5000 - 10 - 255);
    const indexes = (s.database.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'greylist'").all() as Array<{ name: string }>).map((r) => r.name);
    assert.deepEqual(indexes.filter((n) => !n.startsWith('sqlite_autoindex')), []);
    await s.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('sqlite: purge walks the greylist and the rate buckets past its chunk size (no expiry index, migration 5) and deletes exactly the expired rows', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
  try {
    const path = join(d, 'p.db');
    const s = (await openStore({ backend: 'sqlite', path }, { purgeIntervalSeconds: 0 })) as SqliteStore;
    const now = Date.now();
    // 5,000 greylist rows over three chunks; every third one expired, spread over all chunks.
    const puts: Array<Promise<void>> = [];
    for (let i = 0; i < 5000; i++) {
      const expiresAt = i % 3 === 0 ? now - 1000 : now + 3_600_000;
      puts.push(s.greyPut(`net:x|s${String(i).padStart(5, '0')}@a.test|r@b.test`, { firstSeen: now - 5000, lastSeen: now - 5000, attempts: 1, passes: 0, clientIp: '192.0.2.1', expiresAt }));
    }
    await Promise.all(puts);
    // Rate buckets written as rateTake leaves them, 2,500 of them, the odd ones long full again (expired).
    const bucket = s.database.prepare('INSERT INTO rate_buckets (key, tokens, updated_at, expires_at) VALUES (?, ?, ?, ?)');
    s.database.transaction(() => {
      for (let i = 0; i < 2500; i++) bucket.run(`ip:198.18.${i >> 8}.${i & 255}`, 1, now - 10_000, i % 2 === 1 ? now - 1 : now + 60_000);
    })();
    const purged = await s.purge();
    assert.equal(purged.greylist, 1667);
    assert.equal(purged.rateBuckets, 1250);
    assert.equal((await s.greyList({ limit: 10_000 })).length, 5000 - 1667);
    assert.equal(await s.greyGet('net:x|s00001@a.test|r@b.test') !== undefined, true);
    assert.equal((s.database.prepare('SELECT count(*) AS n FROM greylist').get() as { n: number }).n, 5000 - 1667);
    assert.equal((s.database.prepare('SELECT count(*) AS n FROM rate_buckets WHERE expires_at <= ?').get(now) as { n: number }).n, 0);
    assert.equal((s.database.prepare('SELECT count(*) AS n FROM rate_buckets').get() as { n: number }).n, 1250);
    const indexes = (s.database.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('greylist', 'rate_buckets')").all() as Array<{ name: string }>).map((r) => r.name);
    assert.deepEqual(indexes.filter((n) => !n.startsWith('sqlite_autoindex')), []);
    assert.equal((await s.purge()).greylist, 0, 'a second purge finds nothing');
    await s.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('sqlite: scanBans pages past its page size by key (no OFFSET): each unexpired row once, the expired ones left out', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fl-sqlite-'));
  try {
    const s = (await openStore({ backend: 'sqlite', path: join(d, 's.db') }, { purgeIntervalSeconds: 0 })) as SqliteStore;
    const now = Date.now();
    // 120,000 rows (three pages of 50,000), every tenth one expired; written as the store writes them.
    const put = s.database.prepare('INSERT INTO bans (cidr, reason, category, source, first_seen, created_at, expires_at, offences) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const want = new Map<string, number>();
    s.database.transaction(() => {
      for (let i = 0; i < 120_000; i++) {
        const cidr = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`;
        const expiresAt = i % 10 === 0 ? now - 1 : now + 3_600_000 + i;
        put.run(cidr, 'r', 'manual', 't', now, now, expiresAt, 1);
        if (expiresAt > now) want.set(cidr, expiresAt);
      }
    })();
    const got = new Map<string, number>();
    let pages = 0;
    const n = await s.scanBans((cidrs, expiresAt) => {
      pages++;
      cidrs.forEach((c, i) => {
        assert.ok(!got.has(c), c);
        got.set(c, expiresAt[i]);
      });
    });
    assert.equal(n, 108_000);
    assert.equal(pages, 3);
    assert.deepEqual(got, want);
    await s.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
