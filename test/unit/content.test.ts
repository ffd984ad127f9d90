import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { checkContent, compileContentRules, type ContentRule } from '../../src/checks/content.js';
import { ContentWorkerPool } from '../../src/checks/content-pool.js';
import { backtrackingRisks } from '../../src/checks/regex-safety.js';
import { bodyText, decodeEncodedWords, decodeQuotedPrintable } from '../../src/checks/mime-text.js';
import { envelope, makeContext } from '../helpers/check-context.js';

const pool = new ContentWorkerPool({ size: 1 });
after(() => pool.close());

const ctx = makeContext(new ZoneResolver(new Zone({})));

function compiled(rules: ContentRule[]) {
  const r = compileContentRules(rules);
  assert.deepEqual(r.errors, []);
  return r.rules;
}

function msg(lines: string[]): Buffer {
  return Buffer.from(lines.join('\r\n'));
}

function run(message: Buffer | undefined, rules: ContentRule[], extra: { timeoutMs?: number; maxTextChars?: number } = {}) {
  return checkContent(envelope({ clientIp: '192.0.2.1', message }), ctx, { rules: compiled(rules), pool, timeoutMs: extra.timeoutMs ?? 5000, maxTextChars: extra.maxTextChars });
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64').replace(/.{76}/g, '$&\r\n');

describe('content rules: compiling', () => {
  test('valid rules compile; header names are lower-cased', () => {
    const r = compileContentRules([
      { name: 'subj', header: 'Subject', pattern: 'viagra', flags: 'i', action: 'reject', text: 'no pills' },
      { name: 'body', body: true, pattern: '^unsubscribe', flags: 'm', action: 'tag' },
    ]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.rules[0].header, 'subject');
    assert.equal(r.rules[1].header, undefined);
  });

  test('every problem is reported with the rule it belongs to', () => {
    const r = compileContentRules([
      { name: '', header: 'Subject', pattern: 'x', action: 'reject' },
      { name: 'both', header: 'Subject', body: true, pattern: 'x', action: 'reject' },
      { name: 'neither', pattern: 'x', action: 'reject' },
      { name: 'flags', body: true, pattern: 'x', flags: 'g', action: 'reject' },
      { name: 'syntax', body: true, pattern: '(unclosed', action: 'reject' },
      { name: 'action', body: true, pattern: 'x', action: 'bounce' as never },
      { name: 'hdr', header: 'Bad Header', pattern: 'x', action: 'reject' },
      { name: 'dup', body: true, pattern: 'x', action: 'reject' },
      { name: 'dup', body: true, pattern: 'y', action: 'reject' },
    ]);
    assert.equal(r.rules.length, 1); // the first `dup`
    const text = r.errors.join('\n');
    assert.match(text, /content rule 1 needs a name/);
    assert.match(text, /"both" needs exactly one of/);
    assert.match(text, /"neither" needs exactly one of/);
    assert.match(text, /"flags" has flags "g"/);
    assert.match(text, /"syntax" has an invalid pattern/);
    assert.match(text, /"action" has action "bounce"/);
    assert.match(text, /"hdr" has an invalid header name/);
    assert.match(text, /content rule 9 "dup" has the name of an earlier rule/);
  });

  test('catastrophic patterns are refused at load', () => {
    for (const pattern of ['(a+)+$', '(a|a)*$', '(\\w+\\s?)+$', '(.*,)+x', '(\\w|\\d)+!']) {
      const r = compileContentRules([{ name: 'bad', body: true, pattern, action: 'reject' }]);
      assert.equal(r.rules.length, 0, pattern);
      assert.match(r.errors[0], /refused: .*exponential time/, pattern);
    }
  });

  test('common safe shapes are accepted', () => {
    for (const p of ['([a-z0-9-]+\\.)+[a-z]{2,}', '(?:,\\s*\\w+)*', '^Subject:.*(viagra|cialis)', '(\\d{1,3}\\.){3}\\d{1,3}', '(re:|fwd?:)*\\s*win', '[^\\]]+']) {
      assert.deepEqual(backtrackingRisks(p, 'i'), [], p);
    }
  });
});

describe('content rules: matching', () => {
  test('no message: none; no rules: nomatch', async () => {
    const e1 = await run(undefined, [{ name: 'x', body: true, pattern: 'x', action: 'reject' }]);
    assert.equal(e1.check, 'content');
    assert.equal(e1.result, 'none');
    const e2 = await checkContent(envelope({ clientIp: '192.0.2.1', message: Buffer.from('a: b\r\n\r\nx') }), ctx, { rules: [], pool });
    assert.equal(e2.result, 'nomatch');
  });

  test('a header rule matches any field of that name, case-insensitively, after RFC 2047 decoding', async () => {
    const m = msg(['From: a@example.org', 'subject: =?UTF-8?B?' + Buffer.from('Günstige Viagra').toString('base64') + '?=', '', 'hi']);
    const e = await run(m, [{ name: 'pills', header: 'SUBJECT', pattern: 'günstige\\s+viagra', flags: 'iu', action: 'reject', text: 'Spam refused' }]);
    assert.equal(e.result, 'match', e.detail);
    assert.equal(e.data?.rule, 'pills');
    assert.equal(e.data?.action, 'reject');
    assert.equal(e.data?.text, 'Spam refused');
    assert.equal(e.data?.where, 'header:subject');
  });

  test('a body rule matches base64-encoded text', async () => {
    const m = msg(['From: a@example.org', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64', '', b64('Dear friend,\nclaim your prize of 1.000.000 € now\n'), '']);
    const e = await run(m, [{ name: 'prize', body: true, pattern: 'claim your prize of [\\d.]+ €', action: 'reject' }]);
    assert.equal(e.result, 'match', e.detail);
    assert.equal(e.data?.where, 'body');
    assert.equal(e.data?.matched, 'claim your prize of 1.000.000 €');
  });

  test('quoted-printable HTML in multipart/alternative, with a charset', async () => {
    const m = msg([
      'From: a@example.org',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="b1"',
      '',
      'preamble',
      '--b1',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'plain part',
      '--b1',
      'Content-Type: text/html; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>Sch=F6ne Gr=FC=',
      '=DFe vom Casino</p>',
      '--b1--',
      '',
    ]);
    const e = await run(m, [{ name: 'casino', body: true, pattern: 'Schöne Grüße vom Casino', action: 'tag' }]);
    assert.equal(e.result, 'match', e.detail);
  });

  test('attachments and non-text parts are not scanned', async () => {
    const m = msg([
      'From: a@example.org',
      'Content-Type: multipart/mixed; boundary=XX',
      '',
      '--XX',
      'Content-Type: text/plain',
      '',
      'hello',
      '--XX',
      'Content-Type: text/plain',
      'Content-Disposition: attachment; filename=log.txt',
      '',
      'casino',
      '--XX',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      b64('casino'),
      '--XX--',
    ]);
    const e = await run(m, [{ name: 'casino', body: true, pattern: 'casino', action: 'reject' }]);
    assert.equal(e.result, 'nomatch', e.detail);
  });

  test('the first matching rule in order wins, whether header or body', async () => {
    const m = msg(['Subject: cheap watches', '', 'cheap watches inside']);
    const e = await run(m, [
      { name: 'none', header: 'X-Nothing', pattern: '.', action: 'reject' },
      { name: 'body-first', body: true, pattern: 'watches', action: 'tag' },
      { name: 'subject', header: 'Subject', pattern: 'watches', action: 'reject' },
    ]);
    assert.equal(e.data?.rule, 'body-first');
    assert.equal(e.data?.action, 'tag');
  });

  test('decoded text beyond the limit is not scanned', async () => {
    const m = msg(['Subject: x', '', 'a'.repeat(5000) + ' casino']);
    const e = await run(m, [{ name: 'casino', body: true, pattern: 'casino', action: 'reject' }], { maxTextChars: 1000 });
    assert.equal(e.result, 'nomatch');
    assert.equal(e.data?.truncated, true);
  });

  test('a pattern that runs too long times out without stalling, and the next message is served', async () => {
    // Polynomial, not exponential: the load-time check lets it through; the deadline stops it.
    const slow: ContentRule = { name: 'slow', body: true, pattern: 'a*a*a*a*a*b', action: 'reject' };
    assert.deepEqual(compileContentRules([slow]).errors, []);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const t0 = performance.now();
    const e = await run(msg(['Subject: x', '', 'a'.repeat(5000)]), [slow], { timeoutMs: 300 });
    const elapsed = performance.now() - t0;
    clearInterval(ticker);
    assert.equal(e.result, 'temperror');
    assert.match(e.detail, /content rules timed out/);
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
    assert.ok(ticks >= 10, `event loop ticked only ${ticks} times while matching`);
    assert.equal(pool.terminated, 1);
    const next = await run(msg(['Subject: x', '', 'aab']), [slow]);
    assert.equal(next.result, 'match');
  });
});

describe('mime text decoding', () => {
  test('encoded words: B and Q, adjacent words joined, plain text kept', () => {
    assert.equal(decodeEncodedWords('=?utf-8?q?caf=C3=A9_au?= =?utf-8?q?_lait?= and more'), 'café au lait and more');
    assert.equal(decodeEncodedWords('Re: =?ISO-8859-1?B?' + Buffer.from([0x47, 0x72, 0xfc, 0xdf, 0x65]).toString('base64') + '?='), 'Re: Grüße');
    assert.equal(decodeEncodedWords('no words here'), 'no words here');
  });

  test('quoted-printable: soft breaks and escapes', () => {
    assert.equal(decodeQuotedPrintable('a=3Db=\r\nc =\nd=ZZ').toString('latin1'), 'a=bc d=ZZ');
  });

  test('a message without MIME headers is plain text', () => {
    assert.equal(bodyText(Buffer.from('Subject: x\r\n\r\nhello\r\n')).text, 'hello\r\n');
  });

  test('a message/rfc822 attachment is walked into', () => {
    const inner = ['Subject: inner', 'Content-Type: text/plain', '', 'forwarded casino text'].join('\r\n');
    const m = msg(['Content-Type: multipart/mixed; boundary=o', '', '--o', 'Content-Type: message/rfc822', '', inner, '--o--']);
    assert.match(bodyText(m).text, /forwarded casino text/);
  });
});
