// The milter codec: framing with a length cap checked before the data is
// read, commands decoded strictly (anything the protocol does not allow is
// `malformed`, never a throw), replies encoded as the protocol spells them.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PacketReader, decodeCommand, replyCode, insertHeader, changeHeader, optnegReply, simpleReply } from '../../src/milter/codec.js';
import { negotiate, WANTED_MACROS } from '../../src/milter/negotiate.js';
import { ACTION, PROTO } from '../../src/milter/protocol.js';
import { packet, z } from '../helpers/milter-client.js';

function frames(reader: PacketReader, ...chunks: Buffer[]) {
  return chunks.flatMap((c) => reader.push(c));
}

describe('milter framing', () => {
  test('packets split anywhere, and several in one chunk, come out whole and in order', () => {
    const bytes = Buffer.concat([packet('H', z('client.example')), packet('N'), packet('B', 'body')]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = new PacketReader(1024);
      const out = frames(r, bytes.subarray(0, cut), bytes.subarray(cut));
      assert.deepEqual(
        out.map((e) => (e.kind === 'packet' ? `${e.command}:${e.data.toString('latin1')}` : e.kind)),
        ['H:client.example\0', 'N:', 'B:body'],
        `cut at ${cut}`,
      );
    }
  });

  test('attack: a length over the cap is refused from its 4 bytes, before any data is held', () => {
    const r = new PacketReader(65536 + 1024);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(0xfffffff0, 0);
    const out = r.push(head);
    assert.equal(out.length, 1);
    assert.equal(out[0].kind, 'error');
    assert.match((out[0] as { problem: string }).problem, /over the limit/);
    assert.equal(r.pending, 0);
    // Nothing more is read after an error: the stream is out of step.
    assert.deepEqual(r.push(packet('N')), []);
  });

  test('attack: a packet one byte over the cap is refused, one at the cap is read', () => {
    const cap = 100;
    assert.equal(new PacketReader(cap).push(packet('B', Buffer.alloc(cap - 1)))[0].kind, 'packet');
    assert.equal(new PacketReader(cap).push(packet('B', Buffer.alloc(cap)))[0].kind, 'error');
  });

  test('attack: a zero length (no command byte) is an error', () => {
    assert.equal(new PacketReader(100).push(Buffer.from([0, 0, 0, 0]))[0].kind, 'error');
  });
});

describe('milter commands', () => {
  const bad = (cmd: string, data: string | Buffer) => decodeCommand(cmd, typeof data === 'string' ? Buffer.from(data, 'latin1') : data).kind;

  test('well-formed commands decode', () => {
    const on = Buffer.alloc(12);
    on.writeUInt32BE(6, 0);
    on.writeUInt32BE(0x1ff, 4);
    on.writeUInt32BE(0x1fffff, 8);
    assert.deepEqual(decodeCommand('O', on), { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });
    assert.deepEqual(decodeCommand('D', Buffer.from(`C${z('j', 'mx.test', '{client_ptr}', 'a.example')}`)), {
      kind: 'macro',
      for: 'C',
      macros: [
        ['j', 'mx.test'],
        ['{client_ptr}', 'a.example'],
      ],
    });
    const port = Buffer.from([0x1f, 0x90]);
    assert.deepEqual(decodeCommand('C', Buffer.concat([Buffer.from('a.example\x004'), port, Buffer.from('192.0.2.1\0')])), {
      kind: 'connect',
      hostname: 'a.example',
      family: '4',
      port: 8080,
      address: '192.0.2.1',
    });
    assert.deepEqual(decodeCommand('C', Buffer.from('localhost\0U')), { kind: 'connect', hostname: 'localhost', family: 'U' });
    assert.deepEqual(decodeCommand('M', Buffer.from(z('<a@b.example>', 'SIZE=10'))), { kind: 'mail', args: ['<a@b.example>', 'SIZE=10'] });
    assert.deepEqual(decodeCommand('L', Buffer.from(z('Subject', ' hi'))), { kind: 'header', name: 'Subject', value: ' hi' });
    assert.equal(decodeCommand('E', Buffer.alloc(0)).kind, 'eom');
    for (const [c, k] of [['T', 'data'], ['N', 'eoh'], ['A', 'abort'], ['Q', 'quit'], ['K', 'quit_nc']]) assert.equal(decodeCommand(c, Buffer.alloc(0)).kind, k);
  });

  test('attack: malformed packets of every command are `malformed`, never a throw', () => {
    assert.equal(bad('O', Buffer.alloc(11)), 'malformed');
    assert.equal(bad('D', ''), 'malformed');
    assert.equal(bad('D', `C${z('j')}`), 'malformed'); // a name without a value
    assert.equal(bad('D', 'Cj\0mx'), 'malformed'); // value not terminated
    assert.equal(bad('C', 'host'), 'malformed');
    assert.equal(bad('C', 'host\0'), 'malformed');
    assert.equal(bad('C', 'host\x004\x00\x19'), 'malformed');
    assert.equal(bad('C', 'host\x004\x00\x19192.0.2.1'), 'malformed'); // address not terminated
    assert.equal(bad('C', 'host\x004\x00\x19192.0.2.1\0extra\0'), 'malformed');
    assert.equal(bad('C', 'host\x00X\x00\x19192.0.2.1\0'), 'malformed');
    assert.equal(bad('C', 'host\x00Ujunk'), 'malformed');
    assert.equal(bad('H', 'helo'), 'malformed');
    assert.equal(bad('H', z('a', 'b')), 'malformed');
    assert.equal(bad('M', ''), 'malformed');
    assert.equal(bad('R', '<a@b>'), 'malformed');
    assert.equal(bad('L', z('Subject')), 'malformed');
    assert.equal(bad('L', z('Subject', 'x', 'y')), 'malformed');
    assert.equal(bad('T', 'x'), 'malformed');
    assert.equal(bad('Q', 'x'), 'malformed');
    assert.equal(bad('Z', ''), 'malformed');
    assert.equal(bad('\0', ''), 'malformed');
  });

  test('attack: random bytes never throw', () => {
    let seed = 20261207;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 20000; i++) {
      const data = Buffer.alloc(rnd() % 40);
      for (let j = 0; j < data.length; j++) data[j] = rnd() % 4 === 0 ? 0 : rnd() & 0xff;
      const cmd = 'OCDHMRLTNBEAQKUZ'[rnd() % 16];
      assert.doesNotThrow(() => decodeCommand(cmd, data));
    }
  });
});

describe('milter replies', () => {
  test('replies are framed as the protocol spells them', () => {
    assert.deepEqual(simpleReply('c'), Buffer.from([0, 0, 0, 1, 0x63]));
    const y = replyCode(550, '5.7.1', 'no 100% sure');
    assert.equal(y.readUInt32BE(0), y.length - 4);
    assert.equal(y.subarray(4).toString('latin1'), 'y550 5.7.1 no 100%% sure\0');
    const i = insertHeader(0, 'Authentication-Results', 'mx.test; spf=pass');
    assert.equal(i[4], 0x69);
    assert.equal(i.readUInt32BE(5), 0);
    assert.equal(i.subarray(9).toString('latin1'), 'Authentication-Results\0mx.test; spf=pass\0');
    const m = changeHeader(2, 'Authentication-Results', '');
    assert.equal(m.readUInt32BE(5), 2);
    assert.equal(m.subarray(9).toString('latin1'), 'Authentication-Results\0\0');
    const o = optnegReply(6, 0x111, 0x100580, [[0, 'j {client_ptr}']]);
    assert.equal(o.readUInt32BE(0), o.length - 4);
    assert.equal(o.readUInt32BE(5), 6);
    assert.equal(o.readUInt32BE(9), 0x111);
    assert.equal(o.readUInt32BE(13), 0x100580);
    assert.equal(o.readUInt32BE(17), 0);
    assert.equal(o.subarray(21).toString('latin1'), 'j {client_ptr}\0');
  });

  test('negotiation takes only what the MTA offers', () => {
    const all = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff });
    assert.ok(all.ok);
    assert.equal(all.agreement.actions, ACTION.ADDHDRS | ACTION.CHGHDRS | ACTION.SETSYMLIST);
    assert.equal(all.agreement.protocol, PROTO.NOUNKNOWN | PROTO.NR_HDR | PROTO.HDR_LEADSPC | PROTO.SKIP);
    assert.deepEqual(all.agreement.symlists, WANTED_MACROS);
    const old = negotiate({ version: 2, actions: 0x1f, protocol: 0x7f });
    assert.ok(old.ok);
    assert.equal(old.agreement.version, 2);
    assert.equal(old.agreement.protocol, 0);
    assert.deepEqual(old.agreement.symlists, []);
    assert.equal(old.agreement.skip, false);
    assert.equal(negotiate({ version: 1, actions: 0, protocol: 0 }).ok, false);
  });
});
