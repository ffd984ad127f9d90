// The store commands: frontline ban|list|grey|log, in process against a
// temp SQLite store, and as child processes next to a running
// `frontline serve` on the same data directory (a ban from the command
// line is enforced by the server; its decisions show in `frontline log`).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { banAdd, banDel, banList, banShow } from '../../src/cli/ban.js';
import { listAdd, listDel, listShow } from '../../src/cli/list.js';
import { listImportAccept } from '../../src/cli/list-import.js';
import { greyDel, greyList } from '../../src/cli/grey.js';
import { log, logQuery } from '../../src/cli/log.js';
import { parseDuration, parseSince, humanDuration } from '../../src/cli/duration.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { loadConfig } from '../../src/config/load.js';
import { captureIo, runCli, startServe } from '../helpers/cli.js';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;

const io = captureIo;

let dir: string;
let config: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-cli-store-'));
  config = join(dir, 'frontline.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\nmy_networks: [127.0.0.0/8, 10.9.0.0/16]\nstore:\n  never_ban: [192.0.2.128/25]\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('durations', () => {
  test('parse and print', () => {
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration('2h'), 7200);
    assert.equal(parseDuration('1h30m'), 5400);
    assert.equal(parseDuration('3600'), 3600);
    assert.equal(parseDuration('1w'), 604800);
    assert.throws(() => parseDuration('soon'), /expected a duration like 90s/);
    assert.throws(() => parseDuration('0'), /expected a duration/);
    assert.equal(parseSince('2h', 10_000_000), 10_000_000 - 7_200_000);
    assert.equal(parseSince('2024-05-01T00:00:00Z', 0), Date.parse('2024-05-01T00:00:00Z'));
    assert.equal(humanDuration(93784), '1d 2h');
    assert.equal(humanDuration(45), '45s');
  });
});

describe('frontline ban', () => {
  test('add, show, list, del — text and JSON', async () => {
    let o = io();
    assert.equal(await banAdd('192.0.2.7', { config, reason: 'dictionary attack', category: 'brute-force', duration: '2h' }, o), 0);
    assert.match(o.out(), /^192\.0\.2\.7\/32 banned until \S+ \(2h left\), brute-force, offence 1, by cli:\S+: dictionary attack\n$/);

    o = io();
    assert.equal(await banAdd('198.51.100.0/24', { config, json: true }, o), 0);
    const added = JSON.parse(o.out());
    assert.equal(added.ban.cidr, '198.51.100.0/24');
    assert.equal(added.ban.category, 'manual');
    assert.equal(added.created, true);

    o = io();
    assert.equal(await banShow('198.51.100.77', { config, json: true }, o), 0, 'an IP finds the ban covering it');
    assert.equal(JSON.parse(o.out()).cidr, '198.51.100.0/24');

    o = io();
    assert.equal(await banList({ config, category: 'brute-force', json: true }, o), 0);
    assert.deepEqual(
      JSON.parse(o.out()).map((b: { cidr: string }) => b.cidr),
      ['192.0.2.7/32'],
    );
    o = io();
    await banList({ config }, o);
    assert.match(o.out(), /^cidr +category +expires +left +offence +source +reason\n/);
    assert.equal(o.out().trim().split('\n').length, 3);

    o = io();
    assert.equal(await banDel('192.0.2.7/32', { config }, o), 0);
    assert.equal(o.out(), '192.0.2.7/32: ban lifted\n');
    o = io();
    assert.equal(await banDel('192.0.2.7/32', { config }, o), 1);
    assert.match(o.err(), /no such ban/);
    o = io();
    assert.equal(await banShow('192.0.2.7', { config }, o), 1);
    assert.match(o.err(), /192\.0\.2\.7 is not banned/);
  });

  test('never-ban addresses are refused: loopback, my_networks, store.never_ban, the allow list', async () => {
    for (const cidr of ['127.0.0.1', '10.9.3.4', '192.0.2.200', '10.9.0.0/16']) {
      const o = io();
      assert.equal(await banAdd(cidr, { config }, o), 1, cidr);
      assert.match(o.err(), /not banned: overlaps never-ban/);
    }
    await listAdd('allow', '203.0.113.9', { config }, io());
    const o = io();
    assert.equal(await banAdd('203.0.113.9', { config }, o), 1);
    assert.match(o.err(), /never-ban list "allow"/);
  });

  test('bad input: one line on stderr, exit 1', async () => {
    let o = io();
    assert.equal(await banAdd('not-an-ip', { config }, o), 1);
    assert.match(o.err(), /^frontline: /);
    o = io();
    assert.equal(await banAdd('192.0.2.8', { config, duration: 'forever' }, o), 1);
    assert.match(o.err(), /--duration: expected a duration/);
  });
});

describe('frontline list', () => {
  test('import accept: applies a configured source now, past the shrink/grow guard; unknown names are named', async () => {
    const listFile = join(dir, 'block.txt');
    const importConfig = join(dir, 'imports.yaml');
    writeFileSync(
      importConfig,
      `data_dir: ${join(dir, 'data-imports')}\nintel:\n  imports:\n    - { name: local-block, file: ${listFile}, interval_s: 600 }\n`,
    );
    writeFileSync(listFile, Array.from({ length: 12 }, (_, i) => `198.51.100.${i}`).join('\n'));
    let o = io();
    assert.equal(await listImportAccept('local-block', { config: importConfig }, o), 0, o.err());
    assert.match(o.out(), /^list import local-block: 12 entries applied \(the last good copy had 0\)\n$/);
    // The source shrinks to 2 entries: a scheduled run would hold it; accept applies it.
    writeFileSync(listFile, '198.51.100.1\n198.51.100.2\n');
    o = io();
    assert.equal(await listImportAccept('local-block', { config: importConfig }, o), 0, o.err());
    assert.match(o.out(), /2 entries applied \(the last good copy had 12\)/);
    o = io();
    await listShow('local-block', { config: importConfig, json: true }, o);
    assert.deepEqual(
      (JSON.parse(o.out()) as Array<{ entry: string; source: string }>).map((e) => [e.entry, e.source]),
      [
        ['198.51.100.1/32', 'import:local-block'],
        ['198.51.100.2/32', 'import:local-block'],
      ],
    );
    o = io();
    assert.equal(await listImportAccept('nope', { config: importConfig }, o), 1);
    assert.match(o.err(), /no list import named "nope" in intel\.imports \(configured: local-block\)/);
  });

  test('add with expiry, show, show all, del', async () => {
    let o = io();
    assert.equal(await listAdd('deny', 'Spammy.Example.', { config, expires: '7d' }, o), 0);
    assert.match(o.out(), /^added spammy\.example to domain list deny until \S+Z\n$/);
    await listAdd('spamtraps', 'Trap@Dest.Example', { config, kind: 'address' }, io());
    o = io();
    await listShow('deny', { config, json: true }, o);
    const entries = JSON.parse(o.out());
    assert.equal(entries.length, 1);
    assert.equal(entries[0].entry, 'spammy.example');
    assert.ok(entries[0].expiresAt > Date.now() + 6 * 86400_000);
    o = io();
    await listShow(undefined, { config }, o);
    assert.match(o.out(), /^list +kind +entries\n/);
    assert.match(o.out(), /spamtraps +address +1/);
    o = io();
    assert.equal(await listDel('deny', 'spammy.example', { config }, o), 0);
    o = io();
    assert.equal(await listDel('deny', 'spammy.example', { config }, o), 1);
    o = io();
    assert.equal(await listAdd('spamtraps', '192.0.2.1', { config }, o), 1, 'an IP in an address list');
    assert.match(o.err(), /^frontline: /);
    o = io();
    assert.equal(await listAdd('x', 'y.example', { config, kind: 'colour' }, o), 1);
    assert.match(o.err(), /--kind: expected one of ip, domain, asn, address/);
  });
});

describe('frontline grey and log', () => {
  test('grey list shows triplets; grey del by key and by client', async () => {
    const cfg = loadConfig(config);
    const store = await openConfiguredStore(cfg);
    const now = Date.now();
    const entry = { firstSeen: now, lastSeen: now, attempts: 1, passes: 0, clientIp: '192.0.2.30', expiresAt: now + 86400_000 };
    await store.greyPut('net:192.0.2.0/24|a@b.example|c@d.example', entry);
    await store.greyPut('spf:b.example|x@b.example|c@d.example', { ...entry, clientIp: '198.51.100.30', passedAt: now, passes: 1 });
    await store.close();

    let o = io();
    await greyList({ config }, o);
    assert.match(o.out(), /^first seen +last seen +state +tries +passes +last client +key\n/);
    assert.match(o.out(), /waiting .*net:192\.0\.2\.0\/24\|a@b\.example\|c@d\.example/);
    assert.match(o.out(), /passed \S+ .*spf:b\.example\|x@b\.example\|c@d\.example/);
    o = io();
    assert.equal(await greyDel('spf:b.example|x@b.example|c@d.example', { config }, o), 0);
    o = io();
    assert.equal(await greyDel('192.0.2.0/24', { config }, o), 0);
    assert.equal(o.out(), 'deleted 1 greylist entry\n');
    o = io();
    await greyList({ config, json: true }, o);
    assert.deepEqual(JSON.parse(o.out()), []);
  });

  test('log: query flags and output', async () => {
    assert.deepEqual(logQuery({ ip: '::ffff:192.0.2.1', domain: 'Example.COM.', since: '1h', rule: 'banned', limit: '5' }, 3_600_000), {
      ip: '192.0.2.1',
      domain: 'example.com',
      since: 0,
      rule: 'banned',
      limit: 5,
    });
    assert.throws(() => logQuery({ ip: 'x' }, 0), /--ip/);
    const store = await openConfiguredStore(loadConfig(config));
    await store.logEvent({ ts: Date.now() - 1000, clientIp: '192.0.2.5', from: 'a@b.example', rcpts: ['u@dest.example'], stage: 'rcpt', action: 'reject', code: 554, rule: 'banned', text: 'rejected', evidence: [] });
    await store.logEvent({ ts: Date.now(), clientIp: '192.0.2.6', from: '', rcpts: ['u@dest.example'], stage: 'rcpt', action: 'continue', rule: 'default', evidence: [] });
    await store.close();
    let o = io();
    await log({ config, rule: 'banned' }, o);
    assert.match(o.out(), /^time +client +stage +action +rule +score +would have +from +rcpt +text\n\S+ +192\.0\.2\.5 +rcpt +reject 554 +banned +a@b\.example +u@dest\.example +rejected\n$/);
    o = io();
    await log({ config, domain: 'dest.example', json: true }, o);
    assert.deepEqual(
      JSON.parse(o.out()).map((e: { clientIp: string }) => e.clientIp),
      ['192.0.2.6', '192.0.2.5'],
    );
    o = io();
    await log({ config, since: '2099-01-01' }, o);
    assert.equal(o.out(), 'no decisions match\n');
  });
});

describe('next to a running server', () => {
  test('a ban from the command line is enforced by frontline serve within a second; its decisions are in frontline log', { timeout: 180_000 }, async (t) => {
    const dns = await startFixtureDns(loadZoneYaml(WORLD));
    t.after(() => dns.close());
    const dataDir = join(dir, 'serve-data');
    const serve = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', dataDir]);
    t.after(() => serve.stop());
    assert.match(serve.stderr(), /store sqlite/);
    const client = await PolicyClient.connect({ host: '127.0.0.1', port: serve.port });
    t.after(() => client.close());
    const ask = (instance: string) =>
      client.ask(
        rcptRequest({ client_address: '198.51.100.10', reverse_client_name: 'mta10.outbound.bigprovider-mail.test', helo_name: 'x.bigprovider.test', sender: 'alice@bigprovider.test', instance }),
      );
    assert.match(await ask('m1'), /^PREPEND Authentication-Results:/);

    const added = await runCli(['ban', 'add', '198.51.100.10', '--reason', 'seen in a botnet', '--duration', '1h', '--config', config, '--data-dir', dataDir]);
    assert.equal(added.code, 0, added.stderr);
    const t0 = Date.now();
    let answer = '';
    for (let i = 0; Date.now() - t0 < 3000; i++) {
      answer = await ask(`m2-${i}`);
      if (answer.startsWith('554')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const took = Date.now() - t0;
    assert.match(answer, /^554 5\.7\.1 rejected: 198\.51\.100\.10 is banned \(manual: seen in a botnet\)/);
    assert.ok(took < 1000, `enforced after ${took} ms`);

    // The decision log has both decisions (written in batches: give it a moment).
    let events: Array<{ rule: string; action: string }> = [];
    for (let i = 0; i < 20 && events.length < 2; i++) {
      const r = await runCli(['log', '--ip', '198.51.100.10', '--json', '--config', config, '--data-dir', dataDir]);
      assert.equal(r.code, 0, r.stderr);
      events = JSON.parse(r.stdout);
      if (events.some((e) => e.rule === 'banned')) break;
      await new Promise((r2) => setTimeout(r2, 200));
    }
    assert.equal(events[0].rule, 'banned');
    assert.equal(events[0].action, 'reject');
    assert.ok(events.some((e) => e.rule === 'default'));

    const del = await runCli(['ban', 'del', '198.51.100.10/32', '--config', config, '--data-dir', dataDir]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await runCli(['ban', 'show', '198.51.100.10', '--config', config, '--data-dir', dataDir])).code, 1);
  });

  test('AS lists: refused without asn.table; with one, serve refuses a client inside the AS and follows a changed table (regression: they never matched)', { timeout: 180_000 }, async (t) => {
    const dns = await startFixtureDns(loadZoneYaml(WORLD));
    t.after(() => dns.close());
    const dataDir = join(dir, 'asn-data');
    const table = join(dir, 'ip2asn.tsv');
    writeFileSync(table, '198.51.100.0\t198.51.100.255\t64496\tZZ\tEXAMPLE-BAD-AS\n203.0.113.0\t203.0.113.255\t64511\tZZ\tEXAMPLE-OK-AS\n');
    const rules = 'policy:\n  rules:\n    - { name: bad-asn, if: "list:badasn=listed", action: reject, text: "{ip} is in a refused network" }\n';
    const noTable = join(dir, 'asn-none.yaml');
    writeFileSync(noTable, `data_dir: ${dataDir}\n${rules}`);
    const refused = await runCli(['list', 'add', 'badasn', 'AS64496', '--config', noTable]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /AS lists match only with an IP-to-AS table: set asn\.table/);

    const withTable = join(dir, 'asn.yaml');
    writeFileSync(withTable, `data_dir: ${dataDir}\nasn: { table: ${table}, check_interval_s: 1 }\n${rules}`);
    const added = await runCli(['list', 'add', 'badasn', 'AS64496', '--config', withTable]);
    assert.equal(added.code, 0, added.stderr);
    const serve = await startServe(['--config', withTable, '--dns', dns.server, '--policy-listen', '127.0.0.1:0']);
    t.after(() => serve.stop());
    const client = await PolicyClient.connect({ host: '127.0.0.1', port: serve.port });
    t.after(() => client.close());
    const ask = (ip: string, instance: string) => client.ask(rcptRequest({ client_address: ip, helo_name: 'mail.example.test', sender: 'a@example.test', instance }));
    assert.match(await ask('198.51.100.10', 'a1'), /^554 .*198\.51\.100\.10 is in a refused network/);
    assert.doesNotMatch(await ask('203.0.113.10', 'a2'), /^554/);

    // A new table moves the /24 to another AS: no longer refused, without a restart.
    writeFileSync(table, '198.51.100.0\t198.51.100.255\t64500\tZZ\tEXAMPLE-MOVED\n');
    let answer = '';
    for (let i = 0; i < 60; i++) {
      answer = await ask('198.51.100.10', `a3-${i}`);
      if (!answer.startsWith('554')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.doesNotMatch(answer, /^554/);
    // The reload is logged (the log is written asynchronously: give it a moment).
    for (let i = 0; i < 30 && !/asn\.table loaded: 1 ranges/.test(serve.stdout()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(serve.stdout(), /asn\.table loaded: 1 ranges/);
  });
});
