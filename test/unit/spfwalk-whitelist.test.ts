// The walked whitelist on a schedule, with a fake clock: expiry of twice the
// interval, networks kept through DNS failures, resumption after a restart,
// and the scheduler's due logic.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { MemoryListSink } from '../../src/intel/list-sink.js';
import { newSpfListState, runWalkOnce, SpfWalkedList, type SpfListOptions } from '../../src/intel/spfwalk/whitelist.js';
import { DEFAULT_SENDER_DOMAINS } from '../../src/intel/spfwalk/default-senders.js';
import { IntervalSchedule, startSchedule } from '../../src/intel/schedule.js';
import { storeListSink } from '../../src/intel/store-sink.js';
import type { ListEntry as StoreListEntry } from '../../src/store/types.js';
import { openStore } from '../../src/store/index.js';

const HOUR = 3600_000;
const T0 = Date.UTC(2025, 0, 1);

function world(): Zone {
  return new Zone({
    'a.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/25 ip4:192.0.2.128/25 include:_spf.a.example -all' }],
    '_spf.a.example': [{ TXT: 'v=spf1 ip6:2001:db8:a::/48' }],
    'b.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24 ip4:192.0.2.7' }],
  });
}

function setup() {
  const zone = world();
  let now = T0;
  const sink = new MemoryListSink();
  const opts: SpfListOptions = { list: 'spf-walked', intervalS: 3600, sink, resolver: new ZoneResolver(zone), clock: { now: () => now } };
  return { zone, sink, opts, state: newSpfListState(), setNow: (t: number) => (now = t) };
}

const values = (entries: { value: string }[]) => entries.map((e) => e.value).sort();

describe('runWalkOnce', () => {
  test('writes the merged networks of each domain, expiring after two intervals', async () => {
    const { sink, opts, state } = setup();
    const run = await runWalkOnce(['a.example', 'b.example'], opts, state);
    assert.deepEqual(sink.lists.get('spf-walked'), [
      { value: '192.0.2.0/24', source: 'spf:a.example', expiresAt: T0 + 2 * HOUR },
      { value: '2001:db8:a::/48', source: 'spf:a.example', expiresAt: T0 + 2 * HOUR },
      { value: '192.0.2.7/32', source: 'spf:b.example', expiresAt: T0 + 2 * HOUR },
      { value: '198.51.100.0/24', source: 'spf:b.example', expiresAt: T0 + 2 * HOUR },
    ]);
    assert.equal(run.entries, 4);
    assert.deepEqual(
      run.domains.map((d) => [d.domain, d.status, d.fresh, d.kept]),
      [
        ['a.example', 'ok', 2, 0],
        ['b.example', 'ok', 2, 0],
      ],
    );
  });

  test('a DNS outage keeps the previous networks until they expire', async () => {
    const { zone, sink, opts, state, setNow } = setup();
    await runWalkOnce(['a.example', 'b.example'], opts, state);

    // One interval later a.example's DNS fails: its networks stay, with their old expiry.
    zone.delete('a.example');
    zone.load({ 'a.example': ['SERVFAIL'] });
    setNow(T0 + HOUR);
    const run = await runWalkOnce(['a.example', 'b.example'], opts, state);
    assert.deepEqual(
      run.domains.map((d) => [d.domain, d.status, d.fresh, d.kept]),
      [
        ['a.example', 'failed', 0, 2],
        ['b.example', 'ok', 2, 0],
      ],
    );
    const list = sink.lists.get('spf-walked')!;
    assert.deepEqual(values(list), ['192.0.2.0/24', '192.0.2.7/32', '198.51.100.0/24', '2001:db8:a::/48']);
    assert.equal(list.find((e) => e.value === '192.0.2.0/24')!.expiresAt, T0 + 2 * HOUR);
    assert.equal(list.find((e) => e.value === '198.51.100.0/24')!.expiresAt, T0 + 3 * HOUR);
    assert.match(run.walk.errors[0].reason, /SERVFAIL/);

    // Still failing once they have expired: gone.
    setNow(T0 + 2 * HOUR + 1);
    await runWalkOnce(['a.example', 'b.example'], opts, state);
    assert.deepEqual(values(sink.lists.get('spf-walked')!), ['192.0.2.7/32', '198.51.100.0/24']);

    // DNS back: back in the list.
    zone.delete('a.example');
    zone.load({ 'a.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24' }] });
    setNow(T0 + 3 * HOUR);
    await runWalkOnce(['a.example', 'b.example'], opts, state);
    assert.deepEqual(values(sink.lists.get('spf-walked')!), ['192.0.2.0/24', '192.0.2.7/32', '198.51.100.0/24']);
  });

  test('a partial walk writes what it found and keeps the rest', async () => {
    const { zone, sink, opts, state, setNow } = setup();
    await runWalkOnce(['a.example'], opts, state);
    zone.delete('_spf.a.example');
    zone.load({ '_spf.a.example': ['TIMEOUT'] });
    setNow(T0 + HOUR);
    const run = await runWalkOnce(['a.example'], opts, state);
    assert.equal(run.domains[0].status, 'partial');
    const list = sink.lists.get('spf-walked')!;
    assert.deepEqual(list.find((e) => e.value === '192.0.2.0/24'), { value: '192.0.2.0/24', source: 'spf:a.example', expiresAt: T0 + 3 * HOUR });
    assert.deepEqual(list.find((e) => e.value === '2001:db8:a::/48'), { value: '2001:db8:a::/48', source: 'spf:a.example', expiresAt: T0 + 2 * HOUR });
  });

  test('a successful walk drops networks no longer published, and domains no longer configured', async () => {
    const { zone, sink, opts, state, setNow } = setup();
    await runWalkOnce(['a.example', 'b.example'], opts, state);
    zone.delete('b.example');
    zone.load({ 'b.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24' }] });
    setNow(T0 + HOUR);
    await runWalkOnce(['b.example'], opts, state);
    assert.deepEqual(values(sink.lists.get('spf-walked')!), ['198.51.100.0/24']);
  });

  test('a domain that stops publishing SPF drops out after its entries expire', async () => {
    const { zone, sink, opts, state, setNow } = setup();
    await runWalkOnce(['b.example'], opts, state);
    zone.delete('b.example');
    setNow(T0 + HOUR);
    const run = await runWalkOnce(['b.example'], opts, state);
    assert.match(run.walk.errors[0].reason, /no SPF record \(NXDOMAIN\)/);
    assert.equal(sink.live('spf-walked', T0 + HOUR).length, 2);
    setNow(T0 + 2 * HOUR);
    await runWalkOnce(['b.example'], opts, state);
    assert.deepEqual(sink.lists.get('spf-walked'), []);
  });

  test('after a restart, the previous entries are read back from the sink', async () => {
    const { zone, sink, opts, state, setNow } = setup();
    await runWalkOnce(['a.example'], opts, state);
    zone.delete('a.example');
    zone.load({ 'a.example': ['TIMEOUT'] });
    setNow(T0 + HOUR);
    const run = await runWalkOnce(['a.example'], opts, newSpfListState());
    assert.equal(run.domains[0].kept, 2);
    assert.deepEqual(values(sink.lists.get('spf-walked')!), ['192.0.2.0/24', '2001:db8:a::/48']);
  });

  test('a network two domains share is one entry with the later expiry', async () => {
    const { zone, sink, opts, state, setNow } = setup();
    zone.load({ 'c.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24' }] });
    await runWalkOnce(['b.example', 'c.example'], opts, state);
    zone.delete('b.example');
    zone.load({ 'b.example': ['SERVFAIL'] });
    setNow(T0 + HOUR);
    await runWalkOnce(['b.example', 'c.example'], opts, state);
    const list = sink.lists.get('spf-walked')!;
    assert.deepEqual(list.find((e) => e.value === '198.51.100.0/24'), { value: '198.51.100.0/24', source: 'spf:c.example', expiresAt: T0 + 3 * HOUR });
    assert.equal(list.filter((e) => e.value === '198.51.100.0/24').length, 1);
  });

  test('SpfWalkedList asks for its domains on every run', async () => {
    const { sink, opts } = setup();
    let domains = ['a.example'];
    const job = new SpfWalkedList(opts, () => domains);
    await job.runOnce();
    domains = ['b.example'];
    await job.runOnce();
    assert.deepEqual(values(sink.lists.get('spf-walked')!), ['192.0.2.7/32', '198.51.100.0/24']);
  });
});

describe('default senders', () => {
  test('the shipped list has the large providers, no duplicates', () => {
    for (const d of ['gmail.com', '_spf.google.com', 'spf.protection.outlook.com', 'yahoo.com', 'icloud.com', 'amazonses.com', 'sendgrid.net', 'mandrillapp.com', '_spf.salesforce.com', 'zoho.com', 'protonmail.ch', 'fastmail.com']) {
      assert.ok(DEFAULT_SENDER_DOMAINS.includes(d), d);
    }
    assert.equal(new Set(DEFAULT_SENDER_DOMAINS).size, DEFAULT_SENDER_DOMAINS.length);
  });
});

describe('storeListSink', () => {
  test('turns replaceList into the fewest listDel/listAdd calls', async () => {
    const rows = new Map<string, StoreListEntry>();
    const calls: string[] = [];
    const store = {
      async listShow() {
        return [...rows.values()];
      },
      async listDel(_list: string, entry: string) {
        calls.push(`del ${entry}`);
        return rows.delete(entry);
      },
      async listAdd(list: string, entry: string, o: { source: string; expiresAt?: number }) {
        calls.push(`add ${entry}`);
        const e: StoreListEntry = { list, kind: 'ip', entry, source: o.source, addedAt: 0, expiresAt: o.expiresAt };
        rows.set(entry, e);
        return e;
      },
    };
    const sink = storeListSink(store);
    await sink.replaceList('spf-walked', [
      { value: '192.0.2.0/24', source: 'spf:a', expiresAt: 10 },
      { value: '198.51.100.0/24', source: 'spf:b', expiresAt: 10 },
    ]);
    calls.length = 0;
    await sink.replaceList('spf-walked', [
      { value: '192.0.2.0/24', source: 'spf:a', expiresAt: 10 },
      { value: '203.0.113.0/24', source: 'spf:b', expiresAt: 20 },
    ]);
    assert.deepEqual(calls, ['del 198.51.100.0/24', 'add 203.0.113.0/24']);
    assert.deepEqual(await sink.list('spf-walked'), [
      { value: '192.0.2.0/24', source: 'spf:a', expiresAt: 10 },
      { value: '203.0.113.0/24', source: 'spf:b', expiresAt: 20 },
    ]);
  });
});

describe('with the real SQLite store', () => {
  test('the walked list lands in the store, is looked up from memory, and follows the walk', async () => {
    let now = T0;
    const clock = { now: () => now };
    const store = await openStore({ backend: 'sqlite', path: ':memory:' }, { clock, purgeIntervalSeconds: 0 });
    try {
      const zone = new Zone({ 'a.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/25 ip4:192.0.2.128/25 ip6:2001:DB8::/32' }] });
      const opts: SpfListOptions = { list: 'spf-walked', intervalS: 3600, sink: storeListSink(store), resolver: new ZoneResolver(zone), clock };
      const state = newSpfListState();
      await runWalkOnce(['a.example'], opts, state);
      assert.deepEqual(
        (await store.listShow('spf-walked')).map((e) => [e.entry, e.source, e.expiresAt]),
        [
          ['192.0.2.0/24', 'spf:a.example', T0 + 2 * HOUR],
          ['2001:db8::/32', 'spf:a.example', T0 + 2 * HOUR],
        ],
      );
      assert.ok(store.lookup.listHas('spf-walked', '192.0.2.77'));
      assert.ok(store.lookup.listHas('spf-walked', '2001:db8::5'));
      zone.delete('a.example');
      zone.load({ 'a.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24' }] });
      now += HOUR;
      await runWalkOnce(['a.example'], opts, state);
      assert.deepEqual((await store.listShow('spf-walked')).map((e) => e.entry), ['198.51.100.0/24']);
      assert.ok(!store.lookup.listHas('spf-walked', '192.0.2.77'));
    } finally {
      await store.close();
    }
  });
});

describe('IntervalSchedule', () => {
  test('jobs are due at once, then one interval after they started', () => {
    const a = { name: 'a', intervalMs: 1000, run: async () => {} };
    const b = { name: 'b', intervalMs: 5000, run: async () => {} };
    const s = new IntervalSchedule([a, b]);
    assert.deepEqual(s.due(0), [a, b]);
    s.started(a, 0);
    s.started(b, 0);
    assert.deepEqual(s.due(999), []);
    assert.equal(s.waitMs(999), 1);
    assert.deepEqual(s.due(1000), [a]);
    s.started(a, 1000);
    assert.deepEqual(s.due(5000), [a, b]);
    assert.throws(() => new IntervalSchedule([{ name: 'x', intervalMs: 0, run: async () => {} }]), /positive/);
  });

  test('startSchedule runs each job at once and stops cleanly', async () => {
    let runs = 0;
    const running = startSchedule([{ name: 'a', intervalMs: 3600_000, run: async () => void runs++ }], { clock: { now: () => 0 } });
    await running.stop();
    assert.equal(runs, 1);
  });
});
