// BATV (src/checks/batv-tag.ts, batv.ts, src/postfix/socketmap.ts,
// batv-map.ts): tags made and checked, key rotation with overlap, expiry
// across the day counter's wrap, the `batv` evidence and the shipped rule,
// and the socketmap protocol Postfix speaks — including what a client that
// does not frame its requests gets (a PERM reply and a closed connection).
// Real Postfix signing and stripping through these maps:
// test/e2e/batv-postfix.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { batvSign, batvStrip, batvVerify, readBatvKeys, type BatvKeys } from '../../src/checks/batv-tag.js';
import { batvEvidence } from '../../src/checks/batv.js';
import { batvMaps } from '../../src/postfix/batv-map.js';
import { readNetstring, startSocketmapServer } from '../../src/postfix/socketmap.js';
import { parseConfig } from '../../src/config/load.js';
import type { Envelope } from '../../src/core/types.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';

const DAY = 86_400_000;
const k0 = { id: 0, secret: Buffer.from('the-old-key-0123456789') };
const k1 = { id: 1, secret: Buffer.from('the-new-key-9876543210') };
const keys: BatvKeys = { current: k1, all: [k1, k0] };

describe('tags', () => {
  const now = Date.UTC(2026, 11, 7, 12);

  test('a tag made today verifies for valid_days, then expires', () => {
    const tagged = batvSign('Alice@Example.com', keys, now, 7);
    assert.match(tagged, /^prvs=1\d{3}[0-9a-f]{6}=Alice@Example\.com$/);
    assert.equal(batvStrip(tagged), 'Alice@Example.com');
    assert.deepEqual(batvVerify(tagged, keys, now, 7).result, 'pass');
    assert.equal(batvVerify(tagged.toLowerCase(), keys, now + 7 * DAY, 7).result, 'pass', 'case does not matter; the last valid day');
    const late = batvVerify(tagged, keys, now + 8 * DAY, 7);
    assert.equal(late.result, 'fail');
    assert.match(late.result === 'fail' ? late.why : '', /expired 1 day/);
  });

  test('a wrong hash, an unknown key, a tag from too far ahead fail; no tag is none', () => {
    const tagged = batvSign('alice@example.com', keys, now, 7);
    const forged = tagged.replace(/^(prvs=\d{4})[0-9a-f]{6}/, '$1abcdef');
    assert.match(JSON.stringify(batvVerify(forged, keys, now, 7)), /not a tag we made/);
    assert.match(JSON.stringify(batvVerify(tagged.replace('prvs=1', 'prvs=5'), keys, now, 7)), /key 5, which is not configured/);
    assert.match(JSON.stringify(batvVerify(batvSign('alice@example.com', keys, now + 30 * DAY, 7), keys, now, 7)), /further ahead/);
    assert.equal(batvVerify('alice@example.com', keys, now, 7).result, 'none');
    assert.equal(batvVerify('prvs=1234=alice@example.com', keys, now, 7).result, 'none', 'not the prvs tag form');
  });

  test('rotation: tags of the previous key pass while it is listed, and fail once it is gone', () => {
    const old = batvSign('alice@example.com', { current: k0, all: [k0] }, now, 7);
    assert.equal(batvVerify(old, keys, now + DAY, 7).result, 'pass');
    assert.equal(batvVerify(old, { current: k1, all: [k1] }, now + DAY, 7).result, 'fail');
  });

  test('the day counter wraps at 1000 days', () => {
    // Day 20,999 (counter 999): a tag valid 7 days carries day 006.
    const before = 20_999 * DAY + 3_600_000;
    const tagged = batvSign('alice@example.com', keys, before, 7);
    assert.match(tagged, /^prvs=1006/);
    assert.equal(batvVerify(tagged, keys, before + 3 * DAY, 7).result, 'pass');
    assert.equal(batvVerify(tagged, keys, before + 8 * DAY, 7).result, 'fail');
  });

  test('keys are read from files: at least 16 characters', () => {
    const files: Record<string, string> = { '/a': 'short\n', '/b': 'long-enough-secret-123\nignored' };
    assert.throws(() => readBatvKeys([{ id: 0, secret_file: '/a' }], (f) => files[f]), /at least 16 characters/);
    assert.deepEqual(readBatvKeys([{ id: 3, secret_file: '/b' }], (f) => files[f]).current, { id: 3, secret: Buffer.from('long-enough-secret-123') });
  });
});

describe('the batv check', () => {
  const now = Date.UTC(2026, 11, 7, 12);
  const opts = { keys, domains: new Set(['example.com']), validDays: 7 };
  const env = (from: string | undefined, rcpt: string): Envelope => ({ client: { ip: '203.0.113.9' }, from, rcpts: [rcpt] }) as unknown as Envelope;

  test('a bounce to a signing domain passes with our tag and fails without one', () => {
    const tagged = batvSign('alice@example.com', keys, now, 7);
    assert.equal(batvEvidence(env('', tagged), now, opts).result, 'pass');
    const untagged = batvEvidence(env('', 'alice@example.com'), now, opts);
    assert.equal(untagged.result, 'fail');
    assert.match(untagged.detail ?? '', /carries no BATV tag/);
    assert.equal(batvEvidence(env('', tagged.replace(/[0-9a-f]{6}=/, '000000=')), now, opts).result, 'fail');
  });

  test('not a bounce, or not to a signing domain: none', () => {
    assert.equal(batvEvidence(env('bob@else.test', 'alice@example.com'), now, opts).result, 'none');
    assert.equal(batvEvidence(env('', 'bob@other.test'), now, opts).result, 'none');
    assert.equal(batvEvidence(env(undefined, 'alice@example.com'), now, opts).result, 'none');
  });

  test('config: enabled needs keys and domains; key numbers unique', () => {
    assert.throws(() => parseConfig('batv: { enabled: true, domains: [example.com] }\n', 'f.yaml'), /f\.yaml:1:\d+: batv\.keys: batv\.enabled needs at least one key/);
    assert.throws(() => parseConfig('batv: { enabled: true, keys: [{id: 0, secret_file: /k}] }\n', 'f.yaml'), /batv\.domains/);
    assert.throws(() => parseConfig('batv: { keys: [{id: 0, secret_file: /k}, {id: 0, secret_file: /j}] }\n', 'f.yaml'), /used twice/);
    assert.equal(parseConfig('', 'f.yaml').batv.enabled, false);
  });
});

describe('socketmap', () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 7, 12));
  const maps = batvMaps({ keys, domains: new Set(['example.com']), validDays: 7, clock });

  async function server(t: { after(fn: () => Promise<void>): void }) {
    const warnings: string[] = [];
    const s = await startSocketmapServer('127.0.0.1', 0, { maps, logger: { warn: (_o, m) => warnings.push(m) }, maxRequestBytes: 1000 });
    t.after(() => s.close());
    return { s, warnings };
  }

  /** Send `wire`; collect what comes back until the server closes or `replies` netstrings arrived. */
  function talk(port: number, wire: string | Buffer, replies: number): Promise<{ replies: string[]; closed: boolean }> {
    return new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let buf: Buffer = Buffer.alloc(0);
      const out: string[] = [];
      const done = (closed: boolean) => {
        c.destroy();
        resolve({ replies: out, closed });
      };
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const r = readNetstring(buf, 100_000);
          if (!r || 'error' in r) break;
          out.push(r.text);
          buf = r.rest;
        }
        if (out.length >= replies) setTimeout(() => done(c.readableEnded), 50);
      });
      c.on('end', () => done(true));
      c.on('error', reject);
      c.write(wire);
    });
  }
  const ns = (s: string) => `${Buffer.byteLength(s)}:${s},`;

  test('sign and strip, pipelined, answered in order', async (t) => {
    const { s } = await server(t);
    const r = await talk(s.address.port, ns('batv-sign alice@example.com') + ns('batv-sign bob@other.test') + ns('batv-sign @example.com') + ns('nomap x'), 4);
    assert.match(r.replies[0], /^OK prvs=1\d{3}[0-9a-f]{6}=alice@example\.com$/);
    assert.deepEqual(r.replies.slice(1), ['NOTFOUND ', 'NOTFOUND ', 'PERM no map named "nomap"']);
    const tagged = r.replies[0].slice(3);
    const back = await talk(s.address.port, ns(`batv-strip ${tagged}`) + ns('batv-strip alice@example.com') + ns(`batv-sign ${tagged}`), 3);
    assert.deepEqual(back.replies, ['OK alice@example.com', 'NOTFOUND ', 'NOTFOUND ']);
  });

  test('strip rewrites only tags we made: a bad hash or a key not listed stays as it is; an expired tag of ours is stripped', async (t) => {
    const { s } = await server(t);
    const tagged = batvSign('alice@example.com', keys, clock.now(), 7);
    const badHash = tagged.replace(/^(prvs=\d{4})[0-9a-f]{6}/, '$1abcdef');
    const unknownKey = tagged.replace('prvs=1', 'prvs=7');
    const expired = batvSign('alice@example.com', keys, clock.now() - 30 * DAY, 7);
    assert.equal(batvVerify(expired, keys, clock.now(), 7).result, 'fail', 'expired for the check');
    const r = await talk(s.address.port, ns(`batv-strip ${badHash}`) + ns(`batv-strip ${unknownKey}`) + ns(`batv-strip ${expired}`) + ns('batv-strip prvs=1000abcdef=alice@other.test'), 4);
    assert.deepEqual(r.replies, ['NOTFOUND ', 'NOTFOUND ', 'OK alice@example.com', 'NOTFOUND ']);
  });

  test('a request split into single bytes is answered; a lookup that throws answers TEMP', async (t) => {
    const failing = new Map(maps);
    failing.set('broken', () => {
      throw new Error('the key store is away');
    });
    const s = await startSocketmapServer('127.0.0.1', 0, { maps: failing, logger: { warn: () => undefined } });
    t.after(() => s.close());
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(s.address.port, '127.0.0.1');
      let buf: Buffer = Buffer.alloc(0);
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const r = readNetstring(buf, 1000);
        if (r && !('error' in r)) {
          c.destroy();
          resolve(r.text);
        }
      });
      c.on('error', reject);
      const wire = Buffer.from(ns('batv-sign alice@example.com'));
      let i = 0;
      const next = () => {
        if (i < wire.length) c.write(wire.subarray(i, ++i), () => setTimeout(next, 2));
      };
      next();
    });
    assert.match(reply, /^OK prvs=1\d{3}[0-9a-f]{6}=alice@example\.com$/);
    const temp = await talk(s.address.port, ns('broken x'), 1);
    assert.deepEqual(temp.replies, ['TEMP the key store is away']);
  });

  test('after malformed, oversized and binary requests the server still answers, and never with a value for them', async (t) => {
    const { s, warnings } = await server(t);
    const junk = [Buffer.from([0xff, 0xfe, 0x00, 0x3a, 0x2c]), Buffer.from('GET / HTTP/1.0\r\n\r\n'), Buffer.from('1001:' + 'a'.repeat(1001) + ','), Buffer.from('-1:x,')];
    for (const wire of junk) {
      const r = await talk(s.address.port, wire, 1);
      assert.equal(r.replies.length, 1);
      assert.match(r.replies[0], /^PERM /);
      assert.equal(r.closed, true);
    }
    assert.equal(warnings.length, junk.length, 'one warning per bad connection');
    // A good request before the bad one is answered; nothing after the bad one is.
    const mixed = await talk(s.address.port, ns('batv-sign alice@example.com') + 'garbage' + ns('batv-sign bob@example.com'), 2);
    assert.equal(mixed.replies.length, 2);
    assert.match(mixed.replies[0], /^OK prvs=/);
    assert.match(mixed.replies[1], /^PERM /);
    assert.equal(mixed.closed, true);
    const after = await talk(s.address.port, ns('batv-sign alice@example.com'), 1);
    assert.match(after.replies[0], /^OK prvs=/, 'the server still serves');
  });

  test('connections over the limit are closed at once', async (t) => {
    const s = await startSocketmapServer('127.0.0.1', 0, { maps, logger: { warn: () => undefined }, maxConnections: 2 });
    t.after(() => s.close());
    const held = [net.connect(s.address.port, '127.0.0.1'), net.connect(s.address.port, '127.0.0.1')];
    t.after(() => held.forEach((c) => c.destroy()));
    await Promise.all(held.map((c) => new Promise((r) => c.once('connect', r))));
    await new Promise((r) => setTimeout(r, 100));
    const r = await talk(s.address.port, ns('batv-sign alice@example.com'), 1);
    assert.deepEqual(r.replies, []);
    assert.equal(r.closed, true);
  });

  test('a request that is not a netstring, or too long, gets PERM and the connection is closed', async (t) => {
    const { s, warnings } = await server(t);
    for (const wire of ['batv-sign alice@example.com\n', `5000:${'x'.repeat(10)}`, '99999999999:x', '5:abcdef,', ':x,']) {
      const r = await talk(s.address.port, wire, 1);
      assert.equal(r.replies.length, 1, wire);
      assert.match(r.replies[0], /^PERM /, wire);
      assert.equal(r.closed, true, wire);
    }
    assert.ok(warnings.every((w) => /malformed request, connection closed/.test(w)));
  });
});

describe('docs/batv.md', () => {
  /** A file's settings: its comment and blank lines dropped. */
  const settings = (text: string) => text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const doc = readFileSync(join(REPO_ROOT, 'docs/batv.md'), 'utf8');
  const block = (first: string) => {
    const m = new RegExp('```[a-z]*\\n' + first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\n([\\s\\S]*?)```').exec(doc);
    assert.ok(m, `docs/batv.md has a block starting with ${first}`);
    return settings(m[1]);
  };
  const contrib = (f: string) => settings(readFileSync(join(REPO_ROOT, 'contrib/postfix/batv', f), 'utf8'));

  test('its frontline.yaml, master.cf and main.cf blocks are the settings of contrib/postfix/batv/ (which the e2e test runs)', () => {
    assert.deepEqual(block('# frontline.yaml'), contrib('frontline.yaml'));
    assert.deepEqual(block('# master.cf'), contrib('master.cf'));
    assert.deepEqual(block('# main.cf: a bounce to prvs=…=user@example.com is delivered to user@example.com'), contrib('main.cf'));
  });
});
