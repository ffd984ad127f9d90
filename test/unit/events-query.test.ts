// The decision log's search by client network, sender and recipient
// (EventQuery.cidr / from / rcpt), as the dashboard's Why? page asks it:
// the SQLite index ranges and the exact test in code agree.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore, type DecisionEvent } from '../../src/store/index.js';
import { eventMatcher } from '../../src/store/events.js';
import { cidrTextPrefix } from '../../src/store/sqlite/event-query.js';

const CLIENTS = ['192.0.2.7', '192.0.2.200', '192.0.20.1', '192.0.3.1', '10.1.2.3', '100.64.0.1', '100.127.255.255', '100.128.0.1', '2001:db8::1', '2001:db8:1::5', '2001:db9::1', '::1'];

function ev(i: number, clientIp: string): DecisionEvent {
  return {
    ts: 1_700_000_000_000 + i * 1000,
    clientIp,
    from: i % 3 === 0 ? '' : i % 3 === 1 ? 'Bob@Example.NET' : 'carol@other.example',
    rcpts: i % 2 === 0 ? ['alice@example.org'] : ['dave@example.org', 'Eve@Example.com'],
    stage: 'rcpt',
    action: 'reject',
    rule: 'r',
    evidence: [],
  };
}

test('cidrTextPrefix: the text every address inside shares, or none', () => {
  assert.equal(cidrTextPrefix('192.0.2.128/25'), '192.0.2.');
  assert.equal(cidrTextPrefix('192.0.0.0/16'), '192.0.');
  assert.equal(cidrTextPrefix('100.64.0.0/10'), '100.');
  assert.equal(cidrTextPrefix('0.0.0.0/0'), undefined);
  assert.equal(cidrTextPrefix('2001:db8::/32'), '2001:');
  assert.equal(cidrTextPrefix('::/8'), undefined);
  assert.throws(() => cidrTextPrefix('192.0.2.0/33'), /not an IP network/);
});

test('queryEvents by cidr, from and rcpt: SQLite answers what the exact test in code answers', async () => {
  const store = await openStore({ backend: 'sqlite', path: ':memory:' }, { ownAddresses: [], purgeIntervalSeconds: 0 });
  try {
    const events = CLIENTS.map((c, i) => ev(i, c));
    for (const e of events) await store.logEvent(e);
    const queries = [
      { cidr: '192.0.2.0/24' },
      { cidr: '192.0.2.128/25' },
      { cidr: '192.0.0.0/16' },
      { cidr: '100.64.0.0/10' },
      { cidr: '0.0.0.0/0' },
      { cidr: '2001:db8::/32' },
      { cidr: '::/0' },
      { cidr: '192.0.2.7' },
      { from: 'bob@example.net' },
      { from: '' },
      { rcpt: 'eve@example.com' },
      { rcpt: 'ALICE@example.org', cidr: '192.0.2.0/23' },
    ];
    for (const q of queries) {
      const got = (await store.queryEvents({ ...q, limit: 1000 })).map((e) => e.clientIp).sort();
      const match = eventMatcher(q);
      const want = events.filter((e) => match({ ...e, from: e.from })).map((e) => e.clientIp).sort();
      assert.deepEqual(got, want, JSON.stringify(q));
    }
    assert.deepEqual((await store.queryEvents({ cidr: '100.64.0.0/10' })).map((e) => e.clientIp).sort(), ['100.127.255.255', '100.64.0.1']);
    assert.equal((await store.queryEvents({ from: 'BOB@example.net' })).length, 4);
    assert.equal((await store.queryEvents({ cidr: '192.0.0.0/8', limit: 2 })).length, 2, 'the limit holds with the exact test');
    await assert.rejects(store.queryEvents({ cidr: 'nonsense' }), /not an IP network/);
  } finally {
    await store.close();
  }
});
