import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestParser, formatReply, formatRequest, parseReplies, type ParseEvent } from '../../src/postfix/protocol.js';
import { envelopeOf, stageOf, withRecipient } from '../../src/postfix/envelope.js';
import { actionFor, faultAction, invalidRequestAction, prependAction } from '../../src/postfix/reply.js';
import { sanitizeText } from '../../src/core/reply-text.js';
import type { Verdict } from '../../src/core/types.js';

// A request as Postfix 3.7 sends it at RCPT (captured from a real smtpd).
const RCPT_REQUEST = [
  'request=smtpd_access_policy',
  'protocol_state=RCPT',
  'protocol_name=ESMTP',
  'client_address=192.0.2.7',
  'client_name=mail.sender.test',
  'client_port=32812',
  'reverse_client_name=mail.sender.test',
  'server_address=127.0.0.1',
  'server_port=2525',
  'helo_name=helo.sender.test',
  'sender=a@sender.test',
  'recipient=u@dest.test',
  'recipient_count=0',
  'queue_id=',
  'instance=2edb.6b027f38.7680a.0',
  'size=0',
  'etrn_domain=',
  'stress=',
  'sasl_method=',
  'sasl_username=',
  'sasl_sender=',
  'ccert_subject=',
  'ccert_issuer=',
  'ccert_fingerprint=',
  'ccert_pubkey_fingerprint=',
  'encryption_protocol=TLSv1.3',
  'encryption_cipher=TLS_AES_256_GCM_SHA384',
  'encryption_keysize=256',
  'policy_context=',
  'x_future_attribute=kept',
  '',
  '',
].join('\n');

const SHORT_REQUEST = 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n\n';

function requests(events: ParseEvent[]) {
  return events.filter((e) => e.kind === 'request').map((e) => (e as Extract<ParseEvent, { kind: 'request' }>).attrs);
}

describe('RequestParser', () => {
  test('parses every attribute of a real request, unknown ones included', () => {
    const events = new RequestParser().push(Buffer.from(RCPT_REQUEST));
    assert.equal(events.length, 1);
    const [attrs] = requests(events);
    assert.equal(attrs.protocol_state, 'RCPT');
    assert.equal(attrs.client_address, '192.0.2.7');
    assert.equal(attrs.queue_id, '');
    assert.equal(attrs.encryption_cipher, 'TLS_AES_256_GCM_SHA384');
    assert.equal(attrs.x_future_attribute, 'kept');
    assert.equal(Object.keys(attrs).length, 30);
  });

  test('clients with different attribute orders, names that start with another name: each request parsed as sent', () => {
    // The parser guesses each name from the order it saw last (protocol.ts FOLLOWS): a wrong guess must cost nothing but time.
    const a = 'request=smtpd_access_policy\nrecipient=r@x.test\nrecipient_count=0\nsender=s@x.test\nclient_address=192.0.2.1\n\n';
    const b = 'request=smtpd_access_policy\nrecipient_count=2\nrecipient=q@x.test\nsender_x=1\nsender=t@x.test\nsender=\nclient_address\n\n';
    const c = 'request=smtpd_access_policy\nrecipient=r@x.test\nrecipient_count=0\nsenderfoo=1\nclient_address=192.0.2.9\n\n';
    const parser = new RequestParser();
    for (let round = 0; round < 3; round++) {
      const events = parser.push(Buffer.from(a + b + c + a));
      assert.deepEqual(events.map((e) => e.kind), ['request', 'invalid', 'request', 'request']);
      const [first, third, fourth] = requests(events);
      assert.deepEqual({ ...first }, { request: 'smtpd_access_policy', recipient: 'r@x.test', recipient_count: '0', sender: 's@x.test', client_address: '192.0.2.1' });
      assert.deepEqual({ ...third }, { request: 'smtpd_access_policy', recipient: 'r@x.test', recipient_count: '0', senderfoo: '1', client_address: '192.0.2.9' });
      assert.deepEqual(fourth, first);
    }
    const [d] = requests(parser.push(Buffer.from('request=smtpd_access_policy\nrecipient_count=2\nrecipient=q@x.test\nsender_x=1\nsender=t@x.test\n\n')));
    assert.deepEqual({ ...d }, { request: 'smtpd_access_policy', recipient_count: '2', recipient: 'q@x.test', sender_x: '1', sender: 't@x.test' });
  });

  test('values may contain "=" and UTF-8', () => {
    const [attrs] = requests(new RequestParser().push(Buffer.from('request=smtpd_access_policy\nsender=a=b@xn--bcher-kva.example\nccert_subject=CN=Jörg\n\n')));
    assert.equal(attrs.sender, 'a=b@xn--bcher-kva.example');
    assert.equal(attrs.ccert_subject, 'CN=Jörg');
  });

  test('many requests on one connection, pipelined in one chunk', () => {
    const parser = new RequestParser();
    const wire = Buffer.from(RCPT_REQUEST.replace('u@dest.test', 'one@dest.test') + RCPT_REQUEST.replace('u@dest.test', 'two@dest.test') + RCPT_REQUEST);
    const got = requests(parser.push(wire));
    assert.deepEqual(got.map((a) => a.recipient), ['one@dest.test', 'two@dest.test', 'u@dest.test']);
    assert.equal(parser.bufferedBytes, 0);
  });

  test('split at every byte boundary gives the same requests', () => {
    const wire = Buffer.from(RCPT_REQUEST + RCPT_REQUEST.replace('RCPT', 'DATA').replace('ccert_subject=', 'ccert_subject=CN=Jörg Müller ✉'));
    const whole = requests(new RequestParser().push(wire));
    assert.equal(whole[1].ccert_subject, 'CN=Jörg Müller ✉');
    for (let cut = 1; cut < wire.length; cut++) {
      const p = new RequestParser();
      const got = [...requests(p.push(wire.subarray(0, cut))), ...requests(p.push(wire.subarray(cut)))];
      assert.deepEqual(got, whole, `cut at ${cut}`);
    }
    const p = new RequestParser();
    const byByte: ReturnType<typeof requests> = [];
    for (let i = 0; i < wire.length; i++) byByte.push(...requests(p.push(wire.subarray(i, i + 1))));
    assert.deepEqual(byByte, whole);
  });

  test('CRLF line endings and stray empty lines between requests are tolerated', () => {
    const p = new RequestParser();
    const events = p.push(Buffer.from('\r\n\nrequest=smtpd_access_policy\r\nprotocol_state=RCPT\r\n\r\n\n'));
    assert.deepEqual(requests(events), [{ request: 'smtpd_access_policy', protocol_state: 'RCPT' }]);
  });

  test('a line without "=" makes the request invalid, and the next one is read normally', () => {
    const p = new RequestParser();
    const events = p.push(Buffer.from('request=smtpd_access_policy\ngarbage line\nsender=x@y\n\n' + RCPT_REQUEST));
    assert.equal(events.length, 2);
    assert.equal(events[0].kind, 'invalid');
    assert.equal((events[0] as { problem: string }).problem, 'malformed-line');
    assert.equal(events[1].kind, 'request');
  });

  test('an empty attribute name or a bad name is malformed', () => {
    for (const line of ['=value', 'na me=x', 'näme=x']) {
      const events = new RequestParser().push(Buffer.from(`request=smtpd_access_policy\n${line}\n\n`));
      assert.equal(events[0].kind, 'invalid', line);
    }
  });

  test('an over-long line is skipped to the end of its request, even across chunks', () => {
    const p = new RequestParser({ maxLineBytes: 100, maxRequestBytes: 1000 });
    const long = `sender=${'x'.repeat(300)}`;
    const events = [
      ...p.push(Buffer.from(`request=smtpd_access_policy\n${long.slice(0, 150)}`)),
      ...p.push(Buffer.from(`${long.slice(150)}\nrecipient=a@b\n`)),
      ...p.push(Buffer.from('\nrequest=smtpd_access_policy\nprotocol_state=RCPT\n\n')),
    ];
    assert.deepEqual(events.map((e) => e.kind), ['invalid', 'request']);
    assert.equal((events[0] as { problem: string }).problem, 'line-too-long');
    assert.ok(p.bufferedBytes === 0);
  });

  test('a request over max bytes is invalid; the parser holds no more than one line', () => {
    const p = new RequestParser({ maxRequestBytes: 200 });
    let wire = 'request=smtpd_access_policy\n';
    for (let i = 0; i < 20; i++) wire += `attr${i}=${'v'.repeat(20)}\n`;
    const events = p.push(Buffer.from(`${wire}\n${SHORT_REQUEST}`));
    assert.deepEqual(events.map((e) => e.kind), ['invalid', 'request']);
    assert.equal((events[0] as { problem: string }).problem, 'request-too-large');
  });

  test('too many attributes is invalid', () => {
    const p = new RequestParser({ maxAttributes: 5 });
    const events = p.push(Buffer.from('a=1\nb=2\nc=3\nd=4\ne=5\nf=6\n\n'));
    assert.equal(events[0].kind, 'invalid');
    assert.equal((events[0] as { problem: string }).problem, 'too-many-attributes');
  });

  test('a bad request that never ends is aborted after maxDiscardBytes', () => {
    const p = new RequestParser({ maxLineBytes: 10, maxDiscardBytes: 1000 });
    const events: ParseEvent[] = [];
    for (let i = 0; i < 200 && !events.some((e) => e.kind === 'abort'); i++) events.push(...p.push(Buffer.from('x'.repeat(50) + '\n')));
    assert.equal(events.at(-1)?.kind, 'abort');
    assert.deepEqual(p.push(Buffer.from('\n\nrequest=x\n\n')), [], 'nothing more after an abort');
  });

  test('binary garbage never throws', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    const p = new RequestParser({ maxRequestBytes: 512, maxDiscardBytes: 1 << 30 });
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(1 + (rnd() % 64));
      for (let j = 0; j < b.length; j++) b[j] = rnd() % 5 === 0 ? 0x0a : rnd();
      p.push(b);
    }
    assert.ok(p.bufferedBytes <= 512);
    assert.equal(requests(p.push(Buffer.from('\n\n' + SHORT_REQUEST))).length, 1);
  });
});

describe('wire format helpers', () => {
  test('formatReply / parseReplies round trip', () => {
    assert.equal(formatReply('DUNNO'), 'action=DUNNO\n\n');
    const { actions, rest } = parseReplies('action=DUNNO\n\naction=554 5.7.1 no\n\naction=O');
    assert.deepEqual(actions, ['DUNNO', '554 5.7.1 no']);
    assert.equal(rest, 'action=O');
  });
  test('formatRequest is what the parser reads', () => {
    const attrs = { request: 'smtpd_access_policy', protocol_state: 'RCPT', sender: '' };
    assert.deepEqual(requests(new RequestParser().push(Buffer.from(formatRequest(attrs)))), [attrs]);
  });
});

describe('envelope mapping', () => {
  const base = { request: 'smtpd_access_policy', protocol_state: 'RCPT', client_address: '192.0.2.7', helo_name: 'h.example', sender: 'a@b.example', recipient: 'r@d.example', instance: 'i1' };

  test('protocol states map to stages', () => {
    const expected: Record<string, string | undefined> = {
      CONNECT: 'connect', EHLO: 'helo', HELO: 'helo', MAIL: 'mail', RCPT: 'rcpt', DATA: 'data', BDAT: 'data',
      'END-OF-MESSAGE': 'eom', VRFY: 'connect', ETRN: 'connect', rcpt: 'rcpt', NOPE: undefined,
    };
    for (const [state, stage] of Object.entries(expected)) assert.equal(stageOf(state), stage, state);
  });

  test('RCPT request → envelope', () => {
    const m = envelopeOf({ ...base, reverse_client_name: 'mail.b.example', sasl_username: 'joe', server_address: '127.0.0.1' }, ['x@d.example']);
    assert.ok(m.ok);
    assert.equal(m.stage, 'rcpt');
    assert.deepEqual(
      { ...m.envelope, attrs: undefined },
      { clientIp: '192.0.2.7', clientPtr: 'mail.b.example', helo: 'h.example', from: 'a@b.example', rcpts: ['x@d.example', 'r@d.example'], saslUser: 'joe', serverAddress: '127.0.0.1', sessionId: 'i1', attrs: undefined },
    );
  });

  test('::ffff: mapped addresses become IPv4; IPv6 is normalised', () => {
    const a = envelopeOf({ ...base, client_address: '::ffff:192.0.2.9' });
    assert.ok(a.ok && a.envelope.clientIp === '192.0.2.9');
    const b = envelopeOf({ ...base, client_address: '2001:DB8:0:0::1' });
    assert.ok(b.ok && b.envelope.clientIp === '2001:db8::1');
  });

  test('empty sender is the null sender from MAIL on, and absent before it', () => {
    const mail = envelopeOf({ ...base, protocol_state: 'MAIL', sender: '', recipient: '' });
    assert.ok(mail.ok && mail.envelope.from === '' && mail.envelope.rcpts.length === 0);
    const helo = envelopeOf({ ...base, protocol_state: 'EHLO', sender: '' });
    assert.ok(helo.ok && helo.envelope.from === undefined);
  });

  test('unknown client address is skipped, garbage is invalid, wrong request type is invalid', () => {
    const unknown = envelopeOf({ ...base, client_address: 'unknown' });
    assert.ok(!unknown.ok && unknown.kind === 'skip');
    const garbage = envelopeOf({ ...base, client_address: '999.1.2.3' });
    assert.ok(!garbage.ok && garbage.kind === 'invalid');
    const other = envelopeOf({ ...base, request: 'junk' });
    assert.ok(!other.ok && other.kind === 'invalid');
    const state = envelopeOf({ ...base, protocol_state: 'NOOP' });
    assert.ok(!state.ok && state.kind === 'skip');
    const noState = envelopeOf({ request: 'smtpd_access_policy', client_address: '192.0.2.1' });
    assert.ok(!noState.ok && noState.kind === 'invalid');
  });

  test('reverse_client_name=unknown is no PTR', () => {
    const m = envelopeOf({ ...base, reverse_client_name: 'unknown' });
    assert.ok(m.ok && m.envelope.clientPtr === undefined);
  });

  test('a recipient asked about twice is counted once', () => {
    assert.deepEqual(withRecipient(['a'], 'a'), ['a']);
    assert.deepEqual(withRecipient(['a'], 'b'), ['a', 'b']);
    assert.deepEqual(withRecipient(['a', 'b'], ''), ['a', 'b']);
  });
});

describe('replies', () => {
  const opts = { acceptReply: 'DUNNO', onFault: 'defer' } as const;
  const v = (over: Partial<Verdict>): Verdict => ({ action: 'continue', headers: [], rule: 'r', stage: 'rcpt', evidence: [], ...over });

  test('reject uses the verdict code, status and text', () => {
    assert.equal(actionFor(v({ action: 'reject', code: 554, status: '5.7.1', text: 'no' }), opts), '554 5.7.1 no');
    assert.equal(actionFor(v({ action: 'reject' }), opts), '554 5.7.1 Rejected by policy');
    assert.equal(actionFor(v({ action: 'reject', code: 504, status: '5.5.2', text: 'x' }), opts), '504 5.5.2 x');
  });

  test('defer is always 4xx', () => {
    assert.equal(actionFor(v({ action: 'defer', code: 450, status: '4.1.8', text: 't' }), opts), '450 4.1.8 t');
    assert.equal(actionFor(v({ action: 'defer' }), opts), '450 4.7.1 Try again later');
    assert.equal(actionFor(v({ action: 'defer', code: 554, status: '5.7.1', text: 't' }), opts), '454 4.7.1 t');
    assert.equal(actionFor(v({ action: 'tarpit', code: 451, status: '4.4.3', text: 't' }), opts), '451 4.4.3 t');
  });

  test('accept is DUNNO or OK; continue and tag are DUNNO; a header turns them into PREPEND', () => {
    assert.equal(actionFor(v({ action: 'accept' }), opts), 'DUNNO');
    assert.equal(actionFor(v({ action: 'accept' }), { ...opts, acceptReply: 'OK' }), 'OK');
    assert.equal(actionFor(v({ action: 'continue' }), opts), 'DUNNO');
    assert.equal(actionFor(v({ action: 'tag' }), opts), 'DUNNO');
    const h: [string, string] = ['Authentication-Results', 'mx.test; spf=pass smtp.mailfrom=b.example'];
    assert.equal(actionFor(v({ action: 'accept' }), opts, h), 'PREPEND Authentication-Results: mx.test; spf=pass smtp.mailfrom=b.example');
    assert.equal(actionFor(v({ action: 'accept' }), { ...opts, acceptReply: 'OK' }, h), 'OK');
    assert.equal(actionFor(v({ action: 'reject' }), opts, h), '554 5.7.1 Rejected by policy');
  });

  test('CR/LF and long text are sanitised', () => {
    assert.equal(actionFor(v({ action: 'reject', code: 550, status: '5.7.1', text: 'a\r\nb\n\nc' }), opts), '550 5.7.1 a b c');
    const long = actionFor(v({ action: 'reject', text: 'x'.repeat(2000) }), opts);
    assert.ok(long.length < 512, `${long.length}`);
    assert.equal(sanitizeText('\x00\x01ok\x7f'), 'ok');
    assert.equal(prependAction(['X-Bad\nName:', 'v\r\nInjected: yes']), 'PREPEND X-BadName: v Injected: yes');
  });

  test('faults and invalid requests are never 5xx', () => {
    assert.equal(faultAction(opts), '451 4.3.0 Temporary policy service failure, try again later');
    assert.equal(faultAction({ ...opts, onFault: 'dunno' }), 'DUNNO');
    assert.equal(invalidRequestAction(opts), 'DEFER_IF_PERMIT Service temporarily unavailable');
    assert.equal(invalidRequestAction({ ...opts, onFault: 'dunno' }), 'DUNNO');
  });
});
