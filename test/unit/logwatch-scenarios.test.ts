// Scenarios: counting windows, leaky buckets, immediate bans, address
// guessing, cooldown, the LRU cap, and windows in log time for replays.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ScenarioEngine, type Decision, type Scenario } from '../../src/intel/logwatch/scenarios.js';
import { IgnoreList } from '../../src/intel/logwatch/ip.js';
import { replay, resolveScenarios } from '../../src/intel/logwatch/index.js';
import { Pipeline } from '../../src/intel/logwatch/pipeline.js';
import { parseLogTime } from '../../src/intel/logwatch/timestamp.js';
import type { LogEvent } from '../../src/intel/logwatch/formats/types.js';

const S = 1000;
const MIN = 60 * S;

function scenario(over: Partial<Scenario> = {}): Scenario {
  return { name: 'ssh', match: ['sshd.*'], count: 3, windowMs: 10 * MIN, distinct: false, cooldownMs: 10 * MIN, category: 'brute-force', ...over };
}

const ev = (ip: string, kind = 'sshd.auth-fail', more: Partial<LogEvent> = {}): LogEvent => ({ kind, ip, times: 1, ...more });

/** Feed events at the given times (ms); returns the decisions. */
function run(engine: ScenarioEngine, items: Array<[number, LogEvent]>): Decision[] {
  const out: Decision[] = [];
  items.forEach(([t, e], i) => engine.observe(e, t, i + 1, 'test', out));
  return out;
}

describe('sliding window (maxretry/findtime)', () => {
  test('N events within the window ban; fewer do not', () => {
    const e = new ScenarioEngine([scenario()]);
    const d = run(e, [
      [0, ev('203.0.113.1')],
      [4 * MIN, ev('203.0.113.1')],
      [9 * MIN, ev('203.0.113.1')],
    ]);
    assert.equal(d.length, 1);
    assert.deepEqual(
      { ip: d[0].ip, cidr: d[0].cidr, count: d[0].count, first: d[0].firstLine, last: d[0].lastLine, category: d[0].category, t0: d[0].firstTime, t1: d[0].lastTime },
      { ip: '203.0.113.1', cidr: '203.0.113.1/32', count: 3, first: 1, last: 3, category: 'brute-force', t0: 0, t1: 9 * MIN },
    );
  });

  test('events spread wider than the window never ban', () => {
    const e = new ScenarioEngine([scenario()]);
    const items: Array<[number, LogEvent]> = [];
    for (let i = 0; i < 20; i++) items.push([i * 6 * MIN, ev('203.0.113.1')]);
    assert.deepEqual(run(e, items), []);
  });

  test('the window edge: exactly window apart still counts, one ms more does not', () => {
    const inside = new ScenarioEngine([scenario({ count: 2 })]);
    assert.equal(run(inside, [[0, ev('203.0.113.1')], [10 * MIN, ev('203.0.113.1')]]).length, 1);
    const outside = new ScenarioEngine([scenario({ count: 2 })]);
    assert.equal(run(outside, [[0, ev('203.0.113.1')], [10 * MIN + 1, ev('203.0.113.1')]]).length, 0);
  });

  test('addresses are counted apart; kinds outside match are ignored', () => {
    const e = new ScenarioEngine([scenario()]);
    const d = run(e, [
      [0, ev('203.0.113.1')],
      [1, ev('203.0.113.2')],
      [2, ev('203.0.113.1', 'postfix.sasl-fail')],
      [3, ev('203.0.113.2')],
      [4, ev('203.0.113.1', 'sshd.invalid-user')],
      [5, ev('203.0.113.2')],
    ]);
    assert.deepEqual(d.map((x) => [x.ip, x.lastLine, x.kinds]), [['203.0.113.2', 6, ['sshd.auth-fail']]]);
  });

  test('"message repeated N times" counts N', () => {
    const e = new ScenarioEngine([scenario({ count: 5 })]);
    const d = run(e, [[0, ev('203.0.113.1')], [1, ev('203.0.113.1', 'sshd.auth-fail', { times: 4 })]]);
    assert.equal(d.length, 1);
    assert.equal(d[0].count, 5);
  });

  test('after a ban the address is quiet for the cooldown, then counted again', () => {
    const e = new ScenarioEngine([scenario({ count: 2, cooldownMs: 5 * MIN })]);
    const d = run(e, [
      [0, ev('203.0.113.1')],
      [1 * S, ev('203.0.113.1')], // ban
      [2 * S, ev('203.0.113.1')],
      [3 * S, ev('203.0.113.1')], // cooldown: not counted
      [6 * MIN, ev('203.0.113.1')],
      [6 * MIN + 1, ev('203.0.113.1')], // second ban
    ]);
    assert.deepEqual(d.map((x) => x.lastLine), [2, 6]);
  });
});

describe('immediate, leaky bucket, distinct', () => {
  test('count 1 bans at the first event', () => {
    const e = new ScenarioEngine([scenario({ name: 'probe', match: ['http.probe.env'], count: 1, category: 'probe' })]);
    const d = run(e, [[0, ev('203.0.113.9', 'http.probe.env')], [1, ev('203.0.113.9', 'http.probe.env')]]);
    assert.deepEqual(d.map((x) => [x.scenario, x.count, x.category]), [['probe', 1, 'probe']]);
  });

  test('leaky bucket: a burst overflows, a trickle below the leak rate never does', () => {
    const bucket = scenario({ count: 4, leakMs: 30 * S });
    const burst = new ScenarioEngine([bucket]);
    assert.equal(run(burst, [0, 1, 2, 3].map((i) => [i * S, ev('203.0.113.1')])).length, 1);
    const trickle = new ScenarioEngine([bucket]);
    assert.equal(run(trickle, Array.from({ length: 50 }, (_, i) => [i * 31 * S, ev('203.0.113.1')] as [number, LogEvent])).length, 0);
    // Leaking partly: 3 quick, 45 s later one has leaked (level 2, +1 = 3), then one more → 4: ban at the 5th.
    const partly = new ScenarioEngine([bucket]);
    const d = run(partly, [[0, ev('203.0.113.1')], [1, ev('203.0.113.1')], [2, ev('203.0.113.1')], [45 * S, ev('203.0.113.1')], [46 * S, ev('203.0.113.1')]]);
    assert.deepEqual(d.map((x) => x.lastLine), [5]);
  });

  test('address guessing counts distinct recipients within the window', () => {
    const guess = scenario({ name: 'guess', match: ['postfix.unknown-user'], count: 3, windowMs: 60 * MIN, distinct: true, category: 'address-guessing' });
    const e = new ScenarioEngine([guess]);
    const u = (key: string, ip = '203.0.113.50') => ev(ip, 'postfix.unknown-user', { key });
    const d = run(e, [
      [0, u('anna@example.com')],
      [1 * MIN, u('anna@example.com')], // same recipient again: still 1
      [2 * MIN, u('ben@example.com')],
      [3 * MIN, u('carl@example.com', '203.0.113.51')], // another client
      [4 * MIN, u('ben@example.com')],
      [5 * MIN, u('dora@example.com')], // third distinct → ban
    ]);
    assert.deepEqual(d.map((x) => [x.ip, x.count, x.firstLine, x.lastLine, x.category]), [['203.0.113.50', 3, 2, 6, 'address-guessing']]);
  });

  test('distinct keys older than the window are forgotten', () => {
    const e = new ScenarioEngine([scenario({ match: ['postfix.unknown-user'], count: 3, windowMs: 10 * MIN, distinct: true })]);
    const u = (key: string) => ev('203.0.113.50', 'postfix.unknown-user', { key });
    assert.deepEqual(run(e, [[0, u('a')], [1 * MIN, u('b')], [12 * MIN, u('c')]]), []);
  });
});

describe('bounds', () => {
  test('a flood of distinct addresses never grows the map past its cap', () => {
    const e = new ScenarioEngine(resolveScenarios(), { maxTracked: 1000 });
    const out: Decision[] = [];
    for (let i = 0; i < 50_000; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      e.observe(ev(ip, 'sshd.auth-fail'), i, i, 'flood', out);
      e.observe(ev(ip, 'http.status.404'), i, i, 'flood', out);
    }
    assert.ok(e.tracked <= 1000, `tracked ${e.tracked}`);
    assert.equal(out.length, 0);
  });

  test('the least recently seen address is dropped first; a recently seen one keeps its count', () => {
    const e = new ScenarioEngine([scenario({ count: 3 })], { maxTracked: 100 });
    const out: Decision[] = [];
    const others = (from: number, n: number) => {
      for (let i = from; i < from + n; i++) e.observe(ev(`10.0.${i >> 8}.${i & 255}`), i, i, 't', out);
    };
    e.observe(ev('203.0.113.1'), 0, 1, 't', out); // A: 1
    e.observe(ev('203.0.113.2'), 0, 2, 't', out); // B: 1
    others(0, 50);
    e.observe(ev('203.0.113.1'), 1, 3, 't', out); // A: 2, now the most recent
    others(50, 60); // 60 newer entries: B (older than all of them) is pushed out, A is not
    assert.ok(e.tracked <= 100);
    e.observe(ev('203.0.113.1'), 2, 4, 't', out); // A: 3 → ban
    e.observe(ev('203.0.113.2'), 2, 5, 't', out); // B: starts again at 1
    e.observe(ev('203.0.113.2'), 3, 6, 't', out); // B: 2
    assert.deepEqual(out.map((d) => d.ip), ['203.0.113.1']);
  });

  test('ignored networks are never counted', () => {
    const e = new ScenarioEngine([scenario({ count: 1 })], { ignore: new IgnoreList(['127.0.0.0/8', '::1/128', '192.0.2.0/24']) });
    assert.deepEqual(run(e, [[0, ev('127.0.0.1')], [1, ev('::1')], [2, ev('192.0.2.9')], [3, ev('203.0.113.1')]]).map((d) => d.ip), ['203.0.113.1']);
  });

  test('ipv6_prefix: addresses of one /64 count together and the /64 is banned', () => {
    const e = new ScenarioEngine([scenario({ count: 3 })], { ipv6Prefix: 64 });
    const d = run(e, [[0, ev('2001:db8:1:2::a')], [1, ev('2001:db8:1:2::b')], [2, ev('2001:db8:1:2:ffff::c')]]);
    assert.deepEqual(d.map((x) => x.cidr), ['2001:db8:1:2::/64']);
  });
});

describe('time', () => {
  test('log stamps: syslog (year from the reference), RFC 3339, nginx access and error, Apache error', () => {
    const ref = new Date(2026, 10, 23, 12, 0, 0).getTime();
    assert.equal(parseLogTime('Nov 22 05:01:02', ref), new Date(2026, 10, 22, 5, 1, 2).getTime());
    assert.equal(parseLogTime('Nov  2 05:01:02', ref), new Date(2026, 10, 2, 5, 1, 2).getTime());
    // A December line read in January belongs to last year.
    assert.equal(parseLogTime('Dec 31 23:59:59', new Date(2027, 0, 1, 0, 5).getTime()), new Date(2026, 11, 31, 23, 59, 59).getTime());
    assert.equal(parseLogTime('2026-11-22T05:01:02.500+01:00', ref), Date.UTC(2026, 10, 22, 4, 1, 2, 500));
    assert.equal(parseLogTime('2026-11-22T05:01:02Z', ref), Date.UTC(2026, 10, 22, 5, 1, 2));
    assert.equal(parseLogTime('22/Nov/2026:05:01:02 +0000', ref), Date.UTC(2026, 10, 22, 5, 1, 2));
    assert.equal(parseLogTime('22/Nov/2026:05:01:02 -0130', ref), Date.UTC(2026, 10, 22, 6, 31, 2));
    assert.equal(parseLogTime('2026/11/22 05:01:02', ref), new Date(2026, 10, 22, 5, 1, 2).getTime());
    assert.equal(parseLogTime('Sun Nov 22 05:01:02.123456 2026', ref), new Date(2026, 10, 22, 5, 1, 2, 123).getTime());
    assert.equal(parseLogTime('yesterday', ref), undefined);
  });

  test('replay computes windows in log time, whatever the clock says', async () => {
    const ref = new Date(2026, 10, 23).getTime();
    const line = (hms: string, ip: string) => `Nov 22 ${hms} mx1 sshd[1]: Failed password for root from ${ip} port 1 ssh2`;
    // 6 failures 3 minutes apart (15 min in all: never 6 within 10 min) and 6 within a minute.
    const slow = ['05:00:00', '05:03:00', '05:06:00', '05:09:00', '05:12:00', '05:15:00'].map((t) => line(t, '203.0.113.1'));
    const fast = ['06:00:00', '06:00:10', '06:00:20', '06:00:30', '06:00:40', '06:00:50'].map((t) => line(t, '203.0.113.2'));
    const d = await replay([...slow, ...fast], { clock: { now: () => ref } });
    assert.deepEqual(d.map((x) => [x.ip, x.firstLine, x.lastLine, x.lastTime - x.firstTime]), [['203.0.113.2', 7, 12, 50 * S]]);
  });

  test('live pipelines use the injected clock, not the line stamps', () => {
    let now = 0;
    const engine = new ScenarioEngine([scenario({ count: 3 })]);
    const p = new Pipeline({ format: 'sshd', engine, clock: { now: () => now }, time: 'clock', source: 'x' });
    const out: Decision[] = [];
    const text = 'Nov 22 05:00:00 mx1 sshd[1]: Failed password for root from 203.0.113.3 port 1 ssh2';
    for (let i = 0; i < 3; i++) {
      p.feed({ text, cut: false, lineNo: i + 1 }, out);
      now += 6 * MIN; // the same stamp every time, but 6 minutes pass on the clock
    }
    assert.equal(out.length, 0);
    p.feed({ text, cut: false, lineNo: 4 }, out);
    p.feed({ text, cut: false, lineNo: 5 }, out);
    assert.equal(out.length, 1);
  });
});
