// contrib/systemd as shipped: `systemd-analyze verify` accepts the unit with
// no warning, its exposure score stays low, and the sysusers.d file creates
// the user the unit runs as. Runs systemd's tools against a private root
// (--root) holding a copy of the system's units, the unit file as it is, and
// a stand-in for the installed /usr/local/bin/frontline — verify checks that
// ExecStart's program exists. Needs systemd-analyze and systemd-sysusers
// (Debian package systemd): skipped loudly without them, failed under CI=true.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from '../helpers/binaries.js';
import { REPO_ROOT } from '../helpers/cli.js';

const UNIT = join(REPO_ROOT, 'contrib/systemd/frontline.service');
const SYSUSERS = join(REPO_ROOT, 'contrib/systemd/frontline.sysusers.conf');
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'multi-user.target')));

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60_000, env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Directives of the [Service] section: name → values, in order. */
function serviceDirectives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1];
    const d = /^(\w+)=(.*)$/.exec(line);
    if (section === 'Service' && d) out.set(d[1], [...(out.get(d[1]) ?? []), d[2]]);
  }
  return out;
}

describe('contrib/systemd', () => {
  const root = mkdtempSync(join(tmpdir(), 'frontline-systemd-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** A private root for --root: the system's units, ours as shipped, a stand-in frontline. */
  function makeRoot(): void {
    if (existsSync(join(root, 'etc/systemd/system/frontline.service'))) return;
    assert.ok(SYSTEM_UNITS, 'no systemd unit directory with multi-user.target');
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync(SYSTEM_UNITS, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    cpSync(UNIT, join(root, 'etc/systemd/system/frontline.service'));
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/local/bin/frontline'), '#!/bin/sh\n');
    chmodSync(join(root, 'usr/local/bin/frontline'), 0o755);
  }

  test('systemd-analyze verify accepts frontline.service without a warning', async (t) => {
    const analyze = requireBinary('systemd-analyze', t);
    if (!analyze) return;
    makeRoot();
    const r = await run(analyze, ['verify', `--root=${root}`, 'frontline.service']);
    assert.equal(r.code, 0, r.stderr);
    // verify exits 0 on unknown keys and bad values, and only prints them.
    assert.equal(r.stderr.trim(), '', `systemd-analyze verify warned:\n${r.stderr}`);
  });

  test('a misspelt directive is caught by the same check (the check can fail)', async (t) => {
    const analyze = requireBinary('systemd-analyze', t);
    if (!analyze) return;
    makeRoot();
    const bad = join(root, 'etc/systemd/system/frontline-typo.service');
    writeFileSync(bad, readFileSync(UNIT, 'utf8').replace('ProtectSystem=strict', 'ProtectSytem=strict'));
    const r = await run(analyze, ['verify', `--root=${root}`, 'frontline-typo.service']);
    assert.match(r.stderr, /Unknown key 'ProtectSytem'/);
  });

  test('hardening: exposure below 2.0 (systemd-analyze security), no capability, no reload', async (t) => {
    const analyze = requireBinary('systemd-analyze', t);
    if (!analyze) return;
    makeRoot();
    const r = await run(analyze, ['security', '--offline=yes', `--root=${root}`, 'frontline.service']);
    const m = /Overall exposure level for frontline\.service: ([\d.]+)/.exec(r.stdout + r.stderr);
    assert.ok(m, `no exposure level in:\n${r.stdout}${r.stderr}`);
    assert.ok(Number(m[1]) < 2, `exposure ${m[1]}:\n${r.stdout}`);

    const d = serviceDirectives(readFileSync(UNIT, 'utf8'));
    assert.deepEqual(d.get('CapabilityBoundingSet'), ['']);
    assert.deepEqual(d.get('AmbientCapabilities'), ['']);
    assert.deepEqual(d.get('StateDirectory'), ['frontline']);
    assert.deepEqual(d.get('User'), ['frontline']);
    assert.deepEqual(d.get('Restart'), ['on-failure']);
    // serve does not reload on SIGHUP (src/cli/main.ts handles TERM and INT only).
    assert.equal(d.get('ExecReload'), undefined);
    assert.doesNotMatch(readFileSync(join(REPO_ROOT, 'src/cli/main.ts'), 'utf8'), /SIGHUP/);
  });

  test('sysusers.d creates the frontline user, home /var/lib/frontline, no login shell', async (t) => {
    const sysusers = requireBinary('systemd-sysusers', t);
    if (!sysusers) return;
    const sysroot = join(root, 'sysusers-root');
    mkdirSync(join(sysroot, 'etc'), { recursive: true });
    const r = await run(sysusers, [`--root=${sysroot}`, SYSUSERS]);
    assert.equal(r.code, 0, r.stderr);
    const passwd = readFileSync(join(sysroot, 'etc/passwd'), 'utf8');
    const line = passwd.split('\n').find((l) => l.startsWith('frontline:'));
    assert.ok(line, passwd);
    const [, , uid, gid, gecos, home, shell] = line.split(':');
    assert.ok(Number(uid) > 0 && Number(uid) < 1000, `a system uid: ${uid}`);
    assert.equal(gid, uid);
    assert.equal(gecos, 'frontline anti-spam');
    assert.equal(home, '/var/lib/frontline');
    assert.match(shell, /nologin$/);
    assert.match(readFileSync(join(sysroot, 'etc/group'), 'utf8'), /^frontline:x:\d+:$/m);
  });
});
