// `frontline serve --workers 2`: the jobs that act for the whole host run in
// one worker (slot 0), not in each. A real serve with two workers tails one
// mail log, imports a list and pulls a peer's feed from a loopback HTTP
// server that counts its requests; the test reads the store and the log.
// Run in every worker, each line would be counted once per worker (a
// correspondent written to once would count twice, min_count halved), each
// ban asked for twice, and each source fetched twice per interval. When the
// slot 0 worker is killed, its replacement takes the jobs over.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import type { Store } from '../../src/store/index.js';
import { loadZoneYaml, startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { START_TIMEOUT_MS, startServe, type ServingCli } from '../helpers/cli.js';
import { children, workerSlot } from '../helpers/cluster.js';
import { eventually } from '../helpers/netns.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
/** The worker log is written in blocks at least once a second. */
const LOG_FLUSH_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const failures = (ip: string, n: number) => Array.from({ length: n }, (_, i) => `Dec  7 22:0${i}:00 mx sshd[200]: Failed password for root from ${ip} port ${4000 + i} ssh2`);
/** An authenticated submission delivered to carol@gmail.com: teaches the correspondent once. */
const sentToCarol = (id: string) => [
  `Dec  7 22:10:00 mx postfix/submission/smtpd[100]: ${id}: client=laptop[192.0.2.50], sasl_method=PLAIN, sasl_username=joe`,
  `Dec  7 22:10:01 mx postfix/smtp[101]: ${id}: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 OK)`,
];

describe('frontline serve --workers 2: host-wide jobs', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'frontline-host-jobs-'));
  const mailLog = join(dir, 'mail.log');
  const logFile = join(dir, 'frontline.log');
  const config = join(dir, 'frontline.yaml');
  const requests = new Map<string, number>();
  const peer = http.createServer((req, res) => {
    requests.set(req.url ?? '', (requests.get(req.url ?? '') ?? 0) + 1);
    if (req.url === '/drop.txt') res.end('198.51.100.0/24\n');
    else res.writeHead(404).end();
  });
  const asked = (path: string) => requests.get(path) ?? 0;
  const FEED = '/feed/v1/bans.json';
  let dns: FixtureDns;
  let serve: ServingCli;
  let store: Store;

  const logged = (): Array<{ pid: number; msg: string; cidr?: string }> =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { pid: number; msg: string; cidr?: string })
      : [];
  /** The pids of the workers that asked the store to ban `ip` (the log watcher's ban lines). */
  const banLines = (ip: string): number[] => logged().filter((l) => l.msg === 'logwatch ban' && l.cidr === `${ip}/32`).map((l) => l.pid);
  const leader = (): number | undefined => children(serve.child.pid!).find((p) => workerSlot(p) === '0');
  const carolCount = async () => (await store.correspondentGet('carol@gmail.com', Date.now()))?.count ?? 0;

  before(async () => {
    dns = await startFixtureDns(loadZoneYaml(WORLD));
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    const port = (peer.address() as AddressInfo).port;
    writeFileSync(mailLog, '');
    writeFileSync(
      config,
      [
        `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
        `log: { file: ${JSON.stringify(logFile)} }`,
        'logwatch:',
        '  enabled: true',
        '  poll_interval_ms: 50',
        `  sources: [{ type: file, paths: [${JSON.stringify(mailLog)}] }]`,
        'intel:',
        '  spf_whitelist: { enabled: false }',
        `  imports: [{ name: imported, url: "http://127.0.0.1:${port}/drop.txt", interval_s: 3600 }]`,
        'enforce:',
        '  feed:',
        `    pull: [{ name: peer, url: "http://127.0.0.1:${port}", interval_s: 3600 }]`,
        '',
      ].join('\n'),
    );
    serve = await startServe(['--config', config, '--workers', '2', '--policy-listen', '127.0.0.1:0', '--dns', dns.server], { timeoutMs: 2 * START_TIMEOUT_MS });
    store = await openConfiguredStore(loadConfig(config));
  });
  after(async () => {
    await store?.close();
    await serve?.stop();
    await new Promise((r) => peer.close(r));
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one worker tails the log, imports, pulls: one count per line, one ban request, one fetch', async () => {
    appendFileSync(mailLog, [...sentToCarol('4BZ0Q22bWnz9vBp'), ...failures('203.0.113.77', 5), ...failures('203.0.113.78', 6), ''].join('\n'));
    await eventually('the ban of 203.0.113.78', async () => (await store.getBan('203.0.113.78')) !== undefined);
    await eventually('the list import and the feed pull', async () => asked('/drop.txt') > 0 && asked(FEED) > 0);
    // Time for a second reader of the same lines to have read them too, and for the log to be written.
    await sleep(LOG_FLUSH_MS);

    assert.equal(await store.getBan('203.0.113.77'), undefined, 'five failures are below ssh-bruteforce count 6');
    assert.equal(await carolCount(), 1, 'one status=sent line counts once');
    assert.equal(banLines('203.0.113.78').length, 1, 'the ban is asked for once');
    assert.equal(asked('/drop.txt'), 1, 'the list is fetched once');
    assert.equal(asked(FEED), 1, "the peer's feed is pulled once");
    assert.equal(await store.lookup.listKind('imported'), 'ip');
    assert.deepEqual(children(serve.child.pid!).map(workerSlot).sort(), ['0', '1']);
    assert.deepEqual(banLines('203.0.113.78'), [leader()], 'by the slot 0 worker');
  });

  test('the slot 0 worker killed: its replacement takes the jobs over, the other worker still does not run them', async () => {
    const old = leader()!;
    const other = children(serve.child.pid!).find((p) => p !== old)!;
    process.kill(old, 'SIGKILL');
    await eventually('a replacement in slot 0', async () => {
      const now = leader();
      return now !== undefined && now !== old;
    }, START_TIMEOUT_MS);
    const replacement = leader()!;
    // Started again at once: the replacement's schedule runs the import and the pull when it starts.
    await eventually("the replacement's list import and feed pull", async () => asked('/drop.txt') === 2 && asked(FEED) === 2, START_TIMEOUT_MS);
    await eventually('the replacement to be ready', async () => logged().some((l) => l.pid === replacement && l.msg === 'frontline ready'), START_TIMEOUT_MS);

    // It goes on from the offsets the killed worker saved: new lines only.
    appendFileSync(mailLog, [...sentToCarol('5CZ0Q22bWnz9vBq'), ...failures('203.0.113.79', 6), ''].join('\n'));
    await eventually('the ban of 203.0.113.79', async () => (await store.getBan('203.0.113.79')) !== undefined);
    await sleep(LOG_FLUSH_MS);

    assert.deepEqual(banLines('203.0.113.79'), [replacement]);
    assert.deepEqual(banLines('203.0.113.78'), [old], 'the old lines are not read again');
    assert.equal(await carolCount(), 2);
    assert.equal(asked('/drop.txt'), 2);
    assert.equal(asked(FEED), 2);
    assert.ok(children(serve.child.pid!).includes(other), 'the other worker lived on');
    assert.equal(workerSlot(other), '1');
  });
});
