// The policy server's decision deadlines (src/postfix/deadlines.ts): a
// decision that settles in time passes through, one that does not is cut
// off, and a settled one leaves the list of decisions watched.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inFlightCount, withDeadline } from '../../src/core/deadline.js';

test('withDeadline passes a decision that settles in time, rejects one that does not, and forgets both', async () => {
  const base = inFlightCount();
  const quick = withDeadline(new Promise<string>((r) => setTimeout(() => r('ok'), 5)), 1000);
  const failing = assert.rejects(withDeadline(Promise.reject(new Error('bug')), 1000), /bug/);
  const hung = assert.rejects(withDeadline(new Promise<string>(() => undefined), 60), /decision took longer than 60 ms/);
  const late = assert.rejects(withDeadline(new Promise<string>((r) => setTimeout(() => r('late'), 400)), 60), /decision took longer than 60 ms/);
  assert.equal(inFlightCount(), base + 4);
  assert.equal(await quick, 'ok');
  await Promise.all([failing, hung, late]);
  assert.equal(inFlightCount(), base);
  // Settling after the cut-off changes nothing.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(inFlightCount(), base);
});

test('decisions settling in any order leave the list whole', async () => {
  const resolvers: Array<() => void> = [];
  const ps = Array.from({ length: 20 }, () => withDeadline(new Promise<void>((r) => resolvers.push(r)), 10_000));
  for (const i of [3, 0, 19, 10, 11, 1, 18]) resolvers[i]();
  await Promise.all([3, 0, 19, 10, 11, 1, 18].map((i) => ps[i]));
  assert.equal(inFlightCount(), 13);
  for (const r of resolvers) r();
  await Promise.all(ps);
  assert.equal(inFlightCount(), 0);
});
