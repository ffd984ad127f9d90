import { test } from 'node:test';
import assert from 'node:assert/strict';
import { banSeconds, durationTable, nextOffence, offenceAfterUnban, offencesToCap, planBan, resolveBanPolicy } from '../../src/store/bans.js';
import { InvalidEntryError } from '../../src/store/errors.js';
import { DEFAULT_BAN_POLICY } from '../../src/store/types.js';

const HOUR = 3600;
const DAY = 86400;
const mid = () => 0.5;

test('ban length doubles per offence up to the cap (defaults: 1 h … 30 days)', () => {
  const p = DEFAULT_BAN_POLICY;
  assert.deepEqual(
    [1, 2, 3, 4, 10, 11, 50].map((n) => banSeconds(n, p, mid)),
    [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 512 * HOUR, 30 * DAY, 30 * DAY],
  );
  assert.equal(offencesToCap(p), 11);
  assert.deepEqual(durationTable(p, mid).slice(-2), [512 * HOUR, 30 * DAY]);
  assert.deepEqual(durationTable({ ...p, factor: 1 }, mid), [HOUR]);
});

test('jitter stays within ± the fraction', () => {
  const p = DEFAULT_BAN_POLICY;
  assert.equal(banSeconds(1, p, () => 0), 0.9 * HOUR);
  assert.equal(banSeconds(1, p, () => 0.999999), Math.round(HOUR * (1 + 0.1 * (2 * 0.999999 - 1))));
  for (let i = 0; i < 1000; i++) {
    const s = banSeconds(3, p);
    assert.ok(s >= 0.9 * 4 * HOUR && s <= 1.1 * 4 * HOUR, String(s));
  }
});

test('offences count on within the quiet period and restart after it', () => {
  const p = resolveBanPolicy({ forgetAfterSeconds: 10 * DAY });
  const prev = { offences: 3, firstSeen: 1000, quietSince: 5000 };
  assert.deepEqual(nextOffence(prev, 5000 + 10 * DAY * 1000 - 1, p), { offences: 4, firstSeen: 1000 });
  assert.deepEqual(nextOffence(prev, 5000 + 10 * DAY * 1000, p), { offences: 1, firstSeen: 5000 + 10 * DAY * 1000 });
  assert.deepEqual(nextOffence(undefined, 42, p), { offences: 1, firstSeen: 42 });
  assert.deepEqual(offenceAfterUnban(prev, 4000), { ...prev, quietSince: 4000 });
  assert.deepEqual(offenceAfterUnban(prev, 9000), prev);
});

test('planBan: new ban, repeat while active (kept), fixed duration extends only', () => {
  const p = DEFAULT_BAN_POLICY;
  const input = { cidr: '192.0.2.1/32', reason: 'r', category: 'probe', source: 's' };
  const first = planBan({ now: 0, cidr: input.cidr, input, policy: p, seconds: (n) => banSeconds(n, p, mid) });
  assert.equal(first.created, true);
  assert.equal(first.ban.expiresAt, HOUR * 1000);
  assert.deepEqual(first.offence, { offences: 1, firstSeen: 0, quietSince: HOUR * 1000 });
  const again = planBan({ now: 60_000, cidr: input.cidr, input, policy: p, active: first.ban, offence: first.offence });
  assert.deepEqual([again.created, again.changed, again.ban], [false, false, first.ban]);
  const shorter = planBan({ now: 60_000, cidr: input.cidr, input: { ...input, durationSeconds: 60 }, policy: p, active: first.ban, offence: first.offence });
  assert.equal(shorter.changed, false);
  const longer = planBan({ now: 60_000, cidr: input.cidr, input: { ...input, durationSeconds: DAY }, policy: p, active: first.ban, offence: first.offence });
  assert.deepEqual([longer.changed, longer.ban.expiresAt, longer.offence.quietSince], [true, 60_000 + DAY * 1000, 60_000 + DAY * 1000]);
  const next = planBan({ now: HOUR * 1000, cidr: input.cidr, input, policy: p, active: first.ban, offence: first.offence, seconds: (n) => banSeconds(n, p, mid) });
  assert.deepEqual([next.created, next.ban.offences, next.ban.expiresAt - next.ban.createdAt], [true, 2, 2 * HOUR * 1000]);
  assert.throws(() => planBan({ now: 0, cidr: input.cidr, input: { ...input, durationSeconds: 0 }, policy: p }), InvalidEntryError);
});

test('nonsense policies are refused', () => {
  assert.throws(() => resolveBanPolicy({ factor: 0.5 }), InvalidEntryError);
  assert.throws(() => resolveBanPolicy({ maxSeconds: 10 }), InvalidEntryError);
  assert.throws(() => resolveBanPolicy({ jitter: 1 }), InvalidEntryError);
  assert.throws(() => resolveBanPolicy({ baseSeconds: 0 }), InvalidEntryError);
  assert.deepEqual(resolveBanPolicy({}), DEFAULT_BAN_POLICY);
});
