// The milter frontend with the real policy engine over an in-memory DNS
// world, driven over a socket by a test MTA: decisions at each stage with
// the rule's own reply, Authentication-Results inserted at end of message,
// forged ones removed by index, the body cap, and every fault a tempfail.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { startMilter, type RunningMilter } from '../../src/milter/server.js';
import { parseMilterAddress } from '../../src/milter/listen-address.js';
import type { MilterPolicy } from '../../src/milter/policy-port.js';
import type { Verdict } from '../../src/core/types.js';
import { generateKey, plainMessage, signMessage } from '../helpers/signed-mail.js';
import { MILTER_TEST_CONFIG, milterTestZone } from '../helpers/milter-world.js';
import { MilterClient, connectPacket, dialogue, optneg, packet, strings, z, type MilterReply } from '../helpers/milter-client.js';

const key = generateKey();

const zone = milterTestZone(key);
const CONFIG = MILTER_TEST_CONFIG;

function silent() {
  return pino({ level: 'silent' });
}

const header = (replies: MilterReply[], code: string) => replies.filter((r) => r.code === code);
const text = (r: MilterReply | undefined) => (r ? strings(r.data)[0] : undefined);

describe('milter frontend with the policy engine', () => {
  let milter: RunningMilter;
  let port: number;
  const decisions: Verdict[] = [];

  before(async () => {
    const cfg = parseConfig(CONFIG, 'test.yaml');
    const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(zone) });
    milter = await startMilter(parseMilterAddress('inet:127.0.0.1:0')!, { policy, logger: silent(), maxBody: 4096, onDecision: (v) => decisions.push(v) });
    port = Number(/:(\d+)$/.exec(milter.address)![1]);
  });
  after(() => milter.close());

  const open = () => MilterClient.connect({ host: '127.0.0.1', port });

  test('negotiation: add/change headers and our macro lists, header values with their space, SKIP, no reply to header fields', async () => {
    const c = await open();
    const r = await c.ask(optneg());
    assert.equal(r?.code, 'O');
    assert.equal(r!.data.readUInt32BE(0), 6);
    assert.equal(r!.data.readUInt32BE(4), 0x111);
    assert.equal(r!.data.readUInt32BE(8), 0x100580);
    assert.match(r!.data.subarray(12).toString('latin1'), /\{client_ptr\}/);
    c.close();
  });

  test('a DKIM-signed message is accepted with dkim=pass in Authentication-Results, inserted at the top', async () => {
    const signed = await signMessage(plainMessage({ from: 'alice@dkim-only.test', to: 'bob@dest.test', body: 'Signed.\r\n' }), { domain: 'dkim-only.test', key });
    const c = await open();
    const r = await dialogue(c, { ip: '198.51.100.20' }, { from: 'alice@dkim-only.test', rcpts: ['bob@dest.test'], message: signed });
    assert.equal(r.mail?.code, 'c');
    assert.equal(r.rcpt[0]?.code, 'c');
    const final = r.eom.at(-1);
    assert.equal(final?.code, 'a');
    const ins = header(r.eom, 'i');
    assert.ok(ins.length >= 1);
    // The last inserted lands on top: Authentication-Results.
    const top = ins.at(-1)!;
    assert.equal(top.data.readUInt32BE(0), 0);
    const [name, value] = strings(top.data, 4);
    assert.equal(name, 'Authentication-Results');
    assert.match(value, /^ mx\.test;.*dkim=pass header\.d=dkim-only\.test/s);
    c.close();
  });

  test('a forged From of a p=reject domain is refused 550 at end of message with the rule text', async () => {
    const forged = plainMessage({ from: 'ceo@strict.test', to: 'bob@dest.test' });
    const c = await open();
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'eve@spf-ok.test', rcpts: ['bob@dest.test'], message: forged });
    assert.equal(r.rcpt[0]?.code, 'c', 'SPF of the envelope passes: nothing refused before the message');
    assert.equal(r.eom.length, 1);
    assert.equal(r.eom[0].code, 'y');
    assert.equal(text(r.eom[0]), "550 5.7.1 the From domain's DMARC policy says reject");
    c.close();
  });

  test('an SPF-only refusal comes at RCPT with the rule code, status and text', async () => {
    const c = await open();
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'x@hardfail.test', rcpts: ['bob@dest.test'] });
    assert.equal(r.mail?.code, 'c');
    assert.equal(r.rcpt[0]?.code, 'y');
    assert.equal(text(r.rcpt[0]), '550 5.7.23 SPF says 192.0.2.10 may not send for hardfail.test');
    c.close();
  });

  test('attack: forged Authentication-Results claiming our authserv-id are removed, last first, by index; others kept', async () => {
    const msg = plainMessage({
      from: 'alice@spf-ok.test',
      extra: ['Authentication-Results: other.example; spf=fail', 'Authentication-Results: mx.test; dkim=pass header.d=paypal.example', 'X-Frontline-SPF: pass (forged)', 'authentication-results:  (comment) MX.TEST; dmarc=pass'],
    });
    const c = await open();
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'alice@spf-ok.test', rcpts: ['bob@dest.test'], message: msg });
    const changes = header(r.eom, 'm').map((m) => [m.data.readUInt32BE(0), ...strings(m.data, 4)]);
    assert.deepEqual(changes, [
      [3, 'authentication-results', ''],
      [1, 'X-Frontline-SPF', ''],
      [2, 'Authentication-Results', ''],
    ]);
    assert.equal(r.eom.at(-1)?.code, 'a');
    c.close();
  });

  test('attack: a body over milter.max_body is skipped, and a DKIM signature over it is not verified', async () => {
    const big = 'x'.repeat(70) + '\r\n';
    const signed = await signMessage(plainMessage({ from: 'alice@dkim-only.test', body: big.repeat(200) }), { domain: 'dkim-only.test', key });
    const c = await open();
    const r = await dialogue(c, { ip: '198.51.100.20' }, { from: 'alice@dkim-only.test', rcpts: ['bob@dest.test'], message: signed, chunk: 1000 });
    assert.equal(r.body.at(-1)?.code, 's', 'SKIP once past the cap');
    assert.ok(r.body.length <= 5);
    // Without the DKIM branch nothing authorises the client: refused, and not for a fault.
    assert.equal(r.eom.at(-1)?.code, 'y');
    assert.equal(text(r.eom.at(-1)), '554 5.7.1 not authorised');
    const last = decisions.at(-1)!;
    const dkim = last.evidence.find((e) => e.check === 'dkim');
    assert.equal(dkim?.result, 'neutral');
    assert.match(dkim!.detail, /truncated/);
    c.close();
  });

  test('the same signed message under the cap passes (the cap, not the signature, made the difference)', async () => {
    const small = await signMessage(plainMessage({ from: 'alice@dkim-only.test', body: 'y\r\n'.repeat(100) }), { domain: 'dkim-only.test', key });
    const c = await open();
    const r = await dialogue(c, { ip: '198.51.100.20' }, { from: 'alice@dkim-only.test', rcpts: ['bob@dest.test'], message: small, chunk: 100 });
    assert.ok(r.body.every((b) => b.code === 'c'));
    assert.equal(r.eom.at(-1)?.code, 'a');
    c.close();
  });

  test('two messages on one connection, the first aborted: each judged on its own', async () => {
    const c = await open();
    await dialogue(c, { ip: '192.0.2.10' }, { from: 'x@hardfail.test', rcpts: ['bob@dest.test'] });
    // The dialogue aborted after its refused recipient; a second message from a good sender on the same connection.
    assert.equal((await c.ask(packet('M', z('<alice@spf-ok.test>'))))?.code, 'c');
    assert.equal((await c.ask(packet('R', z('<bob@dest.test>'))))?.code, 'c');
    c.close();
  });

  test('attack: an oversized packet length gets tempfail and the connection closed; the server goes on', async () => {
    const c = await open();
    await c.ask(optneg());
    const head = Buffer.alloc(4);
    head.writeUInt32BE(10 * 1024 * 1024, 0);
    c.write(head, Buffer.from('B'));
    const r = await c.next();
    assert.equal(r?.code, 't');
    assert.ok(await c.waitClosed());
    const again = await open();
    assert.equal((await again.ask(optneg()))?.code, 'O');
    again.close();
  });

  test('attack: malformed packets and unknown commands: tempfail and close, never a crash', async () => {
    const cases: Buffer[][] = [
      [packet('M', z('<a@b>'))], // before negotiation
      [optneg(), packet('C', 'no-family')],
      [optneg(), packet('Z')],
      [optneg(), packet('M', z('<a@b>'))], // before connect
      [optneg(), optneg()],
      [optneg(1)],
      [optneg(), connectPacket('h', '192.0.2.10'), packet('H', 'unterminated')],
    ];
    for (const packets of cases) {
      const c = await open();
      c.write(...packets);
      const replies: string[] = [];
      for (let r = await c.next(); r; r = await c.next()) replies.push(r.code);
      assert.equal(replies.at(-1), 't', `${packets.map((p) => String.fromCharCode(p[4])).join('')}: ${replies.join(',')}`);
      assert.ok(c.closed);
    }
    assert.ok(milter.stats.protocolErrors >= cases.length);
  });

  test('attack: random bytes after a good negotiation never crash the server', async () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 30; i++) {
      const c = await open();
      const junk = Buffer.alloc(200);
      for (let j = 0; j < junk.length; j++) junk[j] = rnd() & 0xff;
      c.write(optneg(), junk);
      // Junk that reads as the start of a long packet waits for the rest (until the idle timeout): not waited for here.
      await c.waitClosed(50);
      c.close();
    }
    const again = await open();
    assert.equal((await again.ask(optneg()))?.code, 'O');
    again.close();
  });

  test('a client without an IP address (unix, unknown) is not judged, as the policy server skips it', async () => {
    const c = await open();
    await c.ask(optneg());
    assert.equal((await c.ask(packet('C', 'localhost\0U')))?.code, 'c');
    assert.equal((await c.ask(packet('M', z('<x@hardfail.test>'))))?.code, 'c');
    c.close();
  });
});

describe('milter faults', () => {
  async function withPolicy(policy: MilterPolicy, decisionTimeoutMs = 30_000) {
    const m = await startMilter(parseMilterAddress('inet:127.0.0.1:0')!, { policy, logger: silent(), maxBody: 4096, decisionTimeoutMs });
    const port = Number(/:(\d+)$/.exec(m.address)![1]);
    return { m, open: () => MilterClient.connect({ host: '127.0.0.1', port }) };
  }

  test('a policy that throws gives 451 4.3.0 at MAIL, never a 5xx', async () => {
    const { m, open } = await withPolicy({
      transaction: () => ({
        evaluate: async (stage) => {
          if (stage === 'mail') throw new Error('boom');
          return { action: 'continue', headers: [], rule: 'default', stage, evidence: [] };
        },
      }),
    });
    const c = await open();
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'a@b.test', rcpts: ['c@d.test'] });
    assert.equal(text(r.mail), '451 4.3.0 Temporary policy service failure, try again later');
    c.close();
    await m.close();
  });

  test('a decision past its deadline gives 451 4.3.0', async () => {
    const { m, open } = await withPolicy(
      {
        transaction: () => ({
          evaluate: (stage) =>
            stage === 'rcpt' ? new Promise<Verdict>(() => undefined) : Promise.resolve({ action: 'continue', headers: [], rule: 'default', stage, evidence: [] } as Verdict),
        }),
      },
      300,
    );
    const c = await open();
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'a@b.test', rcpts: ['c@d.test'] });
    assert.match(text(r.rcpt[0]) ?? '', /^451 4\.3\.0/);
    c.close();
    await m.close();
  });

  test('a connect-stage refusal is given at MAIL, and a defer stays 4xx whatever the rule code', async () => {
    const { m, open } = await withPolicy({
      transaction: () => ({
        evaluate: async (stage) =>
          (stage === 'connect'
            ? { action: 'defer', code: 554, status: '5.7.1', text: 'listed', headers: [], rule: 'x', stage, evidence: [] }
            : { action: 'continue', headers: [], rule: 'default', stage, evidence: [] }) as Verdict,
      }),
    });
    const c = await open();
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'a@b.test', rcpts: ['c@d.test'] });
    assert.equal(r.connect?.code, 'c');
    assert.equal(r.helo?.code, 'c');
    assert.equal(text(r.mail), '454 4.7.1 listed');
    c.close();
    await m.close();
  });

  test('macros: {client_ptr}, {daemon_addr}, {auth_authen} and the queue id i reach the envelope the policy judges', async () => {
    const seen: Array<{ stage: string; ptr?: string; server?: string; sasl?: string; session?: string }> = [];
    const { m, open } = await withPolicy({
      transaction: () => ({
        evaluate: async (stage, env) => {
          seen.push({ stage, ptr: env.clientPtr, server: env.serverAddress, sasl: env.saslUser, session: env.sessionId });
          return { action: 'continue', headers: [], rule: 'default', stage, evidence: [] } as Verdict;
        },
      }),
    });
    const c = await open();
    await c.ask(optneg());
    c.write(packet('D', `C${z('{client_ptr}', 'mail.example.org', '{daemon_addr}', '192.0.2.2')}`));
    assert.equal((await c.ask(connectPacket('[192.0.2.10]', '192.0.2.10')))?.code, 'c');
    c.write(packet('D', `M${z('{auth_authen}', 'joe', 'i', '4QX1Z2')}`));
    assert.equal((await c.ask(packet('M', z('<joe@example.org>'))))?.code, 'c');
    const mail = seen.find((x) => x.stage === 'mail');
    assert.deepEqual(mail, { stage: 'mail', ptr: 'mail.example.org', server: '192.0.2.2', sasl: 'joe', session: '4QX1Z2' });
    assert.equal(seen.find((x) => x.stage === 'connect')?.sasl, undefined);
    c.close();
    await m.close();
  });

  test('attack: a header section over its limit is refused at end of headers', async () => {
    const { m, open } = await withPolicy({ transaction: () => ({ evaluate: async (stage) => ({ action: 'continue', headers: [], rule: 'default', stage, evidence: [] }) as Verdict }) });
    const c = await open();
    const extra = Array.from({ length: 1200 }, (_, i) => `X-Junk-${i}: y`);
    const r = await dialogue(c, { ip: '192.0.2.10' }, { from: 'a@b.test', rcpts: ['c@d.test'], message: plainMessage({ from: 'a@b.test', extra }) });
    assert.equal(text(r.eoh), '552 5.3.4 Error: message header section too big');
    c.close();
    await m.close();
  });
});
