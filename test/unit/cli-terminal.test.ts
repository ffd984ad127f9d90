// Terminal safety (issue 16 item 7, CLI half): nothing the store holds reaches
// the admin's terminal raw. Senders, recipients, ban reasons, list entries
// and greylist keys come from SMTP clients and log lines; each command's
// text and JSON output is checked for raw control, C1 and format characters.

import { captureIo } from '../helpers/cli.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { banList, banShow } from '../../src/cli/ban.js';
import { listShow } from '../../src/cli/list.js';
import { greyList } from '../../src/cli/grey.js';
import { log } from '../../src/cli/log.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { printable, printableJson } from '../../src/cli/terminal-text.js';
import { loadConfig } from '../../src/config/load.js';

const EVIL = 'a\x1b]0;pwned\x07\x9b2J\u202eb\u2028c\x7f\r';
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e\u2028]/;

const io = captureIo;

let dir: string;
let config: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fl-cli-term-'));
  config = join(dir, 'frontline.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\n`);
  const store = await openConfiguredStore(loadConfig(config));
  const now = Date.now();
  await store.ban({ cidr: '198.51.100.7', reason: `reason ${EVIL}`, category: `cat${EVIL}`, source: `log:${EVIL}` });
  await store.listAdd('spamtraps', `trap${EVIL.replace(/[\r\u2028]/g, '')}@dest.example`, { source: `src${EVIL}`, kind: 'address' });
  await store.greyPut(`key${EVIL}`, { firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp: '198.51.100.8', expiresAt: now + 86400_000 });
  await store.logEvent({ ts: now, clientIp: '198.51.100.9', from: `x${EVIL}@evil.example`, rcpts: [`u${EVIL}@dest.example`], stage: 'rcpt', action: 'reject', code: 550, rule: 'spamtrap', text: `text ${EVIL}`, evidence: [] });
  await store.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('CLI output is safe on a terminal', () => {
  test('printable(): every non-printable character escaped; escaping twice changes nothing', () => {
    assert.equal(printable(EVIL), 'a\\x1b]0;pwned\\x07\\x9b2J\\u{202e}b\\u{2028}c\\x7f\\r');
    assert.equal(printable(printable(EVIL)), printable(EVIL));
    assert.equal(printable('müller@exämple.org 日本'), 'müller@exämple.org 日本', 'printable Unicode stays');
    assert.deepEqual(JSON.parse(printableJson(JSON.stringify({ v: EVIL }))), { v: EVIL }, 'JSON escapes still parse to the same string');
  });

  for (const json of [false, true]) {
    const mode = json ? 'JSON' : 'text';
    test(`frontline log, ban list, ban show, list show, grey list (${mode}): no raw control character`, async () => {
      const runs: Array<[string, (o: ReturnType<typeof io>) => Promise<number>]> = [
        ['log', (o) => log({ config, json }, o)],
        ['ban list', (o) => banList({ config, json }, o)],
        ['ban show', (o) => banShow('198.51.100.7', { config, json }, o)],
        ['list show', (o) => listShow('spamtraps', { config, json }, o)],
        ['grey list', (o) => greyList({ config, json }, o)],
      ];
      for (const [name, run] of runs) {
        const o = io();
        assert.equal(await run(o), 0, name);
        assert.ok(o.out().length > 0, name);
        assert.doesNotMatch(o.out(), RAW, `${name} (${mode}): ${JSON.stringify(o.out())}`);
        assert.match(o.out(), json ? /\\u001b\]0;pwned/ : /\\x1b\]0;pwned\\x07/, name);
        if (json) JSON.parse(o.out());
        else assert.equal(o.out().split('\n').filter(Boolean).length, name === 'ban show' ? 2 : 2, `${name}: one row, not broken by a newline`);
      }
    });
  }
});
