// The decision log stores each evidence entry's text once (evidence_pieces)
// and events refer to it: what comes back from queryEvents is what was
// logged, a version 1 events file is upgraded and still read, and retention
// drops the pieces no remaining event can refer to.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { EVENTS_SCHEMA, EVENTS_VERSION, PIECES_SCHEMA, eventsPathFor } from '../../src/store/sqlite/events-file.js';
import type { DecisionEvent } from '../../src/store/types.js';

const dir = mkdtempSync(join(tmpdir(), 'fl-pieces-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function fresh(): string {
  const d = join(dir, `${++n}`);
  mkdirSync(d);
  return join(d, 'frontline.db');
}

function open(path: string): Promise<SqliteStore> {
  return SqliteStore.open({ backend: 'sqlite', path, pollMs: 0, busyTimeoutMs: 2000 }, { purgeIntervalSeconds: 0 });
}

const HOUR = 3_600_000;
const T0 = Date.UTC(2020, 0, 1);

// Shared (frozen) entries, as the evidence cache hands them out, and fresh ones.
const notBanned = Object.freeze({ check: 'banned', result: 'none', detail: 'not banned', ms: 0 });
const spfPass = Object.freeze({ check: 'spf', result: 'pass', detail: 'sender.example: pass', ms: 0 });
function ev(i: number, extra: Partial<DecisionEvent> = {}): DecisionEvent {
  return {
    ts: T0 + i,
    clientIp: `192.0.2.${i % 250}`,
    rcpts: [`u${i}@rcpt.example`],
    stage: 'rcpt',
    action: 'continue',
    rule: 'default',
    evidence: [notBanned, spfPass, { check: 'greylist', result: 'pass', detail: `seen ${i % 3} times`, ms: 1.5 }],
    ...extra,
  };
}

function pieceCount(path: string): number {
  const db = new Database(eventsPathFor(path), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM evidence_pieces').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function evidenceColumns(path: string): string[] {
  const db = new Database(eventsPathFor(path), { readonly: true });
  try {
    return (db.prepare('SELECT evidence FROM events ORDER BY id').all() as Array<{ evidence: string }>).map((r) => r.evidence);
  } finally {
    db.close();
  }
}

describe('evidence pieces', () => {
  test('each distinct entry is stored once; events refer to it and read back whole, in order', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      for (let i = 0; i < 600; i++) void s.logEvent(ev(i));
      const got = await s.queryEvents({ limit: 1000 });
      assert.equal(got.length, 600);
      for (const e of got) {
        const i = e.ts - T0;
        assert.deepEqual(e.evidence, [
          { check: 'banned', result: 'none', detail: 'not banned', ms: 0 },
          { check: 'spf', result: 'pass', detail: 'sender.example: pass', ms: 0 },
          { check: 'greylist', result: 'pass', detail: `seen ${i % 3} times`, ms: 1.5 },
        ]);
      }
    } finally {
      await s.close();
    }
    // Two shared entries and three greylist texts: five pieces for 600 events.
    assert.equal(pieceCount(path), 5);
    assert.ok(evidenceColumns(path).every((c) => /^#\d+(,\d+){2}$/.test(c)));
  });

  test('an event without evidence, and detail cut as before', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      await s.logEvent(ev(1, { evidence: [] }));
      await s.logEvent(ev(2, { evidence: [{ check: 'dnsbl', result: 'listed', detail: 'x'.repeat(400), ms: 2 }] }));
      const [second, first] = await s.queryEvents({ limit: 10 });
      assert.deepEqual(first.evidence, []);
      assert.equal(second.evidence[0].detail, `${'x'.repeat(299)}…`);
    } finally {
      await s.close();
    }
  });

  test('a batch that cannot be serialised as it is (a recipient that is not a string) goes with its recipients as text; the rest of it is intact', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      void s.logEvent(ev(1));
      const odd = ev(2, { rcpts: [(() => 'x') as unknown as string] });
      void s.logEvent(odd);
      void s.logEvent(ev(3));
      const got = await s.queryEvents({ limit: 10 });
      assert.equal(got.length, 3);
      assert.equal(typeof got[1].rcpts[0], 'string');
      assert.deepEqual(got[0].rcpts, ['u3@rcpt.example']);
      assert.ok(got.every((e) => e.evidence.length === 3));
    } finally {
      await s.close();
    }
  });

  test('optional fields cross to the writer thread as they are: absent ones stay absent, present ones (non-ASCII too) intact', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      void s.logEvent(ev(1));
      void s.logEvent(ev(2, { sessionId: 'a1b2.0', helo: 'mx.exämple.test', from: 'zoë@exämple.test', code: 450, text: 'Greylisted – try again' }));
      const got = await s.queryEvents({ limit: 10 });
      const plain = got.find((e) => e.ts === T0 + 1)!;
      const full = got.find((e) => e.ts === T0 + 2)!;
      for (const k of ['sessionId', 'helo', 'from', 'code', 'text'] as const) assert.equal(k in plain, false, k);
      assert.deepEqual(
        { sessionId: full.sessionId, helo: full.helo, from: full.from, code: full.code, text: full.text },
        { sessionId: 'a1b2.0', helo: 'mx.exämple.test', from: 'zoë@exämple.test', code: 450, text: 'Greylisted – try again' },
      );
    } finally {
      await s.close();
    }
  });

  test('a version 2 events file gains the score and test-mode columns; its rows read as they were', async () => {
    const path = fresh();
    const old = new Database(eventsPathFor(path));
    old.pragma('journal_mode = WAL');
    old.exec(EVENTS_SCHEMA);
    old.exec(PIECES_SCHEMA);
    old.pragma('user_version = 2');
    old
      .prepare(`INSERT INTO events (ts, client_ip, rcpts, rcpt_domains, stage, action, rule, evidence) VALUES (?, '192.0.2.1', '[]', '||', 'rcpt', 'continue', 'old', '[]')`)
      .run(T0);
    old.close();
    const s = await open(path);
    try {
      assert.equal(s.eventsDatabase.pragma('user_version', { simple: true }), EVENTS_VERSION);
      await s.logEvent(ev(5, { score: 2, wouldHave: [{ rule: 'strict', action: 'reject', code: 554 }] }));
      const [newer, older] = await s.queryEvents({ limit: 10 });
      assert.equal(older.rule, 'old');
      assert.equal(older.score, undefined);
      assert.equal(older.wouldHave, undefined);
      assert.equal(newer.score, 2);
      assert.deepEqual(newer.wouldHave, [{ rule: 'strict', action: 'reject', code: 554 }]);
    } finally {
      await s.close();
    }
  });

  test('a version 1 events file is upgraded: its rows read as they were, new rows by reference', async () => {
    const path = fresh();
    const old = new Database(eventsPathFor(path));
    old.pragma('journal_mode = WAL');
    old.exec(EVENTS_SCHEMA);
    old.pragma('user_version = 1');
    old
      .prepare(
        `INSERT INTO events (ts, client_ip, rcpts, rcpt_domains, stage, action, rule, evidence) VALUES (?, '192.0.2.1', '[]', '||', 'rcpt', 'continue', 'old', ?)`,
      )
      .run(T0, JSON.stringify([{ check: 'spf', result: 'fail', detail: 'old row', ms: 3 }]));
    old.close();
    const s = await open(path);
    try {
      assert.equal(s.eventsDatabase.pragma('user_version', { simple: true }), EVENTS_VERSION);
      await s.logEvent(ev(5));
      const [newer, older] = await s.queryEvents({ limit: 10 });
      assert.deepEqual(older.evidence, [{ check: 'spf', result: 'fail', detail: 'old row', ms: 3 }]);
      assert.equal(older.rule, 'old');
      assert.equal(newer.evidence.length, 3);
    } finally {
      await s.close();
    }
    const cols = evidenceColumns(path);
    assert.ok(cols[0].startsWith('['));
    assert.ok(cols[1].startsWith('#'));
  });

  test('retention drops the pieces of hours before the oldest remaining event, never one a remaining event uses', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      // Hour 0: its own greylist text; hour 5: another. The shared entries are stored under each hour.
      await s.logEvent(ev(0, { evidence: [notBanned, { check: 'greylist', result: 'pass', detail: 'hour 0', ms: 0 }] }));
      await s.logEvent(ev(5 * HOUR, { evidence: [notBanned, { check: 'greylist', result: 'pass', detail: 'hour 5', ms: 0 }] }));
      assert.equal(pieceCount(path), 4);
      // Keep the newest event only (the clock is well past both hours).
      assert.equal(await s.pruneEvents({ maxRows: 1 }), 1);
      assert.equal(pieceCount(path), 2);
      const [kept] = await s.queryEvents({ limit: 10 });
      assert.deepEqual(
        kept.evidence.map((e) => e.detail),
        ['not banned', 'hour 5'],
      );
      // The writer forgot what it had stored: a new event of hour 0 stores its pieces again.
      await s.logEvent(ev(1, { evidence: [notBanned] }));
      const all = await s.queryEvents({ limit: 10 });
      assert.deepEqual(
        all.map((e) => e.evidence.map((x) => x.detail)),
        [['not banned', 'hour 5'], ['not banned']],
      );
    } finally {
      await s.close();
    }
  });

  test('retention keeps the pieces of the present and the last hour even when no event remains (other writers use them)', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      const now = Date.now();
      await s.logEvent(ev(0, { ts: now }));
      assert.equal(await s.pruneEvents({ maxRows: 0 }), 1);
      assert.equal(pieceCount(path), 3);
      // The same writer goes on referring to them.
      await s.logEvent(ev(1, { ts: now + 1 }));
      const [e] = await s.queryEvents({ limit: 10 });
      assert.equal(e.evidence.length, 3);
    } finally {
      await s.close();
    }
  });
});
