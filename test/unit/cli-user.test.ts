// frontline user hold|release|show|list, in process against a temp SQLite
// store, and `frontline user` as a child process (the command is wired).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { userHold, userList, userRelease, userShow } from '../../src/cli/user.js';
import { captureIo, runCli } from '../helpers/cli.js';

let dir: string;
let config: string;
let off: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-cli-user-'));
  config = join(dir, 'frontline.yaml');
  off = join(dir, 'off.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\nsasl_spread: { enabled: true }\n`);
  writeFileSync(off, `data_dir: ${join(dir, 'data')}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('hold, show, list, release: recorded with who and why; a second hold keeps the first; bad input is a clear error', async () => {
  let o = captureIo();
  assert.equal(await userHold('Joe@Example.com', { config, reason: 'password phished' }, o), 0);
  assert.match(o.out(), /^joe@example\.com held since \S+ by cli:\S+: password phished\n$/);
  assert.equal(o.err(), '');
  o = captureIo();
  assert.equal(await userHold('joe@example.com', { config: off, reason: 'again' }, o), 0);
  assert.match(o.out(), /^already held, kept: joe@example\.com .*: password phished\n$/);
  assert.match(o.err(), /sasl_spread\.enabled is false/);
  o = captureIo();
  assert.equal(await userShow('JOE@example.com', { config, json: true }, o), 0);
  const shown = JSON.parse(o.out()) as { user: string; hold: { by: string; reason: string } };
  assert.equal(shown.user, 'joe@example.com');
  assert.equal(shown.hold.reason, 'password phished');
  assert.match(shown.hold.by, /^cli:/);
  o = captureIo();
  assert.equal(await userList({ config }, o), 0);
  assert.match(o.out(), /^user\s+held since\s+by\s+reason\njoe@example\.com\s+\S+\s+cli:\S+\s+password phished\n$/);
  o = captureIo();
  assert.equal(await userRelease('joe@example.com', { config }, o), 0);
  assert.match(o.out(), /^joe@example\.com: released \(was .*password phished\)/);
  o = captureIo();
  assert.equal(await userRelease('joe@example.com', { config }, o), 1);
  assert.match(o.err(), /is not held/);
  o = captureIo();
  assert.equal(await userShow('joe@example.com', { config }, o), 0);
  assert.equal(o.out(), 'joe@example.com is not held\n');
  o = captureIo();
  assert.equal(await userHold('  ', { config }, o), 1);
  assert.match(o.err(), /expected a SASL login name/);
  // A terminal escape in a login is never written raw.
  o = captureIo();
  assert.equal(await userHold('evil\u001b[2Jname', { config, reason: 'x\u001b]0;pwn\u0007' }, o), 0);
  assert.doesNotMatch(o.out(), /\u001b/);
});

test('frontline user list runs as a command', { timeout: 180_000 }, async () => {
  const r = await runCli(['user', 'list', '--config', config, '--json'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Array.isArray(JSON.parse(r.stdout)));
});
