// The local checks' everyday answers are frozen objects made once per value,
// so the decision log serialises each once (store/events.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedEvidence } from '../../src/checks/evidence.js';
import { bannedQuick } from '../../src/checks/banned.js';
import { spamtrapQuick } from '../../src/checks/spamtrap.js';
import { nullSenderEvidence } from '../../src/checks/rfc.js';
import { compactEvidenceJson } from '../../src/store/events.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { Envelope } from '../../src/core/types.js';

test('sharedEvidence: one frozen object per value, data frozen too, a bounded number of values', () => {
  let made = 0;
  const answer = sharedEvidence((ip) => {
    made++;
    return { check: 'x', result: 'unlisted', detail: `${ip} is not listed`, ms: 0, data: { ip } };
  }, 2);
  const a = answer('192.0.2.1');
  assert.equal(answer(`192.0.2.${1}`), a);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.data));
  assert.throws(() => {
    (a as { detail: string }).detail = 'changed';
  }, TypeError);
  assert.equal(answer('192.0.2.2').detail, '192.0.2.2 is not listed');
  answer('192.0.2.3');
  assert.equal(made, 3);
  assert.notEqual(answer('192.0.2.1'), a, 'forgotten beyond maxEntries, made again');
});

test('banned, spamtrap and null_sender answer the same client, recipient or sender with the same frozen evidence', async () => {
  const store = await SqliteStore.open({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { purgeIntervalSeconds: 0 });
  try {
    const env = (clientIp: string, rcpt: string): Envelope => ({ clientIp, helo: 'mail.example.test', from: 'a@example.test', rcpts: [rcpt] }) as Envelope;
    const b1 = bannedQuick(env('192.0.2.9', 'u@x.test'), { store });
    assert.equal(bannedQuick(env('192.0.2.9', 'v@x.test'), { store }), b1);
    assert.equal(b1?.detail, '192.0.2.9 is not banned');
    assert.ok(Object.isFrozen(b1));
    const t1 = spamtrapQuick(env('192.0.2.9', 'U@X.test'), { store }, { traps: new Set(['trap@x.test']) });
    assert.equal(spamtrapQuick(env('198.51.100.1', 'u@x.test'), { store }, { traps: new Set(['trap@x.test']) }), t1);
    assert.equal(spamtrapQuick(env('198.51.100.1', 'trap@x.test'), { store }, { traps: new Set(['trap@x.test']) }), undefined);
    const n1 = nullSenderEvidence(env('192.0.2.9', 'u@x.test'));
    assert.equal(nullSenderEvidence(env('192.0.2.10', 'w@x.test')), n1);
    assert.deepEqual(n1.data, { rcpts: 1 });
    // Two recipients: made afresh, with its own count.
    assert.deepEqual(nullSenderEvidence({ ...env('192.0.2.9', 'u@x.test'), rcpts: ['u@x.test', 'w@x.test'] }).data, { rcpts: 2 });
    // The log's JSON of a shared entry is made once and equals a fresh serialisation.
    assert.equal(compactEvidenceJson([b1!, t1!]), JSON.stringify([b1, t1].map((e) => ({ check: e!.check, result: e!.result, detail: e!.detail, ms: e!.ms }))));
  } finally {
    await store.close();
  }
});
