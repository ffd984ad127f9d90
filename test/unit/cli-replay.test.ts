// `frontline replay` in process (src/cli/replay.ts) against a temp SQLite
// store: the table and the JSON, text from clients escaped for the terminal,
// bad flags refused before the store is touched, and an events file of
// version 3 (before replay data) read and migrated in place.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { replay } from '../../src/cli/replay.js';
import { InputError } from '../../src/cli/check.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { loadConfig } from '../../src/config/load.js';
import { EVENTS_SCHEMA, EVENTS_VERSION, PIECES_SCHEMA, VERDICT_DETAIL_SCHEMA, eventsPathFor } from '../../src/store/sqlite/events-file.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { ReplayReport } from '../../src/report/replay.js';
import { captureIo } from '../helpers/cli.js';

const HOSTILE = 'a\u001b]0;pwned\u0007@evil.test';

let dir: string;
let current: string;
let proposed: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fl-cli-replay-'));
  const base = `data_dir: ${join(dir, 'data')}\npolicy:\n  rules:\n    - { name: deny, if: "list:deny=listed", action: reject, code: 554 }\n`;
  current = join(dir, 'current.yaml');
  writeFileSync(current, `${base}lists:\n  deny: { type: domain, entries: [nobody.test] }\n`);
  proposed = join(dir, 'new.yaml');
  writeFileSync(proposed, `${base}lists:\n  deny: { type: domain, entries: [evil.test] }\n`);
  const store = await openConfiguredStore(loadConfig(current));
  try {
    await store.logEvent({
      ts: Date.now() - 60_000,
      clientIp: '192.0.2.66',
      clientPtr: 'ptr\u001b[2J.example',
      helo: 'h.example',
      from: HOSTILE,
      rcpts: ['u@dest.test'],
      rcptCount: 1,
      stage: 'rcpt',
      action: 'continue',
      rule: 'default',
      evidence: [{ check: 'list:deny', result: 'unlisted', detail: 'not listed', ms: 0 }],
    });
  } finally {
    await store.close();
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('frontline replay', () => {
  test('the table names the change; text from clients is escaped', async () => {
    const io = captureIo();
    assert.equal(await replay({ config: proposed, current }, io), 0, io.err());
    const out = io.out();
    assert.match(out, /^changed +1$/m);
    assert.match(out, /continue \(default\) +reject 554 \(deny\)/);
    assert.ok(!out.includes('\u001b') && !out.includes('\u0007'), 'no raw escape sequence reaches the terminal');
    assert.ok(out.includes('a\\x1b]0;pwned\\x07@evil.test'), out);
    assert.ok(out.includes('ptr\\x1b[2J.example'), out);
  });

  test('JSON: the report, strings intact', async () => {
    const io = captureIo();
    assert.equal(await replay({ config: proposed, current, json: true }, io), 0, io.err());
    const r = JSON.parse(io.out()) as ReplayReport;
    assert.equal(r.changed, 1);
    assert.equal(r.changes[0].examples[0].from, HOSTILE);
    assert.ok(!io.out().includes('\u001b'));
  });

  test('bad flags are refused before the store is opened', async () => {
    await assert.rejects(replay({ current }, captureIo()), (e: unknown) => e instanceof InputError && /--config/.test(e.message));
    await assert.rejects(replay({ config: proposed, since: 'soon' }, captureIo()), (e: unknown) => e instanceof InputError && /--since/.test(e.message));
    await assert.rejects(replay({ config: proposed, limit: '0' }, captureIo()), (e: unknown) => e instanceof InputError && /--limit/.test(e.message));
  });
});

describe('events file version 3', () => {
  test('is migrated to the current version at open; its rows read as records from before replay data', async () => {
    const path = join(dir, 'v3', 'frontline.db');
    mkdirSync(join(dir, 'v3'));
    const db = new Database(eventsPathFor(path));
    db.exec(EVENTS_SCHEMA);
    db.exec(PIECES_SCHEMA);
    db.exec(VERDICT_DETAIL_SCHEMA);
    db.pragma('user_version = 3');
    db.prepare(
      `INSERT INTO events (ts, client_ip, rcpts, rcpt_domains, stage, action, rule, evidence, score) VALUES (?, '192.0.2.5', '["u@d.test"]', '|d.test|', 'rcpt', 'continue', 'default', '[{"check":"spf","result":"pass"}]', 2)`,
    ).run(Date.now());
    db.close();
    const s = await SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0 });
    try {
      assert.equal(s.eventsDatabase.pragma('user_version', { simple: true }), EVENTS_VERSION);
      const [old] = await s.queryEvents({});
      assert.equal(old.clientIp, '192.0.2.5');
      assert.equal(old.score, 2);
      assert.equal(old.rcptCount, undefined);
      assert.equal(old.clientPtr, undefined);
      await s.logEvent({ ts: Date.now() + 1, clientIp: '192.0.2.6', clientPtr: 'p.test', saslUser: 'u', rcpts: ['x@d.test'], rcptCount: 3, stage: 'rcpt', action: 'continue', rule: 'default', evidence: [] });
      const [fresh] = await s.queryEvents({ ip: '192.0.2.6' });
      assert.equal(fresh.rcptCount, 3);
      assert.equal(fresh.clientPtr, 'p.test');
      assert.equal(fresh.saslUser, 'u');
    } finally {
      await s.close();
    }
  });
});
