// `frontline stats`: the query layer's tables on the configured store, as
// text (untrusted text escaped) and JSON; bad flags refused before the store
// is opened.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stats } from '../../src/cli/stats.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { loadConfig } from '../../src/config/load.js';
import { captureIo } from '../helpers/cli.js';

const EVIL = 'x\x1b]0;pwned\x07\u202e';
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e\u2028]/;

let dir: string;
let config: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fl-cli-stats-'));
  config = join(dir, 'frontline.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\n`);
  const store = await openConfiguredStore(loadConfig(config));
  const now = Date.now();
  const ev = (ip: string, rule: string, action: string, from: string) => ({ ts: now - 1000, clientIp: ip, from, rcpts: ['u@local.example'], stage: 'rcpt', action, rule, evidence: [] });
  await Promise.all([
    store.logEvent(ev('203.0.113.5', 'dnsbl', 'reject', 'a@spam.example')),
    store.logEvent(ev('203.0.113.5', 'dnsbl', 'reject', 'a@spam.example')),
    store.logEvent(ev('203.0.113.6', 'greylist', 'defer', `b@${EVIL}.example`)),
    store.logEvent(ev('198.51.100.1', 'default', 'continue', 'c@good.example')),
    store.logEvent({ ...ev('198.51.100.2', 'sender-authorised', 'reject', 'd@forged.example'), ts: now - 8 * 86_400_000 }),
  ]);
  await store.ban({ cidr: '203.0.113.5', reason: 'trap', category: 'spamtrap', source: 'spamtrap' });
  await store.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('frontline stats', () => {
  test('the summary: outcomes, vectors (from the default policy), top lists, bans; untrusted text escaped', async () => {
    const o = captureIo();
    assert.equal(await stats({ config }, o), 0, o.err());
    const out = o.out();
    assert.match(out, /Decisions by outcome/);
    assert.match(out, /^refused +2 +50\.0%$/m);
    assert.match(out, /^greylisted +1 +25\.0%$/m);
    assert.match(out, /^dnsbl +2 +0 +dnsbl +DNS block lists$/m);
    assert.match(out, /^greylist +0 +1 +greylist +greylisting$/m);
    assert.match(out, /^203\.0\.113\.5 +2 +2 +0 +0$/m);
    assert.match(out, /^spam\.example +2 +2/m);
    assert.match(out, /Bans in force: 1 \(1 new in the window, 0 repeat offenders\)/);
    assert.match(out, /^spamtraps +1$/m);
    assert.doesNotMatch(out, /forged\.example/, 'older than 24 h');
  });

  test('--since 7d / 30d and --by: one table in full; --json parses', async () => {
    let o = captureIo();
    assert.equal(await stats({ config, since: '30d', by: 'domain' }, o), 0);
    assert.match(o.out(), /forged\.example/);
    assert.ok(!RAW.test(o.out()), 'no raw control character');
    assert.match(o.out(), /x\\x1b\]0;pwned\\x07\\u\{202e\}\.example/);
    o = captureIo();
    assert.equal(await stats({ config, by: 'hour', json: true }, o), 0);
    const data = JSON.parse(o.out()) as { hours: Array<{ refused: number }> };
    assert.equal(data.hours.length, 25);
    assert.equal(data.hours.reduce((s, h) => s + h.refused, 0), 2);
    o = captureIo();
    assert.equal(await stats({ config, by: 'country' }, o), 0);
    assert.match(o.out(), /set asn\.table/);
  });

  test('bad flags: a clear error, exit 1, nothing opened', async () => {
    const cfg = join(dir, 'other.yaml');
    writeFileSync(cfg, `data_dir: ${join(dir, 'other')}\n`);
    for (const opts of [{ by: 'nope' }, { since: 'yesterday' }, { limit: '0' }]) {
      const o = captureIo();
      assert.equal(await stats({ config: cfg, ...opts }, o), 1);
      assert.match(o.err(), /^frontline: --(by|since|limit): /);
    }
    assert.equal(existsSync(join(dir, 'other')), false);
  });
});
