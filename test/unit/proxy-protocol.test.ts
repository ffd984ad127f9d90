import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  parseProxyHeader,
  parseProxyV1,
  parseProxyV2,
  ProxyHeaderError,
  readProxyHeader,
  trustedProxies,
  V2_SIGNATURE,
} from '../../src/gate/proxy-protocol.js';

/** A v2 header: command 1 = PROXY, 0 = LOCAL; family 1 = INET, 2 = INET6; transport 1 = STREAM. */
function v2(opts: { command?: number; family?: number; transport?: number; addr?: number[]; tlv?: number[]; version?: number; declaredLength?: number }): Buffer {
  const body = Buffer.from([...(opts.addr ?? []), ...(opts.tlv ?? [])]);
  const head = Buffer.alloc(4);
  head[0] = ((opts.version ?? 2) << 4) | (opts.command ?? 1);
  head[1] = ((opts.family ?? 1) << 4) | (opts.transport ?? 1);
  head.writeUInt16BE(opts.declaredLength ?? body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

const ipv4Block = [192, 0, 2, 10, 198, 51, 100, 1, 0xd4, 0x31, 0x00, 0x19]; // 192.0.2.10:54321 → 198.51.100.1:25
const ipv6Block = [
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07],
  ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 1],
  0x13, 0x88, 0x00, 0x19,
];

describe('PROXY v1', () => {
  test('TCP4 with the bytes after the header left over', () => {
    const buf = Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 54321 25\r\nEHLO x\r\n');
    const r = parseProxyV1(buf);
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok') return;
    assert.deepEqual(r.info, { kind: 'proxy', version: 1, protocol: 'TCP4', sourceAddress: '192.0.2.10', sourcePort: 54321, destAddress: '198.51.100.1', destPort: 25 });
    assert.equal(buf.subarray(r.length).toString(), 'EHLO x\r\n');
  });

  test('TCP6, with ::ffff: mapped addresses given back as IPv4', () => {
    const r = parseProxyV1(Buffer.from('PROXY TCP6 2001:DB8::7 ::ffff:198.51.100.1 5000 25\r\n'));
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok' || r.info.kind !== 'proxy') return;
    assert.equal(r.info.sourceAddress, '2001:db8::7');
    assert.equal(r.info.destAddress, '198.51.100.1');
  });

  test('UNKNOWN means the connection\'s own addresses', () => {
    for (const line of ['PROXY UNKNOWN\r\n', 'PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n']) {
      const r = parseProxyV1(Buffer.from(line));
      assert.equal(r.status, 'ok', line);
      if (r.status === 'ok') assert.equal(r.info.kind, 'local');
    }
  });

  test('truncated headers are incomplete until the limit, then invalid', () => {
    assert.equal(parseProxyV1(Buffer.from('PRO')).status, 'incomplete');
    assert.equal(parseProxyV1(Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 54321')).status, 'incomplete');
    const long = Buffer.from('PROXY TCP6 ' + 'f'.repeat(120));
    assert.equal(parseProxyV1(long).status, 'invalid');
    // 107 bytes with the CRLF is the most a v1 line may be
    const max = `PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n`;
    assert.equal(max.length, 104);
    assert.equal(parseProxyV1(Buffer.from(max)).status, 'ok');
    const over = Buffer.from(`PROXY TCP4 ${'1'.repeat(100)}\r\n`);
    assert.equal(parseProxyV1(over).status, 'invalid');
  });

  test('garbage is invalid', () => {
    for (const line of [
      'HELO example.org\r\n',
      'PROXY TCP4 192.0.2.10 198.51.100.1 54321\r\n',
      'PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n',
      'PROXY TCP4 192.0.2.10 198.51.100.1 65536 25\r\n',
      'PROXY TCP4 192.0.2.10 198.51.100.1 025 25\r\n',
      'PROXY UDP4 192.0.2.10 198.51.100.1 1 25\r\n',
      'PROXY TCP4  192.0.2.10 198.51.100.1 1 25\r\n',
      'PROXY TCP4 192.0.2.010 198.51.100.1 1 25\r\n',
    ]) {
      assert.equal(parseProxyHeader(Buffer.from(line)).status, 'invalid', line);
    }
  });
});

describe('PROXY v2', () => {
  test('TCP over IPv4, TLVs skipped', () => {
    const buf = Buffer.concat([v2({ addr: ipv4Block, tlv: [0x04, 0x00, 0x02, 0xab, 0xcd] }), Buffer.from('EHLO')]);
    const r = parseProxyV2(buf);
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok') return;
    assert.deepEqual(r.info, { kind: 'proxy', version: 2, protocol: 'TCP4', sourceAddress: '192.0.2.10', sourcePort: 54321, destAddress: '198.51.100.1', destPort: 25 });
    assert.equal(buf.subarray(r.length).toString(), 'EHLO');
  });

  test('TCP over IPv6, ::ffff: mapped', () => {
    const r = parseProxyHeader(v2({ family: 2, addr: ipv6Block }));
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok' || r.info.kind !== 'proxy') return;
    assert.equal(r.info.sourceAddress, '2001:db8::7');
    assert.equal(r.info.sourcePort, 5000);
    assert.equal(r.info.destAddress, '198.51.100.1');
  });

  test('LOCAL, UNSPEC and unix sockets mean the connection\'s own addresses', () => {
    for (const h of [v2({ command: 0, family: 0, transport: 0 }), v2({ command: 0, addr: ipv4Block }), v2({ family: 0, transport: 0 }), v2({ family: 3, addr: new Array(216).fill(0) })]) {
      const r = parseProxyV2(h);
      assert.equal(r.status, 'ok');
      if (r.status === 'ok') assert.equal(r.info.kind, 'local');
    }
  });

  test('truncated, too short, oversized and unknown versions', () => {
    const full = v2({ addr: ipv4Block });
    for (let n = 1; n < full.length; n++) assert.equal(parseProxyV2(full.subarray(0, n)).status, 'incomplete', `${n} bytes`);
    assert.equal(parseProxyV2(v2({ addr: [1, 2, 3] })).status, 'invalid'); // address block too short for INET
    assert.equal(parseProxyV2(v2({ declaredLength: 60000 })).status, 'invalid'); // announced length over the cap, rejected before it arrives
    assert.equal(parseProxyV2(v2({ version: 1, addr: ipv4Block })).status, 'invalid');
    assert.equal(parseProxyV2(v2({ command: 5, addr: ipv4Block })).status, 'invalid');
    const badSig = Buffer.from(full);
    badSig[5] = 0x41;
    assert.equal(parseProxyHeader(badSig).status, 'invalid');
  });
});

describe('readProxyHeader on a socket', () => {
  const servers: net.Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  async function pair(): Promise<{ client: net.Socket; server: net.Socket }> {
    const srv = net.createServer();
    servers.push(srv);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address() as net.AddressInfo;
    const accepted = once(srv, 'connection');
    const client = net.connect(port, '127.0.0.1');
    const [server] = (await accepted) as [net.Socket];
    return { client, server };
  }

  test('a header sent in pieces, followed by SMTP bytes', async () => {
    const { client, server } = await pair();
    const reading = readProxyHeader(server, { timeoutMs: 2000 });
    const bytes = Buffer.concat([v2({ addr: ipv4Block }), Buffer.from('EHLO early\r\n')]);
    client.write(bytes.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    client.write(bytes.subarray(5, 20));
    await new Promise((r) => setTimeout(r, 20));
    client.write(bytes.subarray(20));
    const { info, rest } = await reading;
    assert.equal(info.kind, 'proxy');
    if (info.kind === 'proxy') assert.equal(info.sourceAddress, '192.0.2.10');
    assert.equal(rest.toString(), 'EHLO early\r\n');
    assert.equal(server.isPaused(), true);
    client.destroy();
    server.destroy();
  });

  test('a client that sends no header is refused at the deadline', async () => {
    const { client, server } = await pair();
    const t0 = performance.now();
    await assert.rejects(readProxyHeader(server, { timeoutMs: 100 }), (e: Error) => e instanceof ProxyHeaderError && /within 100 ms/.test(e.message));
    assert.ok(performance.now() - t0 < 1000);
    client.destroy();
    server.destroy();
  });

  test('an SMTP client talking straight away is refused at its first bytes', async () => {
    const { client, server } = await pair();
    const reading = readProxyHeader(server, { timeoutMs: 2000 });
    client.write('EHLO plain.example\r\n');
    await assert.rejects(reading, /does not start with a PROXY header/);
    client.destroy();
    server.destroy();
  });

  test('endless garbage after "PROXY " stops at 107 bytes', async () => {
    const { client, server } = await pair();
    const reading = readProxyHeader(server, { timeoutMs: 2000 });
    client.write('PROXY ' + 'x'.repeat(500));
    await assert.rejects(reading, /longer than 107 bytes/);
    client.destroy();
    server.destroy();
  });

  test('closing early is an error, not a hang', async () => {
    const { client, server } = await pair();
    const reading = readProxyHeader(server, { timeoutMs: 2000 });
    client.end('PROXY TCP4 1.2');
    await assert.rejects(reading, /closed before/);
    server.destroy();
  });
});

describe('trusted proxies', () => {
  test('addresses and CIDRs of both families; mapped peers match IPv4 entries', () => {
    const trusted = trustedProxies(['10.0.0.0/8', '192.0.2.7', '2001:db8:1::/48']);
    assert.equal(trusted('10.1.2.3'), true);
    assert.equal(trusted('::ffff:10.1.2.3'), true);
    assert.equal(trusted('192.0.2.7'), true);
    assert.equal(trusted('192.0.2.8'), false);
    assert.equal(trusted('2001:db8:1:ffff::1'), true);
    assert.equal(trusted('2001:db8:2::1'), false);
    assert.equal(trusted('not an ip'), false);
    assert.equal(trustedProxies([])('10.0.0.1'), false);
  });

  test('an invalid entry throws at load', () => {
    assert.throws(() => trustedProxies(['10.0.0.0/33']), /invalid trusted proxy/);
    assert.throws(() => trustedProxies(['example.org']), /invalid trusted proxy/);
  });
});
