// The ban census behind frontline_bans_active: counted again after each
// count, on a real SQLite store, and spaced out after a slow count so that it
// never takes more than a twentieth of its worker's time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { BanCensus } from '../../src/report/metrics/index.js';
import { nextCountDelay } from '../../src/report/metrics/ban-census.js';

test('a slow count spaces out the next: at most a twentieth of the time goes to counting', () => {
  assert.equal(nextCountDelay(30_000, 5), 30_000);
  assert.equal(nextCountDelay(30_000, 1_500), 30_000);
  assert.equal(nextCountDelay(30_000, 4_400), 88_000);
  assert.equal(nextCountDelay(30_000, 0.2), 30_000);
});

test('the census counts again after each count, and not after stop()', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-census-'));
  const store = await openStore({ backend: 'sqlite', path: join(dir, 's.db'), pollMs: 0 }, { ownAddresses: [], purgeIntervalSeconds: 0 });
  try {
    const census = new BanCensus(store, (err) => assert.fail(String(err)));
    await store.ban({ cidr: '203.0.113.1/32', reason: 'r', category: 'probe', source: 'cli:root' });
    await census.start(20);
    assert.equal(census.byCategory().get('probe'), 1);
    await store.ban({ cidr: '203.0.113.2/32', reason: 'r', category: 'brute-force', source: 'cli:root' });
    for (let i = 0; i < 200 && census.byCategory().get('brute-force') !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(census.byCategory().get('brute-force'), 1, 'counted again on its own');
    await census.stop();
    await store.ban({ cidr: '203.0.113.3/32', reason: 'r', category: 'spam', source: 'cli:root' });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(census.byCategory().get('spam'), undefined, 'no count after stop()');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
