// issue 17 item 5: a decision must finish inside Postfix's policy timeout.
// A sender domain whose MX answers but whose A/AAAA/TXT queries time out took
// 12 s (sender_domain waited for A/AAAA, then SPF for TXT) and Postfix gave up
// first. Now sender_domain stops at the MX answer, the whole decision has a
// deadline (policy.deadline_ms) after which unfinished evidence is a fault
// (451, never 5xx), and a DNSBL zone that does not answer never defers mail.

import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Clock, Verdict } from '../../src/core/types.js';
import type { MxRecord, Resolver } from '../../src/dns/types.js';
import { createResolver } from '../../src/dns/index.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { PolicyServer } from '../../src/postfix/policy-server.js';
import { startFixtureDns, zoneFromYaml, type FixtureDns } from '../helpers/fixture-dns.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { run, world } from '../helpers/policy-world.js';

// slowaddr.example: its MX answers (the client is that MX) but A, AAAA and TXT
// time out. dead.example: nothing answers at all.
const WORLD = `
slowaddr.example:
  - MX: [10, mx.slowaddr.example]
  - TIMEOUT
mx.slowaddr.example:
  - A: 192.0.2.25
dead.example:
  - TIMEOUT
`;

/** A clock whose timers fire only when the test says. */
class TestClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  constructor(public ms = 0) {}
  now(): number {
    return this.ms;
  }
  after(ms: number, fn: () => void): () => void {
    const t = { at: this.ms + ms, fn, live: true };
    this.timers.push(t);
    return () => {
      t.live = false;
    };
  }
  advance(ms: number): void {
    this.ms += ms;
    for (const t of this.timers) {
      if (t.live && t.at <= this.ms) {
        t.live = false;
        t.fn();
      }
    }
  }
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }
}

/** A resolver whose every question stays unanswered. */
const silent: Resolver = {
  a: () => new Promise<string[]>(() => undefined),
  aaaa: () => new Promise<string[]>(() => undefined),
  txt: () => new Promise<string[]>(() => undefined),
  mx: () => new Promise<MxRecord[]>(() => undefined),
  ptr: () => new Promise<string[]>(() => undefined),
};

const PROBE = { clientIp: '192.0.2.25', helo: 'mx.slowaddr.example', from: 'a@slowaddr.example', rcpts: ['bob@dest.example'] };

describe('the MX answers, A/AAAA/TXT time out (fixture DNS over UDP, 2 s × 3 tries per question)', () => {
  let dns: FixtureDns;
  before(async () => {
    dns = await startFixtureDns(zoneFromYaml(WORLD));
  });
  after(() => dns.close());

  test('sender_domain passes on the MX alone and the MX branch decides: well under the deadline', async () => {
    const resolver = createResolver({ servers: [dns.server], timeoutMs: 2000, retries: 2 });
    const cfg = parseConfig('my_networks: []\nheaders: { authserv_id: mx.test }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver });
    const t0 = performance.now();
    const v = await policy.transaction({ seesMessage: false }).evaluate('rcpt', { ...PROBE, rcpts: [...PROBE.rcpts] });
    const ms = performance.now() - t0;
    assert.equal(v.action, 'continue', v.text);
    const sd = v.evidence.find((e) => e.check === 'sender_domain');
    assert.equal(sd?.result, 'pass');
    assert.equal(sd?.detail, 'sender domain slowaddr.example has MX mx.slowaddr.example');
    assert.equal(v.evidence.find((e) => e.check === 'mx')?.result, 'match');
    // Before: 6 s for A/AAAA in sender_domain alone. Each of those questions takes 6 s to give up.
    assert.ok(ms < 3000, `took ${Math.round(ms)} ms`);
    assert.ok(!dns.queries.includes('A slowaddr.example'), 'A/AAAA of a domain with a real MX are not asked');
  });
});

describe('policy.deadline_ms', () => {
  test('a decision whose evidence never comes answers 451 4.3.0 at the deadline (injected clock), never 5xx', async () => {
    const clock = new TestClock();
    const cfg = parseConfig('my_networks: []\npolicy: { deadline_ms: 8000 }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: silent, clock });
    const box: { verdict?: Verdict } = {};
    const p = policy.transaction({ seesMessage: false }).evaluate('rcpt', { ...PROBE, rcpts: [...PROBE.rcpts] }).then((v) => (box.verdict = v));
    await new Promise((r) => setImmediate(r));
    assert.equal(box.verdict, undefined, 'still waiting before the deadline');
    clock.advance(7999);
    await new Promise((r) => setImmediate(r));
    assert.equal(box.verdict, undefined, 'still waiting 1 ms before the deadline');
    clock.advance(1);
    const verdict = await p;
    assert.deepEqual([verdict.action, verdict.code, verdict.status], ['defer', 451, '4.3.0']);
    assert.match(verdict.text ?? '', /^temporary failure: sender_domain: no answer within the decision deadline of 8000 ms/);
    const cut = verdict.evidence.find((e) => e.check === 'sender_domain');
    assert.equal(cut?.result, 'temperror');
    assert.equal(cut?.data?.deadline, true);
    assert.equal(clock.pending, 0, 'no timer left behind');
  });

  test('with on_fault: continue the deadline lets the decision go on (no refusal)', async () => {
    const clock = new TestClock();
    const cfg = parseConfig('my_networks: []\npolicy: { deadline_ms: 500, on_fault: continue }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: silent, clock });
    const p = policy.transaction({ seesMessage: false }).evaluate('rcpt', { ...PROBE, rcpts: [...PROBE.rcpts] });
    await new Promise((r) => setImmediate(r));
    clock.advance(500);
    const v = await p;
    assert.equal(v.action, 'continue');
  });

  test('a decision that needs no waiting sets no timer', async () => {
    const clock = new TestClock();
    const cfg = parseConfig('policy: { deadline_ms: 8000 }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: silent, clock });
    // 127.0.0.1 is in my_networks: accepted before any DNS.
    const v = await policy.transaction({ seesMessage: false }).evaluate('rcpt', { ...PROBE, clientIp: '127.0.0.1', rcpts: ['b@d.example'] });
    assert.equal(v.action, 'accept');
    assert.equal(clock.pending, 0);
  });

  test('through the Postfix policy server and real DNS timeouts: 451 at the deadline, not Postfix giving up', async () => {
    const dns = await startFixtureDns(zoneFromYaml(WORLD));
    const cfg = parseConfig('my_networks: []\npolicy: { deadline_ms: 400 }\n', 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: createResolver({ servers: [dns.server], timeoutMs: 2000, retries: 2 }) });
    const server = new PolicyServer({ policy, logger: pino({ level: 'silent' }), acceptReply: 'DUNNO', onFault: 'defer' });
    const { port } = await server.listenTcp('127.0.0.1', 0);
    try {
      const c = await PolicyClient.connect({ host: '127.0.0.1', port });
      const t0 = performance.now();
      const answer = await c.ask(rcptRequest({ client_address: '192.0.2.77', sender: 'a@dead.example', instance: 'd1' }));
      const ms = performance.now() - t0;
      assert.match(answer, /^451 4\.3\.0 temporary failure: sender_domain: no answer within the decision deadline of 400 ms/);
      assert.ok(ms >= 390 && ms < 3000, `answered after ${Math.round(ms)} ms`);
      await c.close();
    } finally {
      await server.close();
      await dns.close();
    }
  });
});

describe('one DNSBL zone that does not answer (issue 17: "an unanswered zone does not count")', () => {
  const ZONE = `
good.example:
  - TXT: "v=spf1 ip4:198.51.100.0/24 -all"
  - MX: [10, mx.good.example]
mx.good.example:
  - A: 198.51.100.1
7.100.51.198.bl.example:
  - TIMEOUT
`;
  test('the only zone timing out: accepted like everything else says, dnsbl unlisted (incomplete)', async () => {
    const w = world(ZONE, 'checks:\n  dnsbl:\n    zones: [bl.example]\n    probe_interval_s: 0\n');
    const v = await run(w, { clientIp: '198.51.100.7', helo: 'out.good.example', from: 'a@good.example', rcpts: ['b@dest.example'] });
    assert.equal(v.action, 'continue', v.text);
    const bl = v.evidence.find((e) => e.check === 'dnsbl');
    assert.equal(bl?.result, 'unlisted');
    assert.equal(bl?.data?.incomplete, true);
  });
});
