// Learning correspondents: free-mail per address, learning from policy
// requests and from real Postfix log lines (and not from forged ones), the
// `correspondent` check that a forger cannot pass, and the walk of the
// learned domains into the `correspondents` list.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Evidence, EvidenceResult } from '../../src/core/types.js';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import { FreeMailDomains } from '../../src/intel/correspondents/free-mail.js';
import { CorrespondentLearner, correspondentKey } from '../../src/intel/correspondents/learn.js';
import { MemoryCorrespondentStore, StoreCorrespondents } from '../../src/intel/correspondents/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostfixSentLog } from '../../src/intel/correspondents/postfix-log.js';
import { checkCorrespondent } from '../../src/intel/correspondents/check.js';
import { Correspondents } from '../../src/intel/correspondents/index.js';
import { MemoryListSink } from '../../src/intel/list-sink.js';
import { envelope, makeContext } from '../helpers/check-context.js';

const DAY = 86400_000;
const T0 = Date.UTC(2025, 0, 1);
const free = new FreeMailDomains();

describe('free-mail domains', () => {
  test('exact names and their subdomains, and label.* under any public suffix', () => {
    for (const d of ['gmail.com', 'GMail.com.', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'mail.yahoo.fr', 'hotmail.de', 'outlook.com', 'gmx.net', 'web.de', 'mail.ru', 'yandex.ru', 'aol.com', 'icloud.com', 'proton.me']) {
      assert.ok(free.has(d), d);
    }
    for (const d of ['example.com', 'yahoo.evil.example', 'evilyahoo.com', 'notgmail.com', 'gmail.com.evil.example', '']) {
      assert.ok(!free.has(d), d);
    }
  });

  test('a correspondent is an address in free-mail, a domain elsewhere', () => {
    assert.deepEqual(correspondentKey('Bob+News@GMail.com', free), { key: 'bob@gmail.com', kind: 'address', domain: 'gmail.com' });
    assert.deepEqual(correspondentKey('<alice@Example.COM.>', free), { key: 'example.com', kind: 'domain', domain: 'example.com' });
    for (const bad of ['', 'postmaster', '@example.com', 'a@b', 'user@[192.0.2.1]', 'x@exa mple.com']) {
      assert.equal(correspondentKey(bad, free), undefined, bad);
    }
  });
});

function learner(now: { t: number }, opts: { ignoreDomains?: string[]; ttlS?: number } = {}) {
  const store = new MemoryCorrespondentStore();
  return { store, learner: new CorrespondentLearner({ store, clock: { now: () => now.t }, ...opts }) };
}

describe('learning from authenticated policy requests', () => {
  test('only SASL-authenticated clients teach; at rcpt the current recipient, once per transaction', async () => {
    const now = { t: T0 };
    const { store, learner: l } = learner(now);
    assert.deepEqual(await l.learnFromAuthenticated(envelope({ clientIp: '192.0.2.1', from: 'x@example.net', rcpts: ['a@partner.example'] }), 'rcpt'), []);

    const env = envelope({ clientIp: '192.0.2.1', saslUser: 'alice', sessionId: 'S1', from: 'alice@ours.example', rcpts: ['Bob@Partner.example'] });
    await l.learnFromAuthenticated(env, 'rcpt');
    await l.learnFromAuthenticated(env, 'rcpt'); // Postfix asking twice about one recipient
    env.rcpts.push('carol+x@gmail.com');
    await l.learnFromAuthenticated(env, 'rcpt');
    const all = await store.all(now.t);
    assert.deepEqual(
      all.map((c) => [c.key, c.kind, c.count]),
      [
        ['partner.example', 'domain', 1],
        ['carol@gmail.com', 'address', 1],
      ],
    );
    // Next transaction: counted again.
    await l.learnFromAuthenticated({ ...env, sessionId: 'S2', rcpts: ['dave@partner.example'] }, 'rcpt');
    assert.equal((await store.get('partner.example', now.t))!.count, 2);
  });

  test('without a stage every recipient is learned; our own domains never are', async () => {
    const now = { t: T0 };
    const { store, learner: l } = learner(now, { ignoreDomains: ['ours.example'] });
    await l.learnFromAuthenticated(envelope({ clientIp: '192.0.2.1', saslUser: 'alice', rcpts: ['a@one.example', 'b@two.example', 'c@ours.example', 'd@sub.ours.example'] }));
    assert.deepEqual((await store.all(now.t)).map((c) => c.key).sort(), ['one.example', 'two.example']);
  });

  test('correspondents expire after the ttl since the last message', async () => {
    const now = { t: T0 };
    const { store, learner: l } = learner(now, { ttlS: 30 * 86400 });
    await l.learnRecipient('a@one.example');
    now.t = T0 + 20 * DAY;
    await l.learnRecipient('b@one.example');
    now.t = T0 + 45 * DAY;
    assert.equal((await store.get('one.example', now.t))!.count, 2);
    now.t = T0 + 50 * DAY + 1;
    assert.equal(await store.get('one.example', now.t), undefined);
    assert.equal(await store.prune(now.t), 1);
    // Learned again from scratch.
    assert.equal((await l.learnRecipient('a@one.example'))!.count, 1);
  });

  test('the memory store forgets the least recently seen past its size', async () => {
    const store = new MemoryCorrespondentStore(2);
    await store.record('a.example', 'domain', 1, 100);
    await store.record('b.example', 'domain', 2, 100);
    await store.record('a.example', 'domain', 3, 100);
    await store.record('c.example', 'domain', 4, 100);
    assert.deepEqual((await store.all(5)).map((c) => c.key), ['a.example', 'c.example']);
  });
});

const SASL = 'Jan 12 10:00:01 mx1 postfix/submission/smtpd[2001]: 4BZ0Q22bWnz9vBp: client=laptop.home.example[198.51.100.23], sasl_method=PLAIN, sasl_username=alice@ours.example';
const SENT = 'Jan 12 10:00:03 mx1 postfix/smtp[2002]: 4BZ0Q22bWnz9vBp: to=<Bob@Partner.example>, relay=mx.partner.example[192.0.2.5]:25, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 7D1E2)';

describe('Postfix status=sent lines', () => {
  test('a delivery of authenticated mail gives its recipient', () => {
    const log = new PostfixSentLog();
    assert.equal(log.line(SASL), undefined);
    assert.deepEqual(log.line(SENT), { queueId: '4BZ0Q22bWnz9vBp', address: 'Bob@Partner.example', relay: 'mx.partner.example[192.0.2.5]:25' });
    // RFC 3339 header, orig_to and conn_use, short queue id.
    log.line('2025-01-12T10:00:01.123456+01:00 mx1 postfix/smtpd[77]: 3F2A81234: client=unknown[203.0.113.9], sasl_method=LOGIN, sasl_username=bob');
    assert.equal(
      log.line('2025-01-12T10:00:02.5+01:00 mx1 postfix-out/smtp[78]: 3F2A81234: to=<x@y.example>, orig_to=<alias@ours.example>, relay=mx.y.example[192.0.2.6]:25, conn_use=2, delay=0.3, delays=0/0/0.1/0.2, dsn=2.0.0, status=sent (250 ok)')?.address,
      'x@y.example',
    );
  });

  test('mail not received from an authenticated client teaches nothing (unless so configured)', () => {
    const plain = 'Jan 12 10:00:01 mx1 postfix/smtpd[2001]: 5C3D1: client=mail.outsider.example[192.0.2.77]';
    const sent = 'Jan 12 10:00:03 mx1 postfix/smtp[2002]: 5C3D1: to=<fwd@gmail.com>, relay=gmail-smtp-in.l.google.com[192.0.2.8]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)';
    const strict = new PostfixSentLog();
    strict.line(plain);
    assert.equal(strict.line(sent), undefined);
    const loose = new PostfixSentLog({ requireAuth: false });
    assert.equal(loose.line(sent)?.address, 'fwd@gmail.com');
  });

  test('local submissions count only with includeLocal', () => {
    const pickup = 'Jan 12 10:00:01 mx1 postfix/pickup[300]: 6D4E2: uid=1000 from=<alice>';
    const sent = 'Jan 12 10:00:02 mx1 postfix/smtp[301]: 6D4E2: to=<z@z.example>, relay=mx.z.example[192.0.2.9]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)';
    const off = new PostfixSentLog();
    off.line(pickup);
    assert.equal(off.line(sent), undefined);
    const on = new PostfixSentLog({ includeLocal: true });
    on.line(pickup);
    assert.equal(on.line(sent)?.address, 'z@z.example');
  });

  test('not a delivery to another host, or not delivered: nothing', () => {
    const log = new PostfixSentLog({ requireAuth: false });
    const lines = [
      'Jan 12 10:00:03 mx1 postfix/smtp[2002]: 4BZ0Q22bWnz9vBp: to=<b@p.example>, relay=mx.p.example[192.0.2.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.1, status=deferred (host said: 450 greylisted)',
      'Jan 12 10:00:03 mx1 postfix/smtp[2002]: 4BZ0Q22bWnz9vBp: to=<b@p.example>, relay=mx.p.example[192.0.2.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host said: 550 no such user)',
      'Jan 12 10:00:03 mx1 postfix/lmtp[2003]: 4BZ0Q22bWnz9vBp: to=<me@ours.example>, relay=mail.ours.example[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)',
      'Jan 12 10:00:03 mx1 postfix/local[2004]: 4BZ0Q22bWnz9vBp: to=<me@ours.example>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)',
      'Jan 12 10:00:03 mx1 dovecot[2005]: 4BZ0Q22bWnz9vBp: to=<b@p.example>, relay=x[192.0.2.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)',
    ];
    for (const l of lines) assert.equal(log.line(l), undefined, l);
  });

  test('text a remote party controls cannot forge a delivery or an authentication', () => {
    const log = new PostfixSentLog();
    const forged = [
      // A HELO name carrying a whole fake line.
      'Jan 12 10:00:01 mx1 postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[203.0.113.66]: 554 5.7.1 <x@ours.example>: Relay access denied; from=<a@evil.example> to=<x@ours.example> proto=ESMTP helo=<Jan 12 10:00:01 mx1 postfix/smtpd[1]: AAAAA1: client=a[1.2.3.4], sasl_method=PLAIN, sasl_username=x>',
      'Jan 12 10:00:02 mx1 postfix/smtpd[9]: warning: hostname postfix/smtp[1]: AAAAA1: to=<spam@evil.example>, relay=a[1.2.3.4]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (x) does not resolve',
      // A remote reply text that repeats the pattern inside a real smtp line of an unauthenticated message.
      'Jan 12 10:00:03 mx1 postfix/smtp[2002]: BBBBB2: host mx.evil.example said: AAAAA1: to=<spam@evil.example>, relay=a[1.2.3.4]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (',
      'postfix/smtp[1]: AAAAA1: to=<spam@evil.example>, relay=a[1.2.3.4]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)',
    ];
    for (const l of forged) assert.equal(log.line(l), undefined, l);
    assert.equal(log.tracked, 0);
    assert.equal(
      log.line('Jan 12 10:00:09 mx1 postfix/smtp[1]: AAAAA1: to=<spam@evil.example>, relay=a[192.0.2.4]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)'),
      undefined,
    );
  });

  test('journal messages go through message(program, text); removed queue ids are forgotten', () => {
    const log = new PostfixSentLog();
    log.message('postfix/submission/smtpd', '7E5F3A: client=x[198.51.100.2], sasl_method=PLAIN, sasl_username=alice');
    assert.equal(log.tracked, 1);
    assert.equal(log.message('postfix/smtp', '7E5F3A: to=<q@q.example>, relay=mx.q.example[192.0.2.1]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)')?.address, 'q@q.example');
    log.message('postfix/qmgr', '7E5F3A: removed');
    assert.equal(log.tracked, 0);
  });
});

function ev(check: string, result: EvidenceResult): Evidence {
  return { check, result, detail: '', ms: 0 };
}

describe('the correspondent check', () => {
  const now = { t: T0 };
  const store = new MemoryCorrespondentStore();
  const l = new CorrespondentLearner({ store, clock: { now: () => now.t } });
  const ready = Promise.all([l.learnRecipient('bob@partner.example'), l.learnRecipient('carol@gmail.com')]);
  const run = async (from: string | undefined, evidence: Record<string, EvidenceResult>, minCount?: number) => {
    await ready;
    const ctx = makeContext(new ZoneResolver(new Zone()), {
      clock: { now: () => now.t },
      evidence: Object.fromEntries(Object.entries(evidence).map(([k, v]) => [k, ev(k, v)])),
    });
    const e = await checkCorrespondent(envelope({ clientIp: '203.0.113.66', from, rcpts: ['me@ours.example'] }), ctx, { store, minCount });
    return { e, ran: ctx };
  };
  const UNAUTH = { spf: 'softfail', fcrdns_domain: 'nomatch', dkim_domain: 'none' } as const;

  test('a forger using a correspondent domain without SPF, FCrDNS or DKIM gets nomatch', async () => {
    const { e } = await run('ceo@partner.example', UNAUTH);
    assert.equal(e.check, 'correspondent');
    assert.equal(e.result, 'nomatch');
    assert.equal(e.data?.reason, 'unauthenticated');
    assert.match(e.detail, /neither SPF, FCrDNS nor DKIM authenticates partner\.example \(spf=softfail, fcrdns_domain=nomatch, dkim_domain=none\)/);
  });

  test('SPF pass, FCrDNS match or DKIM match authenticates', async () => {
    for (const [evidence, by] of [
      [{ spf: 'pass' }, 'spf'],
      [{ spf: 'fail', fcrdns_domain: 'match' }, 'fcrdns_domain'],
      [{ spf: 'none', fcrdns_domain: 'nomatch', dkim_domain: 'match' }, 'dkim_domain'],
    ] as const) {
      const { e } = await run('bob@partner.example', evidence);
      assert.equal(e.result, 'match', JSON.stringify(evidence));
      assert.equal(e.data?.authenticatedBy, by);
      assert.equal(e.data?.key, 'partner.example');
    }
  });

  test('evidence is asked lazily, cheapest first', async () => {
    await ready;
    const ctx = makeContext(new ZoneResolver(new Zone()), {
      clock: { now: () => now.t },
      env: envelope({ clientIp: '192.0.2.1', from: 'bob@partner.example', rcpts: [] }),
      checks: { spf: async () => ev('spf', 'pass'), fcrdns_domain: async () => ev('fcrdns_domain', 'match'), dkim_domain: async () => ev('dkim_domain', 'match') },
    });
    const e = await checkCorrespondent(envelope({ clientIp: '192.0.2.1', from: 'bob@partner.example', rcpts: [] }), ctx, { store });
    assert.equal(e.result, 'match');
    assert.deepEqual(ctx.ran, ['spf']);
  });

  test('free-mail: trust is per address, not per domain', async () => {
    assert.equal((await run('carol@gmail.com', { spf: 'pass' })).e.result, 'match');
    assert.equal((await run('Carol+tag@GMail.com', { spf: 'pass' })).e.result, 'match');
    const stranger = (await run('mallory@gmail.com', { spf: 'pass', fcrdns_domain: 'match', dkim_domain: 'match' })).e;
    assert.equal(stranger.result, 'nomatch');
    assert.equal(stranger.data?.reason, 'unknown');
    assert.match(stranger.detail, /address mallory@gmail\.com is not a known correspondent/);
  });

  test('unknown senders, null sender, no sender, too few messages', async () => {
    assert.equal((await run('x@stranger.example', { spf: 'pass' })).e.data?.reason, 'unknown');
    assert.equal((await run('', { spf: 'pass' })).e.data?.reason, 'null-sender');
    assert.equal((await run(undefined, { spf: 'pass' })).e.data?.reason, 'no-sender');
    const few = (await run('bob@partner.example', { spf: 'pass' }, 3)).e;
    assert.equal(few.result, 'nomatch');
    assert.equal(few.data?.reason, 'too-few');
  });

  test('a sibling of a learned domain counts (replies from mail.partner.example)', async () => {
    const { e } = await run('bob@mail.partner.example', { spf: 'pass' });
    assert.equal(e.result, 'match');
    assert.equal(e.data?.key, 'partner.example');
  });

  test('evidence that is not available is skipped, not a crash', async () => {
    const { e } = await run('bob@partner.example', { fcrdns_domain: 'match' });
    assert.equal(e.result, 'match');
    const { e: e2 } = await run('bob@partner.example', {});
    assert.equal(e2.result, 'nomatch');
    assert.match(e2.detail, /spf unavailable/);
  });
});

describe('Correspondents: learned domains walked into the correspondents list', () => {
  test('per-domain correspondents are walked; free-mail addresses are not', async () => {
    let now = T0;
    const sink = new MemoryListSink();
    const zone = new Zone({
      'partner.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 include:_spf.partner.example -all' }],
      '_spf.partner.example': [{ TXT: 'v=spf1 ip6:2001:db8:77::/48' }],
      'gmail.com': [{ TXT: 'v=spf1 ip4:203.0.113.0/24' }],
    });
    const c = new Correspondents({ clock: { now: () => now }, walk: { sink, resolver: new ZoneResolver(zone), intervalS: 86400 } });
    await c.learnFromLogLine(SASL);
    assert.equal((await c.learnFromLogLine(SENT))?.key, 'partner.example');
    await c.learnFromAuthenticated(envelope({ clientIp: '192.0.2.9', saslUser: 'alice', rcpts: ['carol@gmail.com'] }), 'rcpt');
    now += 1000;
    const run = await c.walkJob!.runOnce();
    assert.deepEqual(run.domains.map((d) => d.domain), ['partner.example']);
    assert.deepEqual(sink.lists.get('correspondents'), [
      { value: '192.0.2.0/24', source: 'spf:partner.example', expiresAt: now + 2 * DAY },
      { value: '2001:db8:77::/48', source: 'spf:partner.example', expiresAt: now + 2 * DAY },
    ]);
  });
});

describe('correspondents in the state store', () => {
  test('learned before a restart still vouch after it (regression: they lived in memory only)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-corr-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'frontline.db');
    const now = { t: T0 };
    const clock = { now: () => now.t };
    const open = () => SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { clock, purgeIntervalSeconds: 0 });

    const before = await open();
    const learning = new Correspondents({ clock, store: new StoreCorrespondents(before) });
    await learning.learnFromAuthenticated(envelope({ clientIp: '192.0.2.1', saslUser: 'alice', sessionId: 'S1', from: 'alice@ours.example', rcpts: ['bob@partner.example'] }), 'rcpt');
    await before.close();

    now.t += DAY;
    const after = await open();
    t.after(() => after.close());
    const restarted = new Correspondents({ clock, store: new StoreCorrespondents(after) });
    const ctx = makeContext(new ZoneResolver(new Zone()), {
      clock,
      evidence: { spf: { check: 'spf', result: 'pass' } as Evidence, fcrdns_domain: { check: 'fcrdns_domain', result: 'nomatch' } as Evidence, dkim_domain: { check: 'dkim_domain', result: 'none' } as Evidence },
    });
    const ev = await restarted.check(envelope({ clientIp: '198.51.100.9', from: 'bob@partner.example', rcpts: ['alice@ours.example'] }), ctx);
    assert.equal(ev.result, 'match', ev.detail);
    assert.deepEqual(await restarted.learner.domainsToWalk(), ['partner.example']);
  });

  test('the policy path notes without waiting: counted as records, once per recipient and session; a failed commit is reported', async () => {
    const now = { t: T0 };
    const clock = { now: () => now.t };
    const store = await SqliteStore.open({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock, purgeIntervalSeconds: 0 });
    const corr = new Correspondents({ clock, store: new StoreCorrespondents(store) });
    const failures: unknown[] = [];
    const onError = (e: unknown) => failures.push(e);
    for (let i = 0; i < 5; i++) {
      now.t = T0 + i;
      corr.noteFromAuthenticated(envelope({ clientIp: '192.0.2.1', saslUser: 'alice', sessionId: `S${i}`, from: 'alice@ours.example', rcpts: [`u${i}@partner.example`] }), 'rcpt', onError);
    }
    // Postfix asking twice about one recipient of one session counts once; unauthenticated clients teach nothing.
    corr.noteFromAuthenticated(envelope({ clientIp: '192.0.2.1', saslUser: 'alice', sessionId: 'S4', from: 'alice@ours.example', rcpts: ['u4@partner.example'] }), 'rcpt', onError);
    corr.noteFromAuthenticated(envelope({ clientIp: '198.51.100.9', sessionId: 'S9', from: 'x@else.example', rcpts: ['v@other.example'] }), 'rcpt', onError);
    // A record awaited after notes of its key sees them counted before it.
    const awaited = await corr.store.record('partner.example', 'domain', T0 + 5, T0 + 5 + DAY);
    assert.deepEqual([awaited.count, awaited.firstSeen, awaited.lastSeen], [6, T0, T0 + 5]);
    assert.deepEqual(
      (await corr.store.all(T0 + 5)).map((c) => [c.key, c.count]),
      [['partner.example', 6]],
    );
    corr.noteFromAuthenticated(envelope({ clientIp: '192.0.2.1', saslUser: 'alice', sessionId: 'S7', from: 'alice@ours.example', rcpts: ['bob@gmail.com'] }), 'rcpt', onError);
    await store.close();
    assert.equal(failures.length, 0);
    corr.noteFromAuthenticated(envelope({ clientIp: '192.0.2.1', saslUser: 'alice', sessionId: 'S8', from: 'alice@ours.example', rcpts: ['x@late.example'] }), 'rcpt', onError);
    assert.equal(failures.length, 1, 'a note to a closed store is reported, not thrown');
    assert.match(String(failures[0]), /closed/);
  });

  test('kept to max entries: the ones seen longest ago go first', async (t) => {
    const store = await SqliteStore.open({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { purgeIntervalSeconds: 0 });
    t.after(() => store.close());
    const corr = new StoreCorrespondents(store, 10);
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => corr.record(`d${i}.example`, 'domain', T0 + i, T0 + i + DAY)));
    const kept = await corr.all(T0);
    assert.equal(kept.length, 10);
    assert.ok(kept.every((c) => Number(c.key.slice(1, -8)) >= 9990), kept.map((c) => c.key).join(' '));
  });
});
