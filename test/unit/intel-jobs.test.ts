// serve's intel wiring (src/cli/intel-jobs.ts) against a real SQLite store and
// an in-memory DNS zone: the SPF-walked whitelist lands in the store and rules
// can name it; correspondents are learned from authenticated decisions and
// from Postfix `status=sent` lines the log watcher reads, and the
// `correspondent` check vouches for them only when SPF does; the log watcher
// bans; stop() stops it all.

import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config/load.js';
import type { Verdict } from '../../src/core/types.js';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { Policy } from '../../src/policy/index.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createIntelJobs, type IntelJobs } from '../../src/cli/intel-jobs.js';
import { envelope } from '../helpers/check-context.js';

const zone = new Zone({
  'big.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24 -all' }],
  'partner.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/25 -all' }],
});

const RULES = `
policy:
  rules:
    - name: known-good
      if: { any: [list:spf-walked=listed, correspondent=match] }
      action: accept
`;

const silent = pino({ level: process.env.DEBUG_LOG ? 'debug' : 'silent' });

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const accepted = (stage: Verdict['stage'] = 'rcpt'): Verdict => ({ action: 'accept', headers: [], rule: 'authenticated', stage, evidence: [] });

let dir: string;
let store: Store;
let intel: IntelJobs | undefined;

function configWith(extra: string): Config {
  const file = join(dir, 'frontline.yaml');
  writeFileSync(file, `data_dir: ${JSON.stringify(join(dir, 'data'))}\n${extra}`);
  return loadConfig(file, {}, {});
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'frontline-intel-jobs-'));
  store = await openStore({ backend: 'sqlite', path: join(dir, 'state.db'), pollMs: 0 }, { purgeIntervalSeconds: 0 });
  intel = undefined;
});

afterEach(async () => {
  await intel?.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('createIntelJobs', () => {
  test('the SPF-walked whitelist fills the store list spf-walked, which rules name as list:spf-walked', async () => {
    const cfg = configWith(`intel:\n  spf_whitelist: { domains: [big.example] }\n${RULES}`);
    intel = createIntelJobs(cfg, { store, logger: silent });
    const resolver = new ZoneResolver(zone);
    const policy = Policy.fromConfig(cfg, { resolver, store, correspondents: intel.correspondents });
    assert.deepEqual(policy.skipped, []);
    await intel.start(resolver);
    await until('spf-walked filled', () => store.lookup.listKind('spf-walked'));
    const entries = await store.listShow('spf-walked');
    assert.deepEqual(entries.map((e) => [e.entry, e.source]), [['198.51.100.0/24', 'spf:big.example']]);
    assert.ok(entries[0].expiresAt! > Date.now() + 86400_000, 'expires after two intervals');

    const verdict = (clientIp: string) => policy.transaction({ seesMessage: false }).evaluate('rcpt', envelope({ clientIp, from: 'x@elsewhere.example', rcpts: ['u@ours.example'] }));
    assert.equal((await verdict('198.51.100.7')).rule, 'known-good');
    assert.notEqual((await verdict('203.0.113.9')).rule, 'known-good');
  });

  test('correspondents learned from authenticated decisions are trusted only when SPF vouches for the sender', async () => {
    const cfg = configWith(`intel:\n  spf_whitelist: { enabled: false }\n  correspondents: { ignore_domains: [ours.example] }\n${RULES}`);
    intel = createIntelJobs(cfg, { store, logger: silent });
    const resolver = new ZoneResolver(zone);
    const policy = Policy.fromConfig(cfg, { resolver, store, correspondents: intel.correspondents });
    await intel.start(resolver);
    const c = intel.correspondents!;

    const outbound = (rcpt: string, sessionId: string) => envelope({ clientIp: '10.0.0.5', saslUser: 'joe', from: 'joe@ours.example', rcpts: [rcpt], sessionId });
    intel.onDecision(accepted(), outbound('bob@partner.example', 's1'));
    intel.onDecision(accepted(), outbound('anna@ours.example', 's1'));
    // Refused and unauthenticated requests teach nothing.
    intel.onDecision({ ...accepted(), action: 'defer', code: 450 }, outbound('eve@refused.example', 's2'));
    intel.onDecision(accepted(), envelope({ clientIp: '203.0.113.1', from: 'x@spam.example', rcpts: ['u@stranger.example'] }));
    await until('partner learned', () => c.store.get('partner.example', Date.now()));
    assert.equal(await c.store.get('ours.example', Date.now()), undefined);
    assert.equal(await c.store.get('refused.example', Date.now()), undefined);
    assert.equal(await c.store.get('stranger.example', Date.now()), undefined);

    const reply = (clientIp: string) => policy.transaction({ seesMessage: false }).evaluate('rcpt', envelope({ clientIp, from: 'bob@partner.example', rcpts: ['joe@ours.example'] }));
    const good = await reply('192.0.2.10');
    assert.equal(good.rule, 'known-good');
    assert.equal(good.evidence.find((e) => e.check === 'correspondent')?.result, 'match');
    // A forger outside partner.example's SPF cannot borrow the trust.
    const forged = await reply('192.0.2.200');
    assert.notEqual(forged.rule, 'known-good');
    assert.equal(forged.evidence.find((e) => e.check === 'correspondent')?.result, 'nomatch');
  });

  test('the log watcher bans into the store and feeds Postfix status=sent lines to the correspondents', async () => {
    const mailLog = join(dir, 'mail.log');
    writeFileSync(mailLog, '');
    const cfg = configWith(
      [
        'logwatch:',
        '  enabled: true',
        '  poll_interval_ms: 50',
        `  sources: [{ type: file, paths: [${JSON.stringify(mailLog)}] }]`,
        'intel:',
        '  spf_whitelist: { enabled: false }',
        '',
      ].join('\n'),
    );
    intel = createIntelJobs(cfg, { store, logger: silent });
    await intel.start(new ZoneResolver(zone));
    appendFileSync(
      mailLog,
      [
        'Nov 22 05:01:02 mx postfix/submission/smtpd[100]: 4BZ0Q22bWnz9vBp: client=laptop[192.0.2.50], sasl_method=PLAIN, sasl_username=joe',
        'Nov 22 05:01:03 mx postfix/smtp[101]: 4BZ0Q22bWnz9vBp: to=<Carol+news@GMail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK)',
        // Received without SASL: relayed for an outsider, teaches nothing.
        'Nov 22 05:01:04 mx postfix/smtpd[102]: 5CZ0Q22bWnz9vBq: client=unknown[203.0.113.9]',
        'Nov 22 05:01:05 mx postfix/smtp[103]: 5CZ0Q22bWnz9vBq: to=<mallory@evil.example>, relay=mx.evil.example[203.0.113.10]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)',
        ...Array.from({ length: 6 }, (_, i) => `Nov 22 05:02:0${i} mx sshd[200]: Failed password for root from 203.0.113.77 port ${4242 + i} ssh2`),
        '',
      ].join('\n'),
    );
    const ban = await until('ban made', () => store.getBan('203.0.113.77'));
    assert.equal(ban.category, 'brute-force');
    assert.equal(ban.source, `log:${mailLog}`);
    const c = intel.correspondents!;
    const carol = await until('carol learned', () => c.store.get('carol@gmail.com', Date.now()));
    assert.equal(carol.kind, 'address');
    assert.equal(await c.store.get('evil.example', Date.now()), undefined);
  });

  test('the correspondents walk does not empty its list while nothing is learned (after a restart)', async () => {
    const later = Date.now() + 3600_000;
    await store.listAdd('correspondents', '192.0.2.0/25', { source: 'spf:partner.example', expiresAt: later });
    const cfg = configWith('intel:\n  spf_whitelist: { enabled: false }\n');
    intel = createIntelJobs(cfg, { store, logger: silent });
    await intel.start(new ZoneResolver(zone));
    await intel.stop();
    intel = undefined;
    assert.deepEqual((await store.listShow('correspondents')).map((e) => e.entry), ['192.0.2.0/25']);
  });

  test('with correspondents off the correspondent check is unavailable and rules naming it are skipped', async () => {
    const cfg = configWith(`intel:\n  spf_whitelist: { enabled: false }\n  correspondents: { enabled: false }\n${RULES}`);
    intel = createIntelJobs(cfg, { store, logger: silent });
    assert.equal(intel.correspondents, undefined);
    const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zone), store, correspondents: intel.correspondents });
    assert.deepEqual(policy.skipped.map((s) => s.rule), ['known-good']);
    assert.match(policy.skipped[0].reason, /correspondents/);
    // Nothing to start but nothing breaks either.
    await intel.start(new ZoneResolver(zone));
  });
});
