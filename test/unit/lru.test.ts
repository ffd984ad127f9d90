// The bounded LRU map behind the hot-path memos and the evidence cache.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lru, memoiseString } from '../../src/core/lru.js';

describe('Lru', () => {
  test('keeps at most maxEntries, dropping the least recently used', () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    assert.equal(l.get('a'), 1); // a is now the most recently used
    assert.equal(l.set('c', 3), 1);
    assert.equal(l.size, 2);
    assert.equal(l.peek('b'), undefined);
    assert.equal(l.get('a'), 1);
    assert.equal(l.get('c'), 3);
  });

  test('orders by use exactly: a hit, an update and a peek', () => {
    const l = new Lru<number, number>(8);
    for (let i = 0; i < 8; i++) l.set(i, i);
    assert.equal(l.get(0), 0); // 0 was the oldest; now the newest
    l.set(8, 8);
    assert.equal(l.peek(0), 0, 'the used entry survived');
    assert.equal(l.peek(1), undefined, 'the least recently used went');
    assert.equal(l.peek(2), 2); // a peek does not count as a use
    assert.equal(l.set(2, 20), 0, 'an update drops nothing');
    l.set(9, 9);
    assert.equal(l.peek(3), undefined, '3 went: 2 was used by its update');
    assert.equal(l.peek(2), 20);
    assert.equal(l.size, 8);
  });

  test('a deleted entry leaves the order intact; a full cache keeps working after many rounds', () => {
    const l = new Lru<string, number>(3);
    l.set('a', 1);
    l.set('b', 2);
    l.set('c', 3);
    assert.equal(l.delete('b'), true);
    assert.equal(l.delete('b'), false);
    assert.equal(l.set('d', 4), 0, 'room made by the delete');
    assert.equal(l.set('e', 5), 1);
    assert.equal(l.peek('a'), undefined);
    assert.deepEqual(['c', 'd', 'e'].map((k) => l.peek(k)), [3, 4, 5]);
    // One hot key and a stream of new ones, far past the capacity: the hot key stays, the size stays bounded.
    const m = new Lru<string, number>(100);
    let dropped = 0;
    for (let i = 0; i < 20_000; i++) {
      dropped += m.set(`k${i}`, i);
      if (m.get('hot') === undefined) m.set('hot', -1);
    }
    assert.equal(m.size, 100);
    assert.equal(m.get('hot'), -1);
    assert.equal(m.peek('k19999'), 19999);
    assert.equal(m.peek('k19900'), undefined);
    assert.equal(dropped, 20_000 + 1 - 100);
    m.clear();
    assert.equal(m.size, 0);
    assert.equal(m.set('x', 1), 0);
    assert.equal(m.get('x'), 1);
  });

  test('rejects a size below 1; delete and clear', () => {
    assert.throws(() => new Lru(0), /at least 1/);
    const l = new Lru<string, string>(4);
    l.set('x', 'y');
    assert.equal(l.delete('x'), true);
    l.set('z', 'w');
    l.clear();
    assert.equal(l.size, 0);
  });

  test('memoiseString calls the function once per input; errors are not kept', () => {
    let calls = 0;
    const f = memoiseString((s: string) => {
      calls++;
      if (s === 'bad') throw new Error('bad input');
      return s.toUpperCase();
    }, 10);
    assert.equal(f('a'), 'A');
    assert.equal(f('a'), 'A');
    assert.equal(calls, 1);
    assert.throws(() => f('bad'));
    assert.throws(() => f('bad'));
    assert.equal(calls, 3);
  });
});
