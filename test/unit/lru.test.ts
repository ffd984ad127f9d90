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

  test('large caches order by use to within a quarter of their size', () => {
    const l = new Lru<number, number>(8);
    for (let i = 0; i < 8; i++) l.set(i, i);
    // 0 is the oldest; three sets later it has drifted past the slack (2): a hit moves it.
    assert.equal(l.get(0), 0);
    l.set(8, 8);
    assert.equal(l.peek(0), 0, 'the used entry survived');
    assert.equal(l.peek(1), undefined, 'the least recently used went');
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
