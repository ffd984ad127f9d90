// `frontline config init`: the file it writes is accepted by `config check`
// as written and with its commented examples turned on; an existing file is
// never overwritten without --force.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse } from 'yaml';
import { configInit, renderConfig } from '../../src/cli/config-init.js';
import { loadConfig } from '../../src/config/load.js';
import { InputError } from '../../src/cli/check.js';
import { runCli as runFrontline } from '../helpers/cli.js';

function sink(): PassThrough & { text: () => string } {
  const s = new PassThrough();
  let text = '';
  s.setEncoding('utf8').on('data', (d: string) => (text += d));
  return Object.assign(s, { text: () => text });
}

describe('frontline config init', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-config-init-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the written file passes config check and carries the domains and host name', () => {
    const file = join(dir, 'frontline.yaml');
    const err = sink();
    assert.equal(configInit({ domain: ['example.com', 'Example.org.'], hostname: 'mx1.example.com', out: file }, sink(), err), 0);
    const config = loadConfig(file, {}, {});
    assert.equal(config.headers.authserv_id, 'mx1.example.com');
    assert.equal(config.data_dir, '/var/lib/frontline');
    assert.deepEqual(config.intel.correspondents.ignore_domains, ['example.com', 'example.org']);
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.match(err.text(), /wrote .*frontline\.yaml for example\.com, example\.org/);
  });

  test('without --hostname the authserv-id is left to run time (null)', () => {
    const config = parse(renderConfig(['example.com'], null)) as { headers: { authserv_id: unknown } };
    assert.equal(config.headers.authserv_id, null);
  });

  test('an internationalised domain is written as its A-label', () => {
    const out = sink();
    assert.equal(configInit({ domain: ['Müller.de'] }, out, sink()), 0);
    assert.match(out.text(), /ignore_domains: \[xn--mller-kva\.de\]/);
  });

  test('every commented example is valid once uncommented', () => {
    const text = renderConfig(['example.com'], 'mx.example.com')
      .replace(/^lists: \{\}$/m, 'lists:')
      .replace(/^spamtraps: \[\]$/m, 'spamtraps:')
      .replace(/^# ?( {2,}(?:- |[a-z_]+:).*|gate:.*)$/gm, '$1')
      .replace(/^ {2}# (policy_socket: .*)$/m, '  $1');
    assert.match(text, /^ {2}policy_socket: /m);
    assert.match(text, /^gate:\n {2}listen: 0\.0\.0\.0:25/m);
    const file = join(dir, 'uncommented.yaml');
    writeFileSync(file, text);
    const config = loadConfig(file, {}, {});
    assert.deepEqual(config.spamtraps, ['never-used@example.com']);
    assert.equal(config.gate.backend, '127.0.0.1:10025');
    assert.ok(config.lists.allow && config.lists.deny);
  });

  test('an existing file is kept without --force and replaced with it', () => {
    const file = join(dir, 'existing.yaml');
    writeFileSync(file, '# the admin wrote this\n');
    const err = sink();
    assert.equal(configInit({ domain: ['example.com'], out: file }, sink(), err), 1);
    assert.equal(readFileSync(file, 'utf8'), '# the admin wrote this\n');
    assert.match(err.text(), /exists; not overwritten \(--force replaces it\)/);
    assert.equal(configInit({ domain: ['example.com'], out: file, force: true }, sink(), sink()), 0);
    assert.match(readFileSync(file, 'utf8'), /frontline configuration for example\.com/);
  });

  test('no domain, a bad domain or an unwritable path: a clear error', () => {
    assert.throws(() => configInit({ domain: [] }, sink(), sink()), /at least one --domain/);
    assert.throws(() => configInit({ domain: ['localhost'] }, sink(), sink()), (e: Error) => e instanceof InputError && /"localhost" is not a domain name/.test(e.message));
    assert.throws(() => configInit({ domain: ['a b.com'] }, sink(), sink()), /not a domain name/);
    assert.throws(() => configInit({ domain: ['example.com'], hostname: 'mx_1' }, sink(), sink()), /--hostname "mx_1"/);
    assert.throws(() => configInit({ domain: ['example.com'], out: join(dir, 'no', 'such', 'dir.yaml') }, sink(), sink()), /cannot write/);
  });

  test('through the CLI: init, then config check says OK; a second init exits 1', async () => {
    const file = join(dir, 'cli.yaml');
    // Each run starts tsx from source: allow for a loaded machine.
    const runCli = (args: string[]) => runFrontline(args, { timeoutMs: 120_000 });
    const init = await runCli(['config', 'init', '--domain', 'example.net', '--out', file]);
    assert.equal(init.code, 0, init.stderr);
    const check = await runCli(['config', 'check', file]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /: OK$/m);
    const again = await runCli(['config', 'init', '--domain', 'example.net', '--out', file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists; not overwritten/);
    const bad = await runCli(['config', 'init', '--domain', 'nodot']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^frontline: --domain "nodot" is not a domain name/m);
  });
});
