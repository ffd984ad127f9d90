// The network DNS client against real servers on loopback: the fixture DNS
// server for zone behaviour, and a scripted UDP server for misbehaving ones.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import { DnsClient } from '../../src/dns/client.js';
import { DnsError } from '../../src/dns/types.js';
import { parseServer } from '../../src/dns/servers.js';
import { Zone } from '../../src/dns/zone.js';
import { loadZoneYaml, startFixtureDns, zoneFromYaml, zonesFromYaml, type FixtureDns } from '../helpers/fixture-dns.js';

const worldPath = fileURLToPath(new URL('../fixtures/dns-client-world.yaml', import.meta.url));

function rejectsWith(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DnsError, `expected a DnsError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

/** A UDP "server" whose replies a test scripts: each query → datagrams to send back. */
async function scriptedServer(script: (q: DecodedPacket) => Packet[]): Promise<{ server: string; close(): Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    for (const p of script(q)) sock.send(dnsPacket.encode(p), rinfo.port, rinfo.address);
  });
  return {
    server: `127.0.0.1:${sock.address().port}`,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

function reply(q: DecodedPacket, extra: Partial<Packet>): Packet {
  return { type: 'response', id: q.id, flags: 0, questions: q.questions, ...extra };
}

describe('DnsClient against the fixture DNS server', () => {
  let fx: FixtureDns;
  let client: DnsClient;
  const zone = loadZoneYaml(worldPath);
  // Enough TXT data (~4 KB) that a UDP answer cannot carry it even with EDNS 1232.
  const big = Array.from({ length: 30 }, (_, i) => `record ${String(i).padStart(2, '0')} ${'x'.repeat(120)}`);
  zone.load({ 'big.example.com': big.map((t) => ({ TXT: t })) });

  before(async () => {
    fx = await startFixtureDns(zone);
    // Generous: under a loaded machine a valid answer must never look like a timeout.
    client = new DnsClient({ servers: [parseServer(fx.server)], timeoutMs: 2000, retries: 1 });
  });
  after(async () => {
    client.close();
    await fx.close();
  });

  test('A and AAAA', async () => {
    assert.deepEqual((await client.a('example.com')).sort(), ['192.0.2.10', '192.0.2.11']);
    assert.deepEqual(await client.aaaa('example.com'), ['2001:db8::10']);
  });

  test('TXT joins the character-strings of each record with no separator', async () => {
    assert.deepEqual((await client.txt('example.com')).sort(), ['second record', 'v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all']);
    assert.deepEqual(await client.txt('utf8.example.com'), ['grüße']);
  });

  test('MX, including the null MX, without trailing dots', async () => {
    const mx = (await client.mx('example.com')).sort((a, b) => a.preference - b.preference);
    assert.deepEqual(mx, [
      { preference: 10, exchange: 'mx1.example.com' },
      { preference: 20, exchange: 'mx2.example.com' },
    ]);
    assert.deepEqual(await client.mx('null-mx.example.com'), [{ preference: 0, exchange: '' }]);
  });

  test('PTR for IPv4 and IPv6 addresses', async () => {
    assert.deepEqual((await client.ptr('192.0.2.10')).sort(), ['alias10.example.com', 'host10.example.com']);
    assert.deepEqual(await client.ptr('2001:db8::10'), ['host10.example.com']);
    await assert.rejects(client.ptr('not-an-ip'), rejectsWith('BADNAME'));
  });

  test('CNAME chains in the answer are followed; the chain and TTLs are reported', async () => {
    assert.deepEqual((await client.a('www.example.com')).sort(), ['192.0.2.10', '192.0.2.11']);
    const ans = await client.query('www.example.com', 'A');
    assert.deepEqual(
      ans.chain.map((c) => `${c.name}->${c.data}`),
      ['www.example.com->web.example.com', 'web.example.com->example.com'],
    );
    assert.equal(ans.ttl, 120); // the records' TTL: 120; the chain's 300
    assert.ok(ans.records.every((r) => r.name === 'example.com' && r.ttl === 120));
    await assert.rejects(client.a('dangling.example.com'), rejectsWith('NXDOMAIN'));
  });

  test('NXDOMAIN and NODATA are told apart, with the SOA minimum as negative TTL', async () => {
    await assert.rejects(client.a('missing.example.com'), rejectsWith('NXDOMAIN'));
    await assert.rejects(client.aaaa('null-mx.example.com'), rejectsWith('NODATA'));
    const nx = await client.query('missing.example.com', 'A');
    assert.equal(nx.status, 'NXDOMAIN');
    assert.equal(nx.ttl, 60);
    const nodata = await client.query('null-mx.example.com', 'TXT');
    assert.equal(nodata.status, 'NODATA');
    assert.equal(nodata.ttl, 60);
  });

  test('no answer in time gives TIMEOUT after every attempt', async (t) => {
    const before = fx.queries.length;
    assert.deepEqual(await client.a('slow.example.com'), ['192.0.2.20']); // listed before TIMEOUT
    const impatient = new DnsClient({ servers: [parseServer(fx.server)], timeoutMs: 100, retries: 1 });
    t.after(() => impatient.close());
    await assert.rejects(impatient.txt('slow.example.com'), rejectsWith('TIMEOUT'));
    assert.deepEqual(fx.queries.slice(before), ['A slow.example.com', 'TXT slow.example.com', 'TXT slow.example.com']);
  });

  test('SERVFAIL from the server', async () => {
    await assert.rejects(client.a('broken.example.com'), rejectsWith('SERVFAIL'));
  });

  test('a truncated UDP answer is asked again over TCP', async () => {
    const before = fx.tcpQueries.length;
    const txt = await client.txt('big.example.com');
    assert.deepEqual(txt.sort(), [...big].sort());
    assert.deepEqual(fx.tcpQueries.slice(before), ['TXT big.example.com']);
  });

  test('names with ":" and "/" are sent as they are', async () => {
    assert.deepEqual(await client.a('foo:bar/baz.example.com'), ['192.0.2.99']);
  });

  test('an over-long label or name is BADNAME and nothing is sent', async () => {
    const before = fx.queries.length;
    await assert.rejects(client.a(`${'a'.repeat(64)}.example.com`), rejectsWith('BADNAME'));
    await assert.rejects(client.txt(`${'a.'.repeat(127)}com`), rejectsWith('BADNAME')); // 257 octets
    await assert.rejects(client.a('a..example.com'), rejectsWith('BADNAME'));
    await assert.rejects(client.a(''), rejectsWith('BADNAME'));
    assert.equal(fx.queries.length, before);
    // The limits themselves are fine: a 63-octet label, a trailing dot.
    await assert.rejects(client.a(`${'a'.repeat(63)}.example.com`), rejectsWith('NXDOMAIN'));
    assert.deepEqual(await client.aaaa('example.com.'), ['2001:db8::10']);
  });

  test('the zone can change under a running server', async () => {
    fx.setZone(new Zone({ 'example.com': [{ A: '198.51.100.1' }] }));
    try {
      assert.deepEqual(await client.a('example.com'), ['198.51.100.1']);
    } finally {
      fx.setZone(zone);
    }
  });
});

describe('DnsClient with several servers and misbehaving ones', () => {
  test('a silent server is skipped on the next attempt', async () => {
    const silent = await scriptedServer(() => []);
    const fx = await startFixtureDns(new Zone({ 'example.com': [{ A: '192.0.2.1' }] }));
    const client = new DnsClient({ servers: [parseServer(silent.server), parseServer(fx.server)], timeoutMs: 300, retries: 1 });
    try {
      assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    } finally {
      client.close();
      await silent.close();
      await fx.close();
    }
  });

  test('SERVFAIL from one server: the next one is asked', async () => {
    const failing = await scriptedServer((q) => [reply(q, { flags: 2 })]);
    const fx = await startFixtureDns(new Zone({ 'example.com': [{ A: '192.0.2.1' }] }));
    const client = new DnsClient({ servers: [parseServer(failing.server), parseServer(fx.server)], timeoutMs: 500, retries: 1 });
    try {
      assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    } finally {
      client.close();
      await failing.close();
      await fx.close();
    }
  });

  test('stray answers (wrong id, wrong question) are ignored', async () => {
    const s = await scriptedServer((q) => {
      const good = reply(q, { answers: [{ type: 'A', name: 'example.com', ttl: 30, data: '192.0.2.1' }] });
      return [
        { ...good, id: ((q.id ?? 0) + 1) % 65536, answers: [{ type: 'A', name: 'example.com', ttl: 30, data: '203.0.113.66' }] },
        { ...good, questions: [{ type: 'A', name: 'evil.example.com' }], answers: [{ type: 'A', name: 'evil.example.com', ttl: 30, data: '203.0.113.66' }] },
        { ...good, type: 'query' },
        good,
      ];
    });
    const client = new DnsClient({ servers: [parseServer(s.server)], timeoutMs: 500, retries: 0 });
    try {
      assert.deepEqual(await client.a('example.com'), ['192.0.2.1']);
    } finally {
      client.close();
      await s.close();
    }
  });

  test('rcodes map to DnsError codes', async () => {
    const s = await scriptedServer((q) => {
      const rcode = { 'refused.test': 5, 'formerr.test': 1, 'notimp.test': 4 }[q.questions?.[0]?.name ?? ''] ?? 0;
      // FORMERR with an OPT record: the server understood EDNS, so the client must not retry without it.
      const additionals: Packet['additionals'] = rcode === 1 ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
      return [reply(q, { flags: rcode, additionals })];
    });
    const client = new DnsClient({ servers: [parseServer(s.server)], timeoutMs: 500, retries: 0 });
    try {
      await assert.rejects(client.a('refused.test'), rejectsWith('REFUSED'));
      await assert.rejects(client.a('formerr.test'), rejectsWith('FORMERR'));
      await assert.rejects(client.a('notimp.test'), rejectsWith('SERVFAIL'));
      await assert.rejects(client.a('empty.test'), rejectsWith('NODATA'));
    } finally {
      client.close();
      await s.close();
    }
  });

  test('a server without EDNS (FORMERR, no OPT) is asked again without EDNS', async () => {
    const seen: boolean[] = [];
    const s = await scriptedServer((q) => {
      const edns = (q.additionals ?? []).some((a) => a.type === 'OPT');
      seen.push(edns);
      if (edns) return [reply(q, { flags: 1 })];
      return [reply(q, { answers: [{ type: 'A', name: 'old.test', ttl: 30, data: '192.0.2.7' }] })];
    });
    const client = new DnsClient({ servers: [parseServer(s.server)], timeoutMs: 500, retries: 0 });
    try {
      assert.deepEqual(await client.a('old.test'), ['192.0.2.7']);
      assert.deepEqual(seen, [true, false]);
    } finally {
      client.close();
      await s.close();
    }
  });

  test('a CNAME loop in the answer is SERVFAIL', async () => {
    const s = await scriptedServer((q) => [
      reply(q, {
        answers: [
          { type: 'CNAME', name: 'a.test', ttl: 30, data: 'b.test' },
          { type: 'CNAME', name: 'b.test', ttl: 30, data: 'a.test' },
        ],
      }),
    ]);
    const client = new DnsClient({ servers: [parseServer(s.server)], timeoutMs: 500, retries: 0 });
    try {
      await assert.rejects(client.a('a.test'), rejectsWith('SERVFAIL'));
    } finally {
      client.close();
      await s.close();
    }
  });

  test('close() ends waiting queries with TIMEOUT at once', async () => {
    const silent = await scriptedServer(() => []);
    const client = new DnsClient({ servers: [parseServer(silent.server)], timeoutMs: 60_000, retries: 3 });
    try {
      const p = client.a('example.com');
      setImmediate(() => client.close());
      await assert.rejects(p, rejectsWith('TIMEOUT'));
    } finally {
      await silent.close();
    }
  });

  test('IPv6 loopback server', async (t) => {
    let fx: FixtureDns;
    try {
      fx = await startFixtureDns(new Zone({ 'example.com': [{ AAAA: '2001:db8::1' }] }), { host: '::1' });
    } catch (e) {
      console.warn(`\n*** SKIPPED: no IPv6 loopback here (${(e as Error).message}) ***\n`);
      t.skip('no IPv6 loopback');
      return;
    }
    const client = new DnsClient({ servers: [parseServer(fx.server)], timeoutMs: 500, retries: 0 });
    try {
      assert.match(fx.server, /^\[::1\]:\d+$/);
      assert.deepEqual(await client.aaaa('example.com'), ['2001:db8::1']);
    } finally {
      client.close();
      await fx.close();
    }
  });
});

describe('zone YAML loading', () => {
  test('suite-shaped documents: one zone each, or merged', () => {
    const text = ['zonedata:\n  a.test:\n    - A: 192.0.2.1\n', '---\nzonedata:\n  b.test:\n    - TXT: "hi"\n'].join('');
    const [za, zb] = zonesFromYaml(text);
    assert.equal(za.lookup('a.test', 'A').kind, 'answer');
    assert.equal(zb.lookup('a.test', 'A').kind, 'nxdomain');
    assert.equal(zb.lookup('b.test', 'TXT').kind, 'answer');
    const merged = zoneFromYaml(text);
    assert.equal(merged.lookup('a.test', 'A').kind, 'answer');
    assert.equal(merged.lookup('b.test', 'TXT').kind, 'answer');
  });

  test('bare zone data, and a readable error for a wrong shape', () => {
    assert.equal(zoneFromYaml('c.test:\n  - MX: [10, mx.c.test]\n').lookup('c.test', 'MX').kind, 'answer');
    assert.throws(() => zoneFromYaml('- just\n- a list\n'), /expected a mapping/);
  });
});
