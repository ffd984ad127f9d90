// World-readable state (issue 16 item 9): the data directory 0750, the
// database, its WAL and the decision log 0640, the policy socket 0660, the
// group configurable (`file_group`), and the modes of existing files fixed
// at start. Real files, a real SQLite store, a real unix socket.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openConfiguredStore } from '../../src/cli/store.js';
import { groupId, secureDataDir, secureSocket } from '../../src/cli/file-modes.js';
import { loadConfig } from '../../src/config/load.js';
import { PolicyServer } from '../../src/postfix/policy-server.js';

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-modes-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function useStore(dataDir: string, extra = ''): Promise<void> {
  const config = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(config, `data_dir: ${dataDir}\n${extra}`);
  const store = await openConfiguredStore(loadConfig(config));
  await store.ban({ cidr: '198.51.100.7', reason: 'x', category: 'manual', source: 't' });
  await store.logEvent({ ts: Date.now(), clientIp: '198.51.100.9', from: 'a@b.example', rcpts: ['c@d.example'], stage: 'rcpt', action: 'reject', rule: 'r', evidence: [] });
  await store.queryEvents({ limit: 1 });
  await store.close();
}

describe('file modes', () => {
  test('a fresh data directory: 0750, the database, its WAL and the decision log 0640', async () => {
    const data = join(dir, 'fresh');
    await useStore(data);
    assert.equal(mode(data), '750');
    const files = readdirSync(data);
    assert.ok(files.includes('frontline.db'), files.join());
    assert.ok(files.some((f) => f.startsWith('frontline.events')), files.join());
    for (const f of files) assert.equal(mode(join(data, f)), '640', f);
  });

  test('an existing data directory 0755 with 0644 files is fixed at start; 0600 files stay 0600', async () => {
    const data = join(dir, 'old');
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    for (const f of ['frontline.db', 'frontline.db-wal', 'frontline.events.db', 'logwatch-state.json']) {
      writeFileSync(join(data, f), '');
      chmodSync(join(data, f), 0o644);
    }
    writeFileSync(join(data, 'spool-1'), '');
    chmodSync(join(data, 'spool-1'), 0o600);
    rmSync(join(data, 'frontline.db'));
    rmSync(join(data, 'frontline.db-wal'));
    rmSync(join(data, 'frontline.events.db'));
    await useStore(data);
    assert.equal(mode(data), '750');
    assert.equal(mode(join(data, 'logwatch-state.json')), '640');
    assert.equal(mode(join(data, 'spool-1')), '600');
    for (const f of readdirSync(data).filter((n) => n.startsWith('frontline'))) assert.equal(mode(join(data, f)), '640', f);
  });

  test('existing 0644 store files: narrowed by secureDataDir at start', () => {
    const data = join(dir, 'narrow');
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    writeFileSync(join(data, 'frontline.db'), '');
    chmodSync(join(data, 'frontline.db'), 0o644);
    const logged: string[] = [];
    secureDataDir(data, null, { info: (_o, m) => logged.push(m), warn: (_o, m) => logged.push(m) });
    assert.equal(mode(data), '750');
    assert.equal(mode(join(data, 'frontline.db')), '640');
    assert.ok(logged.includes('file mode narrowed'));
  });

  test('file_group: the directory, its files and the socket go to that group', async () => {
    const gid = groupId('daemon');
    const data = join(dir, 'grouped');
    await useStore(data, 'file_group: daemon\n');
    assert.equal(statSync(data).gid, gid);
    for (const f of readdirSync(data)) assert.equal(statSync(join(data, f)).gid, gid, f);
    assert.throws(() => groupId('no-such-group-here'), /no group named/);
    assert.equal(groupId('1234'), 1234);
  });

  test('the policy socket is 0660 (it was 0666), and goes to file_group', async () => {
    const server = new PolicyServer({ evaluate: async () => ({ action: 'continue' }) } as never);
    const path = join(dir, 'policy.sock');
    await server.listenUnix(path);
    try {
      assert.ok(existsSync(path));
      assert.equal(mode(path), '660');
      secureSocket(path, 'daemon');
      assert.equal(statSync(path).gid, groupId('daemon'));
      assert.equal(mode(path), '660');
    } finally {
      await server.close(100);
    }
  });
});
