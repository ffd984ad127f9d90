// Imported IP lists: parsing (DROP-style comments, ranges, bad lines with
// source and line), fetching from a file and from a real HTTP server on
// loopback, keeping the last good copy on failure, the shrink/grow guard,
// and the `intel:` config section.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIpList } from '../../src/intel/lists-import/parse.js';
import { ListImporter, runImportOnce, type ImportSource, type ImportState } from '../../src/intel/lists-import/import.js';
import { fetchListText } from '../../src/intel/lists-import/fetch.js';
import { MemoryListSink } from '../../src/intel/list-sink.js';
import { importSources, intelSchema, whitelistDomains } from '../../src/intel/config.js';

const HOUR = 3600_000;
const T0 = Date.UTC(2025, 0, 1);

describe('parseIpList', () => {
  test('addresses, CIDRs, ranges; # and ; comments; DROP lines', () => {
    const text = [
      '; Spamhaus DROP List 2025/01/01 - (c) 2025 The Spamhaus Project',
      '; Last-Modified: Wed, 01 Jan 2025 00:00:00 GMT',
      '1.10.16.0/20 ; SBL256894',
      '2.56.192.0/22 ; SBL459831',
      '# a comment',
      '',
      '   192.0.2.9   # trailing comment',
      '198.51.100.10 - 198.51.100.13',
      '203.0.113.0-203.0.113.255',
      '2001:DB8::/32',
      '192.0.2.9/32',
      '10.1.2.3/8',
    ].join('\r\n');
    const r = parseIpList(text, 'drop.txt');
    assert.deepEqual(r.entries, [
      '1.10.16.0/20',
      '2.56.192.0/22',
      '192.0.2.9/32',
      '198.51.100.10/31',
      '198.51.100.12/31',
      '203.0.113.0/24',
      '2001:db8::/32',
      '10.0.0.0/8',
    ]);
    assert.deepEqual(r.bad, []);
    assert.equal(r.dataLines, 8);
  });

  test('bad lines are reported with source and line, and skipped', () => {
    const text = ['192.0.2.0/24', '192.0.2.300', '<html>', '192.0.2.1 extra words', '192.0.2.5 - 2001:db8::1', '192.0.2.9 - 192.0.2.1', '192.0.2.0/33', '198.51.100.0/24', 'x'.repeat(2000)].join('\n');
    const r = parseIpList(text, 'https://lists.example/bad.txt');
    assert.deepEqual(r.entries, ['192.0.2.0/24', '198.51.100.0/24']);
    assert.deepEqual(
      r.bad.map((b) => [b.source, b.line, b.reason]),
      [
        ['https://lists.example/bad.txt', 2, 'not an IP address or CIDR: 192.0.2.300'],
        ['https://lists.example/bad.txt', 3, 'not an IP address or CIDR: <html>'],
        ['https://lists.example/bad.txt', 4, 'expected one address, CIDR or range, got: 192.0.2.1 extra words'],
        ['https://lists.example/bad.txt', 5, 'range mixes IPv4 and IPv6: 192.0.2.5 - 2001:db8::1'],
        ['https://lists.example/bad.txt', 6, 'range ends before it starts: 192.0.2.9 - 192.0.2.1'],
        ['https://lists.example/bad.txt', 7, 'not an IP address or CIDR: 192.0.2.0/33'],
        ['https://lists.example/bad.txt', 9, 'line longer than 1000 characters'],
      ],
    );
    assert.equal(r.bad[6].text.length, 200);
  });

  test('entry and report limits', () => {
    const text = Array.from({ length: 50 }, (_, i) => `10.0.${i}.0/24`).join('\n');
    const r = parseIpList(text, 'f', { maxEntries: 10 });
    assert.equal(r.entries.length, 10);
    assert.match(r.bad[0].reason, /more than 10 entries/);
    assert.equal(r.bad[0].line, 11);
    assert.deepEqual(parseIpList(nets(10), 'f', { maxEntries: 10 }).bad, [], 'exactly the limit is fine');
    const bad = parseIpList(Array.from({ length: 30 }, () => 'junk').join('\n'), 'f', { maxBadReported: 5 });
    assert.equal(bad.bad.length, 6);
    assert.equal(bad.bad[5].reason, '25 more bad lines not shown');
  });
});

function nets(n: number, third = 0): string {
  return Array.from({ length: n }, (_, i) => `10.${third}.${i}.0/24`).join('\n');
}

describe('imports from a file', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'frontline-import-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('written into the named list with source and expiry; a missing file keeps the copy', async () => {
    const file = join(dir, 'local.txt');
    writeFileSync(file, '# ours\n192.0.2.0/24\n198.51.100.7\n');
    const sink = new MemoryListSink();
    let now = T0;
    const src: ImportSource = { name: 'local-block', location: { file }, intervalS: 3600 };
    const state: ImportState = {};
    const deps = { sink, clock: { now: () => now } };
    const r = await runImportOnce(src, deps, state);
    assert.equal(r.status, 'updated');
    assert.equal(r.count, 2);
    assert.deepEqual(sink.lists.get('local-block'), [
      { value: '192.0.2.0/24', source: 'import:local-block', expiresAt: T0 + 3 * HOUR },
      { value: '198.51.100.7/32', source: 'import:local-block', expiresAt: T0 + 3 * HOUR },
    ]);

    rmSync(file);
    now += HOUR;
    const gone = await runImportOnce(src, deps, state);
    assert.equal(gone.status, 'failed');
    assert.match(gone.reason!, /local\.txt: ENOENT/);
    assert.equal(sink.writes.length, 1, 'nothing written');
    assert.equal(sink.live('local-block', now).length, 2);
  });
});

describe('imports over HTTP', () => {
  let server: http.Server;
  let base: string;
  let body = '';
  let status = 200;
  let hang = false;
  let hits = 0;
  before(async () => {
    server = http.createServer((req, res) => {
      hits++;
      if (hang) return; // never answers
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('updates, keeps the last copy on failure, holds back a shrink or growth', async () => {
    const sink = new MemoryListSink();
    let now = T0;
    const src: ImportSource = { name: 'drop', location: { url: `${base}/drop.txt` }, intervalS: 3600, expireS: 7200 };
    const importer = new ListImporter([src], { sink, clock: { now: () => now } });
    const run = () => importer.runOnce('drop');

    status = 200;
    body = nets(10);
    assert.equal((await run()).status, 'updated');
    assert.equal(sink.live('drop', now).length, 10);
    assert.equal(sink.lists.get('drop')![0].expiresAt, T0 + 2 * HOUR);

    // Server error: failed, last copy kept.
    now += HOUR;
    status = 500;
    const failed = await run();
    assert.equal(failed.status, 'failed');
    assert.match(failed.reason!, /HTTP 500/);
    assert.equal(sink.live('drop', now).length, 10);

    // An HTML error page with 200: no valid entry, failed, kept.
    status = 200;
    body = '<html><body>Service unavailable</body></html>';
    const html = await run();
    assert.equal(html.status, 'failed');
    assert.match(html.reason!, /no valid entry in 1 line/);
    assert.equal(html.badLines[0].source, `${base}/drop.txt`);

    // Shrinks to 40%: held back.
    body = nets(4);
    const shrunk = await run();
    assert.equal(shrunk.status, 'held');
    assert.match(shrunk.reason!, /4 entries is 40% of the last good 10 \(allowed 50%–300%\): held back/);
    assert.equal(sink.live('drop', now).length, 10);

    // Within the ratio again: applied (the held copy is dropped).
    body = nets(6);
    assert.equal((await run()).status, 'updated');
    assert.equal(sink.live('drop', now).length, 6);
    assert.equal(importer.states.get('drop')!.held, undefined);

    // Grows to 400%: held; an admin accepts it.
    body = nets(24);
    assert.equal((await run()).status, 'held');
    assert.equal(sink.live('drop', now).length, 6);
    assert.equal(await importer.accept('drop'), true);
    assert.equal(sink.live('drop', now).length, 24);
    assert.equal(await importer.accept('drop'), false);

    // Empty body: failed, not an empty list.
    body = '';
    assert.equal((await run()).status, 'failed');
    assert.equal(sink.live('drop', now).length, 24);

    // With bad lines: good ones applied, bad ones reported.
    body = `${nets(20)}\nbogus line\n`;
    const mixed = await run();
    assert.equal(mixed.status, 'updated');
    assert.deepEqual(
      mixed.badLines.map((b) => [b.line, b.reason]),
      [[21, 'expected one address, CIDR or range, got: bogus line']],
    );

    // The last good copy expires by itself when every later fetch fails.
    status = 503;
    now += 2 * HOUR + 1;
    assert.equal((await run()).status, 'failed');
    assert.equal(sink.live('drop', now).length, 0);
  });

  test('while a copy is held the last good one stays alive past its expiry (regression: the list emptied itself)', async () => {
    const sink = new MemoryListSink();
    let now = T0;
    const src: ImportSource = { name: 'held-alive', location: { url: `${base}/alive.txt` }, intervalS: 3600, expireS: 7200 };
    const importer = new ListImporter([src], { sink, clock: { now: () => now } });
    status = 200;
    body = nets(10);
    assert.equal((await importer.runOnce(src.name)).status, 'updated');
    body = nets(2);
    for (let i = 0; i < 5; i++) {
      now += HOUR;
      const r = await importer.runOnce(src.name);
      assert.equal(r.status, 'held');
      assert.match(r.reason!, /frontline list import accept held-alive/);
    }
    // Five hours on, well past the 2 h expiry of the last update: still in force.
    assert.equal(sink.live(src.name, now).length, 10);
    assert.equal(sink.live(src.name, now + HOUR).length, 10);
  });

  test('a copy accepted from another process (the CLI) becomes the serving importer\'s last good one', async () => {
    const sink = new MemoryListSink();
    const now = T0;
    const src: ImportSource = { name: 'accepted', location: { url: `${base}/acc.txt` }, intervalS: 3600 };
    const serving = new ListImporter([src], { sink, clock: { now: () => now } });
    status = 200;
    body = nets(6);
    assert.equal((await serving.runOnce(src.name)).status, 'updated');
    body = nets(24);
    assert.equal((await serving.runOnce(src.name)).status, 'held');
    // `frontline list import accept accepted`: its own state, the same store.
    assert.equal((await runImportOnce(src, { sink, clock: { now: () => now } }, {}, { force: true })).status, 'updated');
    assert.equal(sink.live(src.name, now).length, 24);
    const next = await serving.runOnce(src.name);
    assert.equal(next.status, 'updated');
    assert.equal(next.previous, 24);
  });

  test('after a restart the shrink guard compares with what the list holds', async () => {
    const sink = new MemoryListSink();
    const now = T0;
    const src: ImportSource = { name: 'drop2', location: { url: `${base}/x` }, intervalS: 3600 };
    status = 200;
    body = nets(10);
    await runImportOnce(src, { sink, clock: { now: () => now } }, {});
    body = nets(2);
    const r = await runImportOnce(src, { sink, clock: { now: () => now } }, {});
    assert.equal(r.status, 'held');
    assert.equal(r.previous, 10);
    assert.equal((await runImportOnce(src, { sink, clock: { now: () => now } }, {}, { force: true })).status, 'updated');
  });

  test('a server that does not answer times out', async () => {
    hang = true;
    try {
      await assert.rejects(fetchListText({ url: `${base}/slow` }, { timeoutMs: 200 }), /timed out/);
    } finally {
      hang = false;
    }
  });

  test('size limit, non-http URLs, refused connections', async () => {
    status = 200;
    body = nets(200);
    await assert.rejects(fetchListText({ url: `${base}/big` }, { maxBytes: 100 }), /more than the limit of 100/);
    await assert.rejects(fetchListText({ url: 'ftp://127.0.0.1/x' }), /only http and https/);
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(fetchListText({ url: `http://127.0.0.1:${port}/x` }, { timeoutMs: 2000 }), /ECONNREFUSED/);
  });

  test('the importer schedules one job per source', () => {
    const importer = new ListImporter([{ name: 'a', location: { url: `${base}/a` }, intervalS: 600 }], { sink: new MemoryListSink(), clock: { now: () => 0 } });
    assert.deepEqual(
      importer.jobs().map((j) => [j.name, j.intervalMs]),
      [['import:a', 600_000]],
    );
    assert.throws(
      () =>
        new ListImporter(
          [
            { name: 'a', location: { file: 'x' }, intervalS: 60 },
            { name: 'a', location: { file: 'y' }, intervalS: 60 },
          ],
          { sink: new MemoryListSink(), clock: { now: () => 0 } },
        ),
      /configured twice/,
    );
    assert.ok(hits > 0);
  });
});

describe('intel config section', () => {
  test('an empty section means the defaults', () => {
    const cfg = intelSchema.parse(null);
    assert.equal(cfg.spf_whitelist.list, 'spf-walked');
    assert.equal(cfg.spf_whitelist.interval_s, 86400);
    assert.ok(cfg.spf_whitelist.domains.includes('gmail.com'));
    assert.equal(cfg.correspondents.list, 'correspondents');
    assert.equal(cfg.correspondents.require_auth, true);
    assert.ok(cfg.correspondents.free_mail.includes('yahoo.*'));
    assert.deepEqual(cfg.imports, []);
  });

  test('imports and extra domains', () => {
    const cfg = intelSchema.parse({
      spf_whitelist: { domains: ['Example.COM.'], extra_domains: ['partner.example', 'example.com'], interval_s: 3600 },
      imports: [
        { name: 'spamhaus-drop', url: 'https://www.spamhaus.org/drop/drop.txt', interval_s: 43200 },
        { name: 'local', file: '/etc/frontline/block.txt', max_shrink: 0.2, max_grow: 10, expire_s: 86400 },
      ],
    });
    assert.deepEqual(whitelistDomains(cfg), ['example.com', 'partner.example']);
    assert.deepEqual(importSources(cfg), [
      { name: 'spamhaus-drop', location: { url: 'https://www.spamhaus.org/drop/drop.txt' }, intervalS: 43200, expireS: undefined, maxShrink: 0.5, maxGrow: 3, timeoutS: 30 },
      { name: 'local', location: { file: '/etc/frontline/block.txt' }, intervalS: 86400, expireS: 86400, maxShrink: 0.2, maxGrow: 10, timeoutS: 30 },
    ]);
  });

  test('mistakes are named', () => {
    const problems = (v: unknown) => {
      const r = intelSchema.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.deepEqual(problems({ imports: [{ name: 'x', url: 'https://a.example/x', file: '/x' }] }), ['imports.0: give exactly one of url or file']);
    assert.deepEqual(problems({ imports: [{ name: 'x', url: 'ftp://a.example/x' }] }), ['imports.0.url: expected an http:// or https:// URL']);
    assert.deepEqual(problems({ imports: [{ name: 'spf-walked', file: '/x' }] }), ['imports.0.name: list "spf-walked" is already written by spf_whitelist']);
    assert.deepEqual(problems({ spf_whitelist: { domains: ['not a domain'] } }), ['spf_whitelist.domains.0: expected a domain name (e.g. example.com)']);
    assert.deepEqual(problems({ correspondents: { free_mail: ['*.bad'] } }), ['correspondents.free_mail.0: expected a domain (gmail.com) or label.* (yahoo.*)']);
    assert.match(problems({ spf_whitelist: { interval: 5 } })[0], /spf_whitelist: Unrecognized key/);
  });
});
