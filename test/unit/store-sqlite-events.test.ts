// The SQLite decision log: events in their own file, written by a worker
// thread. Reads see everything logged before them, close() loses nothing,
// an old store's events are moved over, several stores (processes) on one
// file all log, and a thread that cannot start or dies costs no event.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SqliteStore, type SqliteStoreInternals } from '../../src/store/sqlite/store.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import { EVENT_BATCH_ROWS, EVENT_RING_BACKLOG, startEventThread } from '../../src/store/sqlite/event-writer.js';
import { eventsPathFor, EVENTS_PAGE_SIZE, EVENTS_VERSION, openEventsDb } from '../../src/store/sqlite/events-file.js';
import type { DecisionEvent, StoreLogger } from '../../src/store/types.js';
import { REPO_ROOT } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fl-events-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** A path in a directory of its own (the store makes two files, and their WAL files). */
function fresh(name = 'frontline.db'): string {
  const d = join(dir, `${++n}`);
  mkdirSync(d);
  return join(d, name);
}

function recordingLogger(): StoreLogger & { lines: Array<{ level: string; obj: object; msg: string }> } {
  const lines: Array<{ level: string; obj: object; msg: string }> = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

function open(path: string, deps: { logger?: StoreLogger } = {}, internals: SqliteStoreInternals = {}): Promise<SqliteStore> {
  return SqliteStore.open({ backend: 'sqlite', path, pollMs: 0, busyTimeoutMs: 2000 }, { purgeIntervalSeconds: 0, ...deps }, internals);
}

const T0 = Date.UTC(2030, 0, 1);
function ev(i: number, extra: Partial<DecisionEvent> = {}): DecisionEvent {
  return {
    ts: T0 + i,
    sessionId: `s${i}`,
    clientIp: `192.0.2.${i % 250}`,
    helo: 'mx.example.net',
    from: `a${i}@sender.example`,
    rcpts: [`u${i}@rcpt.example`],
    stage: 'rcpt',
    action: i % 3 === 0 ? 'reject' : 'continue',
    code: i % 3 === 0 ? 554 : undefined,
    rule: `rule-${i % 5}`,
    evidence: [{ check: 'dnsbl', result: 'pass', detail: 'not listed', ms: 0.5 }],
    ...extra,
  };
}

function countEvents(path: string): number {
  const db = new Database(eventsPathFor(path), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function tables(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  } finally {
    db.close();
  }
}

test('the events file is named after the store file', () => {
  assert.equal(eventsPathFor('/var/lib/frontline/frontline.db'), '/var/lib/frontline/frontline.events.db');
  assert.equal(eventsPathFor('frontline.sqlite'), 'frontline.events.sqlite');
  assert.equal(eventsPathFor('/data/state'), '/data/state.events');
  assert.equal(eventsPathFor('/data.d/state'), '/data.d/state.events');
  assert.equal(eventsPathFor('/data/.state'), '/data/.state.events');
  assert.equal(eventsPathFor('a.b.db'), 'a.b.events.db');
});

describe('events through the writer thread', () => {
  test('a fresh store: events in their own file, none in the store file; queryEvents sees an event once its promise settled', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      assert.equal(s.eventWriter.state, 'idle', 'no thread before the first event');
      await s.logEvent(ev(1));
      assert.equal(s.eventWriter.state, 'thread');
      assert.equal(s.eventsPath, eventsPathFor(path));
      assert.deepEqual(
        (await s.queryEvents({})).map((e) => e.ts - T0),
        [1],
      );
      assert.ok(!tables(path).some((t) => t.startsWith('events')), 'no events table or index in the store file');
      assert.deepEqual(
        tables(eventsPathFor(path)).filter((t) => t.startsWith('events')),
        ['events', 'events_by_from_domain', 'events_by_ip', 'events_by_rcpt_domains', 'events_by_rule', 'events_by_ts', 'events_by_ts_many_rcpt_domains'],
      );
      assert.match((await s.health()).detail, /frontline\.events\.db \(writer thread\)/);
    } finally {
      await s.close();
    }
  });

  test('a new events file has 16 KiB pages; a file made with 4 KiB keeps them', () => {
    const made = eventsPathFor(fresh());
    const db = openEventsDb(made, { busyTimeoutMs: 0, synchronous: 'NORMAL' });
    assert.equal(db.pragma('page_size', { simple: true }), EVENTS_PAGE_SIZE);
    db.close();
    const old = eventsPathFor(fresh());
    const pre = new Database(old);
    pre.pragma('journal_mode = WAL');
    pre.exec('CREATE TABLE t (x)');
    pre.close();
    const again = openEventsDb(old, { busyTimeoutMs: 0, synchronous: 'NORMAL' });
    assert.equal(again.pragma('page_size', { simple: true }), 4096);
    again.close();
  });

  test('the thread is not woken per batch: it commits at its own tick, when rung by sync, or by a backlog', async () => {
    const path = fresh();
    // A thread whose own tick is a minute away: whatever commits sooner was rung.
    const s = await open(path, {}, { startEventThread: (data) => startEventThread({ ...data, commitEveryMs: 60_000 }) });
    try {
      void s.logEvent(ev(1));
      await s.eventWriter.sync();
      assert.equal(countEvents(path), 1);
      void s.logEvent(ev(2));
      s.eventWriter.post();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(countEvents(path), 1, 'a posted batch does not wake the thread');
      await s.eventWriter.sync();
      assert.equal(countEvents(path), 2, 'sync rings it');
      const burst: Array<Promise<void>> = [];
      for (let i = 0; i < EVENT_RING_BACKLOG; i++) burst.push(s.logEvent(ev(10 + i)));
      await Promise.all(burst); // without the ring this would wait a minute
      assert.equal(countEvents(path), 2 + EVENT_RING_BACKLOG);
    } finally {
      await s.close();
    }
  });

  test('the writer thread runs at the configured nice value (Linux)', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
    /** Nice values of this process's threads (field 19 of /proc/self/task/TID/stat, after the command name). */
    const nices = (): number[] =>
      readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
        } catch {
          return []; // the thread ended meanwhile
        }
      });
    const before = nices().filter((n) => n === 19).length;
    for (const [writerNice, more] of [[undefined, 1], [7, 0], [0, 0]] as const) {
      const s = await SqliteStore.open({ backend: 'sqlite', path: fresh(), pollMs: 0, ...(writerNice !== undefined ? { writerNice } : {}) }, { purgeIntervalSeconds: 0 });
      try {
        void s.logEvent(ev(1));
        await s.eventWriter.sync();
        assert.equal(nices().filter((n) => n === 19).length, before + more, `writerNice ${writerNice}: one thread at 19 by default`);
        if (writerNice === 7) assert.ok(nices().includes(7), 'a thread at 7');
      } finally {
        await s.close();
      }
    }
  });

  test('queryEvents sees events whose promise nobody awaited, queued or already posted', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      await s.logEvent(ev(0)); // the thread is up
      const total = EVENT_BATCH_ROWS * 2 + 17; // two full batches posted at once, the rest waiting for the timer
      for (let i = 1; i <= total; i++) void s.logEvent(ev(i));
      const t0 = performance.now();
      const got = await s.queryEvents({ limit: 10_000 });
      assert.equal(got.length, total + 1);
      assert.equal(got[0].ts, T0 + total);
      assert.ok(performance.now() - t0 < 5000);
      assert.equal((await s.queryEvents({ ip: '192.0.2.17', rule: 'rule-2' })).length, (await s.queryEvents({ limit: 10_000 })).filter((e) => e.clientIp === '192.0.2.17' && e.rule === 'rule-2').length);
      // Retention runs in the thread, after what was queued before it.
      for (let i = total + 1; i <= total + 10; i++) void s.logEvent(ev(i));
      assert.equal(await s.pruneEvents({ maxRows: 5 }), total + 11 - 5);
      assert.deepEqual(
        (await s.queryEvents({})).map((e) => e.ts - T0),
        [total + 10, total + 9, total + 8, total + 7, total + 6],
      );
    } finally {
      await s.close();
    }
  });

  test('every event of a batch shares one promise; a malformed event is refused at once', async () => {
    const s = await open(fresh());
    try {
      const a = s.logEvent(ev(1));
      const b = s.logEvent(ev(2));
      assert.equal(a, b);
      await assert.rejects(s.logEvent({ ...ev(3), clientIp: undefined as unknown as string }), /clientIp/);
      await assert.rejects(s.logEvent({ ...ev(3), rcpts: 'x' as unknown as string[] }), /rcpts/);
      await a;
      const [e] = await s.queryEvents({ limit: 1 });
      assert.equal(e.sessionId, 's2');
      assert.equal(e.helo, 'mx.example.net');
      assert.equal(e.from, 'a2@sender.example');
      assert.equal(e.code, undefined);
      assert.deepEqual(e.evidence, [{ check: 'dnsbl', result: 'pass', detail: 'not listed', ms: 0.5 }]);
    } finally {
      await s.close();
    }
  });

  test('close() commits everything queued and posted, and ends the thread', async () => {
    const path = fresh();
    const s = await open(path);
    const total = EVENT_BATCH_ROWS * 3 + 123;
    for (let i = 0; i < total; i++) void s.logEvent(ev(i));
    const thread = s.eventWriter.thread;
    assert.ok(thread, 'a thread was started for the posted batches');
    const exited = new Promise((resolve) => thread.once('exit', resolve));
    await s.close();
    await exited;
    await assert.rejects(s.logEvent(ev(0)), /closed/);
    assert.equal(countEvents(path), total);
    const again = await open(path);
    try {
      assert.equal((await again.queryEvents({ limit: 10_000 })).length, total);
    } finally {
      await again.close();
    }
  });

  test('a ban commits while the events file is locked (the writer never holds the store file\'s lock)', async () => {
    const path = fresh();
    const s = await open(path);
    const locker = new Database(eventsPathFor(path));
    try {
      await s.logEvent(ev(1));
      locker.exec('BEGIN IMMEDIATE');
      const logged = s.logEvent(ev(2));
      await new Promise((r) => setTimeout(r, 300)); // the batch is posted; the thread waits for the lock
      const t0 = performance.now();
      const r = await s.ban({ cidr: '198.51.100.1', reason: 'x', category: 'manual', source: 't' });
      assert.equal(r.refused, false);
      await s.greyPut('k', { firstSeen: T0, lastSeen: T0, attempts: 1, passes: 0, clientIp: '198.51.100.1', expiresAt: Date.now() + 60_000 });
      assert.ok(performance.now() - t0 < 500, `ban and greyPut took ${(performance.now() - t0).toFixed(0)} ms while the events file was locked`);
      locker.exec('COMMIT');
      await logged;
      assert.equal((await s.queryEvents({})).length, 2);
    } finally {
      if (locker.inTransaction) locker.exec('ROLLBACK');
      locker.close();
      await s.close();
    }
  });
});

describe('several stores on one file', () => {
  test('two stores in one process both log, each through its own thread', async () => {
    const path = fresh();
    const a = await open(path);
    const b = await open(path);
    try {
      const writes: Array<Promise<void>> = [];
      for (let i = 0; i < 2000; i++) writes.push((i % 2 ? a : b).logEvent(ev(i)));
      await Promise.all(writes);
      assert.ok(a.eventWriter.thread && b.eventWriter.thread && a.eventWriter.thread !== b.eventWriter.thread);
      assert.equal((await a.queryEvents({ limit: 10_000 })).length, 2000);
      assert.equal((await b.queryEvents({ limit: 10_000 })).length, 2000);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a second process logging into the same store at the same time', { timeout: 60_000 }, async () => {
    const path = fresh();
    const s = await open(path);
    try {
      await s.logEvent(ev(0));
      const storeModule = new URL('../../src/store/sqlite/store.ts', import.meta.url).href;
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `import { SqliteStore } from ${JSON.stringify(storeModule)};
           const s = await SqliteStore.open({ backend: 'sqlite', path: ${JSON.stringify(path)}, pollMs: 0 }, { purgeIntervalSeconds: 0 });
           for (let i = 0; i < 3000; i++) {
             void s.logEvent({ ts: ${T0} + 100000 + i, clientIp: '203.0.113.9', rcpts: [], stage: 'rcpt', action: 'continue', rule: 'child', evidence: [] });
             if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
           }
           await s.close();
           process.stdout.write(s.eventWriter.state);`,
        ],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      for (let i = 1; i <= 3000; i++) {
        void s.logEvent(ev(i));
        if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(await exited, 0);
      assert.equal(out, 'in-process', 'the child ended its thread at close');
      assert.equal((await s.queryEvents({ rule: 'child', limit: 10_000 })).length, 3000);
      assert.equal((await s.queryEvents({ limit: 10_000 })).length, 6001);
    } finally {
      await s.close();
    }
  });
});

describe('migration', () => {
  test('a store of schema version 2 keeps its events: moved to the events file with their ids', async () => {
    const path = fresh('old.sqlite');
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)');
    for (let v = 1; v <= 2; v++) {
      old.exec(MIGRATIONS[v - 1]);
      old.prepare('INSERT INTO schema_version VALUES (?, 0)').run(v);
    }
    const put = old.prepare(
      `INSERT INTO events (id, ts, session_id, client_ip, helo, mail_from, from_domain, rcpts, rcpt_domains, stage, action, code, rule, text, evidence)
       VALUES (?, ?, 's', ?, 'h', 'a@old.example', 'old.example', '["u@r.example"]', '|r.example|', 'rcpt', 'reject', 554, 'old', 'no', '[]')`,
    );
    old.transaction(() => {
      for (let i = 1; i <= 1500; i++) put.run(i * 2, T0 + i, `192.0.2.${i % 7}`);
    })();
    old.prepare("INSERT INTO bans VALUES ('192.0.2.99/32', 'r', 'manual', 't', 0, 0, ?, 1)").run(Date.now() + 3_600_000);
    old.close();

    const logger = recordingLogger();
    const s = await open(path, { logger });
    try {
      assert.ok(!tables(path).some((t) => t.startsWith('events')), 'the store file has no events table any more');
      assert.ok(existsSync(join(path, '..', 'old.events.sqlite')));
      const db = s.database;
      assert.equal((db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number }).v, MIGRATIONS.length);
      assert.equal(s.eventsDatabase.pragma('user_version', { simple: true }), EVENTS_VERSION);
      assert.deepEqual(
        tables(eventsPathFor(path)).filter((t) => t.startsWith('events')),
        ['events', 'events_by_from_domain', 'events_by_ip', 'events_by_rcpt_domains', 'events_by_rule', 'events_by_ts', 'events_by_ts_many_rcpt_domains'],
      );
      const all = await s.queryEvents({ limit: 10_000 });
      assert.equal(all.length, 1500);
      assert.equal(all[0].id, '3000');
      assert.equal(all[0].from, 'a@old.example');
      assert.equal((await s.queryEvents({ domain: 'old.example' })).length, 100);
      assert.equal((await s.queryEvents({ ip: '192.0.2.3', limit: 10_000 })).length, all.filter((e) => e.clientIp === '192.0.2.3').length);
      assert.ok(logger.lines.some((l) => l.msg === 'decision events moved to their own file' && (l.obj as { rows: number }).rows === 1500));
      assert.equal(s.lookup.isBanned('192.0.2.99'), true, 'the rest of the store is untouched');
      // New events go on after the old ones.
      await s.logEvent(ev(1_000_000));
      const [newest] = await s.queryEvents({ limit: 1 });
      assert.equal(newest.ts, T0 + 1_000_000);
      assert.ok(Number(newest.id) > 3000);
    } finally {
      await s.close();
    }
    // Opening again moves nothing twice.
    const again = await open(path);
    try {
      assert.equal((await again.queryEvents({ limit: 10_000 })).length, 1501);
    } finally {
      await again.close();
    }
  });

  test('a copy interrupted before the table was dropped is made good without duplicates', async () => {
    const path = fresh();
    const old = new Database(path);
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)');
    for (let v = 1; v <= 2; v++) {
      old.exec(MIGRATIONS[v - 1]);
      old.prepare('INSERT INTO schema_version VALUES (?, 0)').run(v);
    }
    const put = old.prepare(
      `INSERT INTO events (id, ts, client_ip, rcpts, rcpt_domains, stage, action, rule, evidence) VALUES (?, ?, '192.0.2.1', '[]', '||', 'rcpt', 'continue', 'r', '[]')`,
    );
    for (let i = 1; i <= 10; i++) put.run(i, T0 + i);
    old.close();
    // The state a crash between the copy and the drop leaves: the first half already copied.
    const evdb = openEventsDb(eventsPathFor(path), { busyTimeoutMs: 1000, synchronous: 'NORMAL' });
    for (let i = 1; i <= 5; i++) {
      evdb.prepare(`INSERT INTO events (id, ts, client_ip, rcpts, rcpt_domains, stage, action, rule, evidence) VALUES (?, ?, '192.0.2.1', '[]', '||', 'rcpt', 'continue', 'r', '[]')`).run(i, T0 + i);
    }
    evdb.close();
    const s = await open(path);
    try {
      assert.deepEqual(
        (await s.queryEvents({})).map((e) => Number(e.id)),
        [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
      );
    } finally {
      await s.close();
    }
  });
});

describe('without a thread', () => {
  test('a thread that cannot start: logged once, events written in-process, nothing lost', async () => {
    const path = fresh();
    const logger = recordingLogger();
    const s = await open(path, { logger }, { startEventThread: () => new Worker('throw new Error("no thread today")', { eval: true }) });
    try {
      const writes: Array<Promise<void>> = [];
      for (let i = 0; i < 1200; i++) writes.push(s.logEvent(ev(i)));
      await Promise.all(writes);
      for (let i = 1200; i < 1300; i++) void s.logEvent(ev(i));
      assert.equal(s.eventWriter.state, 'in-process');
      assert.equal((await s.queryEvents({ limit: 10_000 })).length, 1300);
      const errors = logger.lines.filter((l) => l.level === 'error');
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0].msg, /writer thread failed/);
      assert.match(JSON.stringify(errors[0].obj), /no thread today/);
      assert.equal(await s.pruneEvents({ maxRows: 1000 }), 300);
    } finally {
      await s.close();
    }
    assert.equal(countEvents(path), 1000);
  });

  test('a thread that cannot even be created', async () => {
    const logger = recordingLogger();
    const s = await open(fresh(), { logger }, {
      startEventThread: () => {
        throw new Error('EMFILE');
      },
    });
    try {
      await s.logEvent(ev(1));
      assert.equal((await s.queryEvents({})).length, 1);
      assert.equal(logger.lines.filter((l) => l.level === 'error').length, 1);
    } finally {
      await s.close();
    }
  });

  test('a thread that dies: logged once, batches it had not acknowledged are written in-process', async () => {
    const path = fresh();
    const logger = recordingLogger();
    const s = await open(path, { logger });
    try {
      await s.logEvent(ev(0));
      const thread = s.eventWriter.thread;
      assert.ok(thread);
      // Post two full batches, and kill the thread before it can answer.
      const writes: Array<Promise<void>> = [];
      for (let i = 1; i <= EVENT_BATCH_ROWS * 2; i++) writes.push(s.logEvent(ev(i)));
      await thread.terminate();
      await Promise.all(writes);
      assert.equal(s.eventWriter.state, 'in-process');
      for (let i = EVENT_BATCH_ROWS * 2 + 1; i <= EVENT_BATCH_ROWS * 2 + 50; i++) void s.logEvent(ev(i));
      const got = await s.queryEvents({ limit: 10_000 });
      // Every event is there; a batch the thread committed just before it died may be there twice.
      assert.equal(new Set(got.map((e) => e.ts)).size, EVENT_BATCH_ROWS * 2 + 51);
      assert.equal(logger.lines.filter((l) => l.level === 'error').length, 1);
    } finally {
      await s.close();
    }
  });

  test('an in-memory store writes its events in-process', async () => {
    const s = await open(':memory:');
    try {
      assert.equal(s.eventsPath, ':memory:');
      for (let i = 0; i < 10; i++) void s.logEvent(ev(i));
      assert.equal((await s.queryEvents({})).length, 10);
      assert.equal(s.eventWriter.state, 'in-process');
      assert.equal(s.eventWriter.thread, undefined);
      assert.equal(await s.pruneEvents({ maxRows: 4 }), 6);
    } finally {
      await s.close();
    }
  });
});

describe('the store file checkpointed by the writer thread', () => {
  const autocheckpoint = (s: SqliteStore): number => s.database.pragma('wal_autocheckpoint', { simple: true }) as number;
  /** WAL frames of the store file not yet copied back into it (a PASSIVE checkpoint that copies nothing new). */
  const uncheckpointed = (path: string): number => {
    const db = new Database(path);
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
      return r.log - r.checkpointed;
    } finally {
      db.close();
    }
  };

  test('once the thread is up the event loop never checkpoints; the thread does, and SQLite takes over again if it dies', async () => {
    const path = fresh();
    const s = await open(path);
    try {
      assert.equal(autocheckpoint(s), 1000, 'SQLite checkpoints by itself before there is a thread');
      await s.logEvent(ev(0));
      assert.equal(s.eventWriter.state, 'thread');
      assert.equal(autocheckpoint(s), 0, 'the thread checkpoints: no checkpoint inside the event loop’s commits');
      const now = Date.now();
      for (let i = 0; i < 2000; i++) {
        await s.greyPut(`net:192.0.2.0/24|a${i}@b.example|c@d.example`, { firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp: '192.0.2.1', expiresAt: now + 60_000 });
      }
      // Within a couple of the thread's ticks every frame is back in the store file.
      let left = Infinity;
      for (let t = 0; t < 40 && left > 0; t++) {
        await new Promise((r) => setTimeout(r, 100));
        left = uncheckpointed(path);
      }
      assert.equal(left, 0, 'the WAL was checkpointed without the event loop');
      assert.equal((await s.greyGet('net:192.0.2.0/24|a1999@b.example|c@d.example'))?.attempts, 1);

      const thread = s.eventWriter.thread!;
      await thread.terminate();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(s.eventWriter.state, 'in-process');
      assert.equal(autocheckpoint(s), 1000, 'a dead thread hands checkpoints back to SQLite');
    } finally {
      await s.close();
    }
  });
});
