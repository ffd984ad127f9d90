// This host's own addresses are never banned, by any source (issue 16 item 5).
// The store's ban() is the one place that refuses them; here each source is
// played against it: the command line in a network namespace we make (with
// an address of our own on its loopback interface, read by
// os.networkInterfaces() as the real store reads it), log watching with the
// store as its sink. Spamtraps: test/unit/spamtrap-poisoning.test.ts; the
// Redis feed and another process's SQLite rows: the store conformance test
// "this host's own addresses are never banned…".

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, REPO_ROOT } from '../helpers/cli.js';
import { startLogWatch } from '../../src/intel/logwatch/index.js';
import { openStore } from '../../src/store/index.js';
import { localInterfaceAddresses } from '../../src/store/own-addresses.js';
import type { Logger } from '../../src/log.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-own-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Run `frontline ARGS` inside a new network namespace whose loopback also holds 203.0.113.77 and 2001:db8:77::7. */
function cliInNamespace(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const script = 'ip link set lo up && ip addr add 203.0.113.77/32 dev lo && ip addr add 2001:db8:77::7/128 dev lo && exec "$@"';
  const r = spawnSync('unshare', ['--net', 'sh', '-c', script, 'sh', process.execPath, '--import', 'tsx', CLI_MAIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("this host's own addresses", () => {
  test('are read from every local interface, loopback included', () => {
    const own = localInterfaceAddresses().map((a) => a.address);
    assert.ok(own.includes('127.0.0.1'));
  });

  test('frontline ban add refuses them with a clear error (in a namespace with an address of its own)', () => {
    const config = join(dir, 'frontline.yaml');
    writeFileSync(config, `data_dir: ${join(dir, 'data')}\n`);
    for (const [target, own] of [
      ['203.0.113.77', '203.0.113.77'],
      ['203.0.113.0/24', '203.0.113.77'],
      ['2001:db8:77::7', '2001:db8:77::7'],
      ['2001:db8:77::/48', '2001:db8:77::7'],
    ]) {
      const r = cliInNamespace(['ban', 'add', target, '--config', config]);
      assert.equal(r.code, 1, `${target}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`not banned: overlaps this host's own address ${own.replace(/\./g, '\\.')} \\(lo\\)`), target);
    }
    const ok = cliInNamespace(['ban', 'add', '203.0.114.9', '--config', config]);
    assert.equal(ok.code, 0, ok.stderr);
    const list = cliInNamespace(['ban', 'list', '--json', '--config', config]);
    assert.deepEqual(
      JSON.parse(list.stdout).map((b: { cidr: string }) => b.cidr),
      ['203.0.114.9/32'],
    );
  });

  test('log watching: a burst of failed logins from our own address bans nothing (the store refuses it, logged)', async () => {
    const store = await openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { purgeIntervalSeconds: 0, ownAddresses: [{ address: '198.51.100.25', iface: 'eth0' }] });
    const entries: Array<{ msg: string; obj: unknown }> = [];
    const at = (obj: unknown, msg?: string) => entries.push({ msg: msg ?? '', obj });
    const logger = { info: at, warn: at, error: at, debug() {} } as unknown as Logger;
    const log = join(dir, 'auth.log');
    writeFileSync(log, '');
    const watch = await startLogWatch({ sources: [{ type: 'file', paths: [log], format: 'sshd' }], sink: store, logger, pollIntervalMs: 3_600_000 });
    try {
      await watch.poll();
      const lines = (ip: string) => Array.from({ length: 6 }, (_, i) => `Nov 22 05:01:0${i} mx1 sshd[1]: Failed password for root from ${ip} port ${4000 + i} ssh2\n`).join('');
      appendFileSync(log, lines('198.51.100.25') + lines('198.51.100.26'));
      await watch.poll();
      assert.ok(entries.some((e) => e.msg === 'logwatch ban refused' && /own address 198\.51\.100\.25/.test(JSON.stringify(e.obj))), JSON.stringify(entries));
      assert.deepEqual((await store.listBans()).map((b) => b.cidr), ['198.51.100.26/32']);
    } finally {
      await watch.stop();
      await store.close();
    }
  });
});
