// The DKIM conformance vectors (test/fixtures/conformance/dkim), run unchanged
// through checkDkim with an in-memory zone. Goal: every signature passes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { checkDkim, type DkimSignature } from '../../src/checks/dkim.js';
import { envelope, fixedClock, makeContext } from '../helpers/check-context.js';
import { loadDkimVectors, tamperBody } from '../helpers/dkim-vectors.js';

const vectors = loadDkimVectors();

test('DKIM vectors: every signature of every file passes', async () => {
  let total = 0;
  let passed = 0;
  const failures: string[] = [];
  for (const v of vectors) {
    const ctx = makeContext(new ZoneResolver(new Zone(v.zone)), { clock: fixedClock(v.clockMs) });
    const ev = await checkDkim(envelope({ clientIp: '192.0.2.1', message: v.message }), ctx);
    const sigs = (ev.data?.signatures ?? []) as DkimSignature[];
    assert.equal(sigs.length, v.signatures, `${v.name}: signatures found`);
    total += sigs.length;
    for (const s of sigs) {
      if (s.result === 'pass') passed++;
      else failures.push(`${v.name}: ${s.info}`);
    }
  }
  console.log(`DKIM vectors: ${passed}/${total} signatures pass in ${vectors.length} files`);
  assert.equal(vectors.length, 7);
  assert.deepEqual(failures, []);
});

test('DKIM vectors: a body-modified copy fails', async () => {
  for (const v of vectors) {
    const ctx = makeContext(new ZoneResolver(new Zone(v.zone)), { clock: fixedClock(v.clockMs) });
    const ev = await checkDkim(envelope({ clientIp: '192.0.2.1', message: tamperBody(v.message) }), ctx);
    assert.equal(ev.result, 'fail', `${v.name}: ${ev.detail}`);
    assert.deepEqual(ev.data?.passingDomains, [], v.name);
  }
});

test('DKIM vectors: stalwart 005 (x=) is expired at today\'s clock', async () => {
  const v = vectors.find((x) => x.name.endsWith('005.txt'));
  assert.ok(v);
  const ctx = makeContext(new ZoneResolver(new Zone(v.zone)), { clock: fixedClock(Date.now()) });
  const ev = await checkDkim(envelope({ clientIp: '192.0.2.1', message: v.message }), ctx);
  assert.notEqual(ev.result, 'pass');
});
