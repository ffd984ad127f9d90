import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { AsnDatabase, loadAsnTable, parseAsnText, type BadLine } from '../../src/store/asn.js';
import { parseListText } from '../../src/store/list-file.js';
import { openAsnFile } from '../../src/store/asn-file.js';

// Lines in the iptoasn.com layout: range_start range_end AS_number country AS_description.
const V4 = [
  '1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET',
  '1.0.1.0\t1.0.3.255\t0\tNone\tNot routed',
  '1.0.4.0\t1.0.7.255\t38803\tAU\tGTELECOM-AUSTRALIA Gtelecom-AUSTRALIA',
  '1.0.16.0\t1.0.16.255\t2519\tJP\tVECTANT ARTERIA Networks Corporation',
  '1.0.5.0\t1.0.5.255\t64500\tZZ\toverlaps the AU range',
  'garbage line without tabs',
  '1.0.20.0\t1.0.19.255\t64501\tZZ\tstart after end',
  '1.0.32.0\tnot-an-ip\t64502\tZZ\tbad end',
  '1.0.64.0\t1.0.127.255\tAS123\tZZ\tbad asn',
  '',
  '223.255.254.0\t223.255.254.255\t55415\tSG\tMARINA-AS-AP MARINA SOFTWARE',
].join('\n');

const V6 = [
  '2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BLOCK WIDE Project',
  '2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64496\tZZ\tDOCUMENTATION',
  '2001:db8:1::\t2001:db8:1::ffff\t64497\tZZ\toverlaps documentation',
  '2c0f:fff0::\t2c0f:fff0:ffff:ffff:ffff:ffff:ffff:ffff\t37125\tNG\tLAYER3-ASN',
].join('\n');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-asn-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ASN table', () => {
  test('IPv4 ranges: lookups inside, at the edges and in gaps', () => {
    const { table } = parseAsnText(V4, 'ip2asn-v4.tsv');
    assert.deepEqual(table.lookup('1.0.0.0'), { asn: 13335, country: 'US', description: 'CLOUDFLARENET' });
    assert.equal(table.asnOf('1.0.0.255'), 13335);
    assert.equal(table.asnOf('1.0.2.1'), 0, 'AS 0 "Not routed" is no ASN');
    assert.equal(table.asnOf('1.0.5.9'), 38803, 'overlapping later range was skipped');
    assert.equal(table.asnOf('1.0.8.0'), 0, 'gap');
    assert.equal(table.asnOf('1.0.16.128'), 2519);
    assert.equal(table.asnOf('223.255.254.254'), 55415);
    assert.equal(table.asnOf('255.255.255.255'), 0);
    assert.equal(table.asnOf('0.0.0.0'), 0);
    assert.equal(table.asnOf('::ffff:1.0.0.1'), 13335);
    assert.equal(table.asnOf('nonsense'), 0);
    assert.equal(table.lookup('1.0.8.0'), undefined);
  });

  test('bad lines are reported with file and line, and skipped', () => {
    const { table, bad } = parseAsnText(V4, 'ip2asn-v4.tsv');
    assert.deepEqual(
      bad.map((b) => [b.file, b.line]),
      [
        ['ip2asn-v4.tsv', 5],
        ['ip2asn-v4.tsv', 6],
        ['ip2asn-v4.tsv', 7],
        ['ip2asn-v4.tsv', 8],
        ['ip2asn-v4.tsv', 9],
      ],
    );
    assert.match(bad[0].why, /overlaps the range on line 3/);
    assert.match(bad[1].why, /columns/);
    assert.match(bad[2].why, /start is after its end/);
    assert.match(bad[3].why, /bad range end/);
    assert.match(bad[4].why, /bad AS number/);
    assert.equal(table.size, 4);
  });

  test('IPv6 ranges and the combined file', () => {
    const { table, bad } = parseAsnText(`${V4}\n${V6}`, 'ip2asn-combined.tsv');
    assert.equal(table.asnOf('2001:200::1'), 2500);
    assert.equal(table.asnOf('2001:db8:1::5'), 64496);
    assert.equal(table.asnOf('2001:db9::'), 0);
    assert.equal(table.asnOf('2c0f:fff0:ffff::1'), 37125);
    assert.equal(table.asnOf('1.0.0.1'), 13335);
    assert.ok(bad.some((b) => b.line === 14 && /overlaps/.test(b.why)));
  });

  test('numeric (u32) files load too', () => {
    const { table } = parseAsnText('16777216\t16777471\t13335\tUS\tCLOUDFLARENET\n', 'ip2asn-v4-u32.tsv');
    assert.equal(table.asnOf('1.0.0.77'), 13335);
  });

  test('files, plain and gzipped, stream in', async () => {
    writeFileSync(join(dir, 'ip2asn-v4.tsv'), V4);
    writeFileSync(join(dir, 'ip2asn-v6.tsv.gz'), gzipSync(V6));
    const plain = await loadAsnTable(join(dir, 'ip2asn-v4.tsv'));
    assert.equal(plain.table.asnOf('1.0.4.1'), 38803);
    assert.equal(plain.bad[0].file, join(dir, 'ip2asn-v4.tsv'));
    const gz = await loadAsnTable(join(dir, 'ip2asn-v6.tsv.gz'));
    assert.equal(gz.table.asnOf('2001:200::1'), 2500);
    await assert.rejects(loadAsnTable(join(dir, 'missing.tsv')), /ENOENT/);
  });

  test('a missing or all-bad file never empties the table in use', async () => {
    const reported: BadLine[] = [];
    const db = new AsnDatabase((b) => reported.push(b));
    writeFileSync(join(dir, 'good.tsv'), V4);
    writeFileSync(join(dir, 'bad.tsv'), 'junk\nmore junk\n');
    assert.equal((await db.load(join(dir, 'good.tsv'))).replaced, true);
    assert.equal(reported.length, 5);
    const missing = await db.load(join(dir, 'nope.tsv'));
    assert.equal(missing.replaced, false);
    assert.match(missing.error ?? '', /nope\.tsv/);
    const junk = await db.load(join(dir, 'bad.tsv'));
    assert.equal(junk.replaced, false);
    assert.equal(junk.bad, 2);
    assert.equal(db.table.asnOf('1.0.0.1'), 13335, 'previous table still answers');
  });
});

describe('list files', () => {
  test('entries canonicalised, comments and blanks ignored, bad lines reported and skipped', () => {
    const text = ['# my networks', '192.0.2.0/24', '198.51.100.7  # one host', '', '300.1.1.1', '2001:db8::/32', '192.0.2.9/24'].join('\n');
    const { entries, bad } = parseListText(text, 'ip', '/etc/frontline/white.txt');
    assert.deepEqual(entries, ['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32']);
    assert.deepEqual(bad.map((b) => [b.file, b.line, b.text]), [['/etc/frontline/white.txt', 5, '300.1.1.1']]);
    const asns = parseListText('AS64496\n64497\nASX\n', 'asn', 'asns.txt');
    assert.deepEqual(asns.entries, ['AS64496', 'AS64497']);
    assert.equal(asns.bad[0].line, 3);
  });
});

describe('asn.table file (openAsnFile)', () => {
  test('loaded at open; a changed file is loaded again; a broken one keeps the table in use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-asn-file-'));
    try {
      const path = join(dir, 'ip2asn.tsv');
      writeFileSync(path, '198.51.100.0\t198.51.100.255\t64496\tZZ\tONE\n');
      const lines: string[] = [];
      const logger = { info: (_o: object, m: string) => lines.push(m), warn: (_o: object, m: string) => lines.push(m), error: (_o: object, m: string) => lines.push(m) };
      const f = await openAsnFile(path, { checkIntervalS: 3600, logger });
      try {
        assert.equal(f.database.asnOf('198.51.100.7'), 64496);
        writeFileSync(path, '198.51.100.0\t198.51.100.255\t64500\tZZ\tMOVED\n203.0.113.0\t203.0.113.255\t64511\tZZ\tTWO\n');
        await f.check();
        assert.equal(f.database.asnOf('198.51.100.7'), 64500);
        assert.equal(f.database.asnOf('203.0.113.1'), 64511);
        writeFileSync(path, 'this is not a table at all\n');
        await f.check();
        assert.equal(f.database.asnOf('198.51.100.7'), 64500, 'a file without a usable range keeps the previous table');
        rmSync(path);
        await f.check();
        assert.equal(f.database.asnOf('203.0.113.1'), 64511, 'a missing file keeps the previous table');
        assert.deepEqual(
          lines.map((l) => l.replace(dir, 'DIR')),
          [
            'asn.table loaded: 1 ranges',
            'asn.table loaded: 2 ranges',
            'asn.table: line 1 skipped: expected 5 tab-separated columns, found 1',
            'asn.table not loaded: DIR/ip2asn.tsv: no usable ranges; keeping the previous table',
            'asn.table DIR/ip2asn.tsv cannot be read; AS lists match with the table loaded before, if any',
          ],
        );
      } finally {
        f.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
