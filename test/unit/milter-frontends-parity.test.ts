// One config decides the same way through all three frontends (issue 20):
// the fixture world of the Postfix end-to-end test (test/fixtures/world.yaml,
// its cases listed at its top) run through the policy server, the gate and
// the milter, each with the real policy over the same in-memory DNS. The
// policy server never sees the message, so a rule whose DKIM branch it
// resolves to `none` decides at RCPT there and at end of message in the
// gate and the milter: what must agree is the outcome, the rule and the
// code; the gate and the milter (both see the message) must agree on the
// whole reply.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { PolicyServer } from '../../src/postfix/policy-server.js';
import { startMilter, type RunningMilter } from '../../src/milter/server.js';
import { parseMilterAddress } from '../../src/milter/listen-address.js';
import type { Verdict } from '../../src/core/types.js';
import { loadZoneYaml } from '../helpers/fixture-dns.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { startTestGate, type TestGate } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { MilterClient, dialogue, strings } from '../helpers/milter-client.js';
import { plainMessage } from '../helpers/signed-mail.js';

interface Case {
  name: string;
  ip: string;
  helo: string;
  from: string;
}

// test/fixtures/world.yaml's cases.
const CASES: Case[] = [
  { name: 'provider', ip: '198.51.100.10', helo: 'out-of-sync.bigprovider.test', from: 'alice@bigprovider.test' },
  { name: 'forger', ip: '192.0.2.77', helo: 'DESKTOP-4F2K9', from: 'bob@bigisp.test' },
  { name: 'listed', ip: '192.0.2.200', helo: 'mail.legit.test', from: 'd@legit.test' },
  { name: 'slow', ip: '192.0.2.88', helo: 'mail.slowdns.test', from: 'carol@slowdns.test' },
  { name: 'smallserver', ip: '203.0.113.5', helo: 'mail.small.test', from: 'x@small.test' },
  { name: 'v6', ip: '2001:db8:25::25', helo: 'mx6.bigprovider.test', from: 'alice@bigprovider.test' },
  { name: 'bounce', ip: '192.0.2.77', helo: 'DESKTOP-4F2K9', from: '' },
];
const RCPT = 'user@dest.test';

/** What a frontend did with a case: accept / reject / defer, the deciding rule, the SMTP reply when refused. */
interface Outcome {
  outcome: 'accept' | 'reject' | 'defer';
  rule: string;
  code?: number;
  reply?: string;
}

function classify(code: number | undefined): Outcome['outcome'] {
  return code === undefined || code < 400 ? 'accept' : code < 500 ? 'defer' : 'reject';
}

/** The deciding rule: the refusing verdict, else the last one (end of message, or the RCPT answer). */
function ruleOf(verdicts: Verdict[]): string {
  const refusing = verdicts.find((v) => v.action === 'reject' || v.action === 'defer' || v.action === 'tarpit');
  return (refusing ?? verdicts.at(-1))?.rule ?? '(none)';
}

const CONFIG = 'headers:\n  authserv_id: mx.dest.test\nchecks:\n  dnsbl:\n    zones: ["bl.test=127.0.0.[2..11]"]\n';

describe('the fixture world through the policy server, the gate and the milter', () => {
  const world = loadZoneYaml(new URL('../fixtures/world.yaml', import.meta.url).pathname);
  const resolver = new ZoneResolver(world);
  const policy = Policy.fromConfig(parseConfig(CONFIG, 'test.yaml'), { resolver });
  const verdicts = { postfix: [] as Verdict[], gate: [] as Verdict[], milter: [] as Verdict[] };
  let server: PolicyServer;
  let policyPort: number;
  let gate: TestGate;
  let milter: RunningMilter;
  let milterPort: number;

  before(async () => {
    const silent = pino({ level: 'silent' });
    server = new PolicyServer({ policy, logger: silent, acceptReply: 'DUNNO', onFault: 'defer', onDecision: (v) => verdicts.postfix.push(v) });
    policyPort = (await server.listenTcp('127.0.0.1', 0)).port;
    gate = await startTestGate({ policy, resolver, gate: { proxy_protocol: { trusted: ['127.0.0.1'] } } });
    milter = await startMilter(parseMilterAddress('inet:127.0.0.1:0')!, { policy, logger: silent, maxBody: 1 << 20, onDecision: (v) => verdicts.milter.push(v) });
    milterPort = Number(/:(\d+)$/.exec(milter.address)![1]);
  });
  after(async () => {
    await server.close();
    await gate.close();
    await milter.close();
  });

  async function viaPolicyServer(c: Case, i: number): Promise<Outcome> {
    verdicts.postfix.length = 0;
    const client = await PolicyClient.connect({ host: '127.0.0.1', port: policyPort });
    const answer = await client.ask(rcptRequest({ client_address: c.ip, helo_name: c.helo, sender: c.from, recipient: RCPT, instance: `parity${i}` }));
    await client.close();
    const m = /^(\d{3}) /.exec(answer);
    const code = m ? Number(m[1]) : undefined;
    return { outcome: classify(code), rule: ruleOf(verdicts.postfix), code };
  }

  async function viaGate(c: Case): Promise<Outcome> {
    gate.events.length = 0;
    const s = await SmtpTalk.connect(gate.port);
    s.sendRaw(`PROXY ${c.ip.includes(':') ? 'TCP6' : 'TCP4'} ${c.ip} ${c.ip.includes(':') ? '::1' : '127.0.0.1'} 40000 25\r\n`);
    await s.reply();
    await s.command(`EHLO ${c.helo}`);
    const done = (r: { code: number; text: string }): Outcome => {
      s.close();
      return { outcome: classify(r.code), rule: ruleOf(gate.events.map((e) => e.verdict)), code: r.code >= 400 ? r.code : undefined, reply: r.code >= 400 ? `${r.code} ${r.text}` : undefined };
    };
    const mail = await s.command(`MAIL FROM:<${c.from}>`);
    if (mail.code >= 400) return done(mail);
    const rcpt = await s.command(`RCPT TO:<${RCPT}>`);
    if (rcpt.code >= 400) return done(rcpt);
    const data = await s.command('DATA');
    if (data.code >= 400) return done(data);
    s.sendRaw(Buffer.concat([plainMessage({ from: c.from || 'mailer-daemon@bigisp.test', to: RCPT }), Buffer.from('.\r\n')]));
    return done(await s.reply(15_000));
  }

  async function viaMilter(c: Case): Promise<Outcome> {
    verdicts.milter.length = 0;
    const client = await MilterClient.connect({ host: '127.0.0.1', port: milterPort });
    const r = await dialogue(client, { ip: c.ip }, { helo: c.helo, from: c.from, rcpts: [RCPT], message: plainMessage({ from: c.from || 'mailer-daemon@bigisp.test', to: RCPT }) });
    client.close();
    const refusal = [r.mail, ...r.rcpt, r.data, r.eoh, ...r.eom].find((x) => x?.code === 'y');
    const reply = refusal ? strings(refusal.data)[0].replace(/%%/g, '%') : undefined;
    const code = reply ? Number(reply.slice(0, 3)) : undefined;
    return { outcome: classify(code), rule: ruleOf(verdicts.milter), code, reply };
  }

  test('every case: the same outcome, rule and code everywhere; the same reply through the gate and the milter', async () => {
    const table: string[] = [];
    for (const [i, c] of CASES.entries()) {
      const p = await viaPolicyServer(c, i);
      const g = await viaGate(c);
      const m = await viaMilter(c);
      table.push(`${c.name}: postfix ${p.outcome}/${p.rule}/${p.code ?? '-'}, gate ${g.outcome}/${g.rule}/${g.code ?? '-'}, milter ${m.outcome}/${m.rule}/${m.code ?? '-'}`);
      const where = `${c.name}\n${table.join('\n')}`;
      assert.equal(g.outcome, p.outcome, where);
      assert.equal(m.outcome, p.outcome, where);
      assert.equal(g.rule, p.rule, where);
      assert.equal(m.rule, p.rule, where);
      assert.equal(g.code, p.code, where);
      assert.equal(m.code, p.code, where);
      assert.equal(m.reply, g.reply?.replace(/^(\d{3})-/, '$1 '), where);
    }
    // The world's own expectations (its header): two refused, one deferred, the rest accepted.
    assert.deepEqual(
      table.map((l) => l.split(':')[0] + ':' + /postfix (\w+)/.exec(l)![1]),
      ['provider:accept', 'forger:reject', 'listed:reject', 'slow:defer', 'smallserver:accept', 'v6:accept', 'bounce:accept'],
    );
  });
});
