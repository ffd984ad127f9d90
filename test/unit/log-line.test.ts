// The decision line's fast path writes exactly what pino would.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { childLogger, createLogger, infoLine, JsonText } from '../../src/log.js';

const FIELDS = {
  instance: 'a1b2.6b027f38.7680a.0',
  queueId: undefined,
  client: '192.0.2.1',
  helo: 'odd "name" \\ with\u0001controls é 😀',
  n: 3,
  f: 0.25,
  inf: Infinity,
  yes: true,
  evidence: { spf: 'pass', mx: 'nomatch' },
  // JSON text already (the policy server's evidence summary): written as it is by infoLine, as its value by pino.
  summary: new JsonText('{"spf":"pass","list:allow":"unlisted"}'),
  details: ['spf: a', 'mx: b'],
  wouldHave: [{ rule: 'r', action: 'reject', code: 554 }],
  score: undefined,
  ms: 1.23,
};

test('infoLine on a createLogger logger: the same JSON line as logger.info', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'frontline-log-')), 'x.log');
  const log = createLogger({ level: 'info', file, buffered: false });
  const now = Date.now;
  Date.now = () => 1_700_000_000_123;
  t.after(() => {
    Date.now = now;
  });
  log.info(FIELDS, 'decision');
  infoLine(log, FIELDS, 'decision');
  Date.now = now;
  const [viaPino, fast] = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(fast, viaPino);
  assert.equal(JSON.parse(fast).helo, FIELDS.helo);
});

test('infoLine on any other logger goes through pino', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  infoLine(log.child({ room: 'x' }), { a: 1 }, 'decision');
  const line = JSON.parse(lines[0]);
  assert.equal(line.msg, 'decision');
  assert.equal(line.room, 'x');
  assert.equal(line.a, 1);
});

test('infoLine on a childLogger of a createLogger logger: the same JSON line as the child would write', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'frontline-log-')), 'x.log');
  const log = childLogger(childLogger(createLogger({ level: 'info', file, buffered: false }), { room: 'gate' }), { session: 'A1B2', client: '192.0.2.1' });
  const now = Date.now;
  Date.now = () => 1_700_000_000_123;
  t.after(() => {
    Date.now = now;
  });
  log.info(FIELDS, 'verdict');
  // The fast path, not pino's: infoLine must not call the child's info.
  log.info = () => assert.fail('infoLine went through pino');
  infoLine(log, FIELDS, 'verdict');
  Date.now = now;
  const [viaPino, fast] = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(fast, viaPino);
  assert.equal(JSON.parse(fast).session, 'A1B2');
});
