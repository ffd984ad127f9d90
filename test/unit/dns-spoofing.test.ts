// Issue 16 item 8: forged DNS answers. An attacker on loopback who knows the
// query id (the best case for them) sends answers from another port, or with
// another question; none may be believed. Queries leave from several random
// ports, from sockets of the resolver's family bound to loopback when the
// resolver is there.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import { DnsClient } from '../../src/dns/client.js';
import { parseServer } from '../../src/dns/servers.js';
import { routeTo } from '../../src/dns/udp-sockets.js';

interface Seen {
  q: DecodedPacket;
  rinfo: dgram.RemoteInfo;
}

/** A UDP resolver on loopback: `answer` decides what goes back (datagrams in order, or nothing). */
async function resolverOn(host: '127.0.0.1' | '::1', answer: (seen: Seen, sock: dgram.Socket) => void): Promise<{ server: string; seen: Seen[]; close(): Promise<void> }> {
  const sock = dgram.createSocket(host === '::1' ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () => resolve());
  });
  const seen: Seen[] = [];
  sock.on('message', (msg, rinfo) => {
    const s = { q: dnsPacket.decode(msg), rinfo };
    seen.push(s);
    answer(s, sock);
  });
  const port = sock.address().port;
  return {
    server: host === '::1' ? `[::1]:${port}` : `127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

function aReply(q: DecodedPacket, data: string, over: Partial<Packet> = {}): Packet {
  const name = q.questions![0].name;
  return { type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED, questions: q.questions, answers: [{ type: 'A', name, ttl: 300, data }], ...over };
}

function send(sock: dgram.Socket, p: Packet, to: dgram.RemoteInfo): void {
  sock.send(dnsPacket.encode(p), to.port, to.address);
}

describe('forged DNS answers are not believed', () => {
  test('right id and question, but from another port: dropped; the true answer that follows is taken', async (t) => {
    const attacker = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => attacker.bind(0, '127.0.0.1', () => resolve()));
    t.after(() => attacker.close());
    // The attacker learns id and port as the query leaves (better than any real off-path attacker).
    const real = await resolverOn('127.0.0.1', ({ q, rinfo }, sock) => {
      for (let i = 0; i < 3; i++) send(attacker, aReply(q, '203.0.113.66'), rinfo);
      setTimeout(() => send(sock, aReply(q, '192.0.2.1'), rinfo), 50);
    });
    t.after(() => real.close());
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0 });
    t.after(() => client.close());
    assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    assert.equal(client.stats.dropped.wrongSource, 3);
  });

  test('right id and source, another question (name, type, class, two questions): dropped; the same question in other case is taken', async (t) => {
    const real = await resolverOn('127.0.0.1', ({ q, rinfo }, sock) => {
      const asked = q.questions![0];
      const forged = '203.0.113.66';
      send(sock, aReply(q, forged, { questions: [{ ...asked, name: 'evil.example.com' }] }), rinfo);
      send(sock, aReply(q, forged, { questions: [{ ...asked, type: 'AAAA' }] }), rinfo);
      send(sock, aReply(q, forged, { questions: [{ ...asked, class: 'CH' }] }), rinfo);
      send(sock, aReply(q, forged, { questions: [asked, { ...asked, name: 'evil.example.com' }] }), rinfo);
      send(sock, aReply(q, forged, { questions: [] }), rinfo);
      // 0x20-style case changes are the same question (RFC 4343).
      setTimeout(() => send(sock, aReply(q, '192.0.2.1', { questions: [{ ...asked, name: 'ExAmPlE.CoM' }], answers: [{ type: 'A', name: 'ExAmPlE.CoM', ttl: 300, data: '192.0.2.1' }] }), rinfo), 50);
    });
    t.after(() => real.close());
    const debug: string[] = [];
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0, logger: { debug: (_f, msg) => debug.push(msg) } });
    t.after(() => client.close());
    assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    assert.equal(client.stats.dropped.wrongQuestion, 5);
    assert.equal(debug.filter((m) => m.includes('wrongQuestion')).length, 5);
  });

  test('a reply to an id nobody waits for is counted as unknown', async (t) => {
    const real = await resolverOn('127.0.0.1', ({ q, rinfo }, sock) => {
      send(sock, aReply(q, '203.0.113.66', { id: ((q.id ?? 0) + 1) % 65536 }), rinfo);
      send(sock, aReply(q, '192.0.2.1'), rinfo);
    });
    t.after(() => real.close());
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0 });
    t.after(() => client.close());
    assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    assert.equal(client.stats.dropped.unknownId, 1);
  });
});

describe('source ports and local addresses', () => {
  test('queries leave from more than one random port, from sockets bound to loopback for a loopback resolver', async (t) => {
    const real = await resolverOn('127.0.0.1', ({ q, rinfo }, sock) => send(sock, aReply(q, '192.0.2.1'), rinfo));
    t.after(() => real.close());
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0 });
    t.after(() => client.close());
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.a(`n${i}.example.com`)));
    const ports = new Set(real.seen.map((s) => s.rinfo.port));
    assert.ok(ports.size >= 2, `40 queries left from ${ports.size} port(s)`);
    const local = client.localAddresses();
    assert.ok(local.length >= 1);
    for (const a of local) assert.equal(a.address, '127.0.0.1');
  });

  test('a socket is replaced by one on a new port after udpSocketQueries queries, and the old one is closed', async (t) => {
    const real = await resolverOn('127.0.0.1', ({ q, rinfo }, sock) => send(sock, aReply(q, '192.0.2.1'), rinfo));
    t.after(() => real.close());
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0, udpSockets: 1, udpSocketQueries: 5 });
    t.after(() => client.close());
    for (let i = 0; i < 20; i++) await client.a(`n${i}.example.com`);
    const ports = real.seen.map((s) => s.rinfo.port);
    for (let i = 0; i < 20; i += 5) assert.equal(new Set(ports.slice(i, i + 5)).size, 1, 'five queries per socket');
    assert.equal(new Set(ports).size, 4);
    assert.equal(client.stats.udpSockets, 4);
    assert.equal(client.localAddresses().length, 0, 'every used-up socket is closed once its last query is over');
  });

  test('a socket is replaced after udpSocketAgeMs', async (t) => {
    const real = await resolverOn('127.0.0.1', ({ q, rinfo }, sock) => send(sock, aReply(q, '192.0.2.1'), rinfo));
    t.after(() => real.close());
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0, udpSockets: 1, udpSocketAgeMs: 1 });
    t.after(() => client.close());
    await client.a('a.example.com');
    await new Promise((r) => setTimeout(r, 5));
    await client.a('b.example.com');
    assert.equal(client.stats.udpSockets, 2);
    assert.notEqual(real.seen[0].rinfo.port, real.seen[1].rinfo.port);
  });

  test('an IPv6 resolver is asked from a udp6 socket bound to ::1', async (t) => {
    let real: Awaited<ReturnType<typeof resolverOn>>;
    try {
      real = await resolverOn('::1', ({ q, rinfo }, sock) => send(sock, aReply(q, '192.0.2.1'), rinfo));
    } catch (e) {
      console.warn(`\n*** SKIPPED: no IPv6 loopback here (${(e as Error).message}) ***\n`);
      t.skip('no IPv6 loopback');
      return;
    }
    t.after(() => real.close());
    const client = new DnsClient({ servers: [parseServer(real.server)], timeoutMs: 2000, retries: 0 });
    t.after(() => client.close());
    assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    assert.equal(real.seen[0].rinfo.family, 'IPv6');
    for (const a of client.localAddresses()) assert.equal(a.address, '::1');
  });

  test('routes: family and local address for each kind of resolver address', () => {
    assert.deepEqual(routeTo('192.0.2.53'), { type: 'udp4', sendTo: '192.0.2.53', bindTo: '0.0.0.0' });
    assert.deepEqual(routeTo('127.0.0.53'), { type: 'udp4', sendTo: '127.0.0.53', bindTo: '127.0.0.1' });
    assert.deepEqual(routeTo('::ffff:127.0.0.1'), { type: 'udp4', sendTo: '127.0.0.1', bindTo: '127.0.0.1' });
    assert.deepEqual(routeTo('::1'), { type: 'udp6', sendTo: '::1', bindTo: '::1' });
    assert.deepEqual(routeTo('2001:db8::53'), { type: 'udp6', sendTo: '2001:db8::53', bindTo: '::' });
  });

  test('bad pool options are refused', () => {
    assert.throws(() => new DnsClient({ servers: [parseServer('127.0.0.1')], udpSockets: 0 }), /udpSockets must be a whole number > 0/);
  });
});
