// frontline's own DNSBL/DNSWL zone (src/enforce/zone/), asked with the real
// `dig`: RFC 5782 test points, a code and a TXT reason per category, TTLs
// below the time a listing has left, SOA and NS at the apex, NXDOMAIN with
// the SOA, REFUSED for other zones, malformed names and messages, EDNS0,
// truncation and the TCP retry, the query ACL, the per-client rate limit,
// and the store's change feed followed from another process.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { loadConfig } from '../../src/config/load.js';
import { openConfiguredStore } from '../../src/cli/store.js';
import { startZone, type RunningZone } from '../../src/enforce/zone/index.js';
import { meaningOf, namesOfNetwork } from '../../src/enforce/zone/names.js';
import { answer } from '../../src/enforce/zone/answer.js';
import { FastPath } from '../../src/enforce/zone/fast.js';
import { parseNetwork } from '../../src/core/cidr.js';
import type { Store } from '../../src/store/index.js';
import { findBinary, requireBinary } from '../helpers/binaries.js';
import { dig, type DigAnswer } from '../helpers/dig.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { runCli } from '../helpers/cli.js';

const BL = 'bl.zone.test';
const WL = 'wl.zone.test';

/** The nibble name of an IPv6 address written in full (8 groups of 4). */
function nibbles(full: string): string {
  return full.replace(/:/g, '').split('').reverse().join('.');
}

function rev4(ip: string): string {
  return ip.split('.').reverse().join('.');
}

describe('query names (RFC 5782 §2.1, §2.4)', () => {
  test('IPv4 reversed, IPv6 nibbles, prefixes are empty non-terminals, anything else NXDOMAIN', () => {
    assert.deepEqual(meaningOf(['2', '0', '0', '127']), { kind: 'ip', ip: '127.0.0.2' });
    // Four one-digit labels: an IPv4 address and the start of IPv6 names.
    assert.deepEqual(meaningOf(['4', '3', '2', '1']), { kind: 'ambiguous', ip: '1.2.3.4' });
    assert.deepEqual(meaningOf(['a', 'b', 'c', 'd']), { kind: 'partial' });
    assert.deepEqual(meaningOf(['9', '2', '0', '192']), { kind: 'ip', ip: '192.0.2.9' });
    assert.deepEqual(meaningOf(['0', '127']), { kind: 'partial' });
    assert.deepEqual(meaningOf(nibbles('2001:0db8:0000:0000:0000:0000:0000:0005').split('.')), { kind: 'ip', ip: '2001:0db8:0000:0000:0000:0000:0000:0005' });
    for (const bad of [['256', '0', '0', '1'], ['01', '0', '0', '1'], ['x'], ['1', '2', '3', '4', '55'], Array(33).fill('0'), ['', '1'], ['-1', '0', '0', '1'], ['1e3', '0', '0', '1']]) {
      assert.deepEqual(meaningOf(bad), { kind: 'none' }, bad.join('.'));
    }
  });

  test('a prefix becomes the wildcards of the boundary below it (BIND export)', () => {
    assert.deepEqual(namesOfNetwork(parseNetwork('192.0.2.9')!), ['9.2.0.192']);
    assert.deepEqual(namesOfNetwork(parseNetwork('192.0.2.0/24')!), ['*.2.0.192']);
    assert.deepEqual(namesOfNetwork(parseNetwork('10.0.0.0/23')!), ['*.0.0.10', '*.1.0.10']);
    assert.equal(namesOfNetwork(parseNetwork('10.16.0.0/12')!)?.length, 16);
    assert.deepEqual(namesOfNetwork(parseNetwork('2001:db8::/31')!), ['*.8.b.d.0.1.0.0.2', '*.9.b.d.0.1.0.0.2']);
  });
});

describe('the zone server, asked with dig', () => {
  let dir: string;
  let store: Store;
  let zone: RunningZone;
  let configPath: string;
  const clock = new ManualClock();
  let server: { host: string; port: number };
  let digBin: string | undefined;

  before(async () => {
    digBin = findBinary('dig');
    dir = mkdtempSync(join(tmpdir(), 'fl-zone-'));
    configPath = join(dir, 'frontline.yaml');
    writeFileSync(
      configPath,
      [
        `data_dir: ${join(dir, 'data')}`,
        'my_networks: [127.0.0.0/8, 10.20.0.0/16]',
        'lists:',
        '  deny: { type: ip, entries: [198.51.100.0/24] }',
        '  allow: { type: ip, entries: [198.51.100.7] }',
        'zone:',
        '  listen: 127.0.0.1:0',
        `  bl_name: ${BL}`,
        `  wl_name: ${WL}`,
        '  bl_lists: [deny, more-deny]',
        '  ns: ns1.zone.test',
        '  ttl_s: 300',
        '  negative_ttl_s: 45',
        '  rate_limit: { per_s: 0 }',
        '',
      ].join('\n'),
    );
    const config = loadConfig(configPath);
    store = await openConfiguredStore(config, { clock });
    zone = (await startZone(config, { store, clock }))!;
    const [host, port] = zone.addresses[0].split(':');
    server = { host, port: Number(port) };
  });
  after(async () => {
    await zone?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = (t: { name: string }, name: string, type = 'A', options: string[] = []): Promise<DigAnswer> | undefined => {
    if (!digBin) return undefined;
    return dig(digBin, server, name, type, options);
  };

  test('RFC 5782 test points: 127.0.0.2 and ::FFFF:7F00:2 listed, 127.0.0.1 not, in both zones', async (t) => {
    if (!requireBinary('dig', t)) return;
    for (const apex of [BL, WL]) {
      const a = (await ask(t, `2.0.0.127.${apex}`))!;
      assert.equal(a.status, 'NOERROR', a.text);
      assert.deepEqual(a.answer.map((r) => `${r.type} ${r.data}`), ['A 127.0.0.2']);
      assert.ok(a.flags.includes('aa'), a.text);
      const txt = (await ask(t, `2.0.0.127.${apex}`, 'TXT'))!;
      assert.deepEqual(txt.answer.map((r) => r.data), ['"RFC 5782 test point"']);
      const no = (await ask(t, `1.0.0.127.${apex}`))!;
      assert.equal(no.status, 'NXDOMAIN', no.text);
      const v6 = (await ask(t, `${nibbles('0000:0000:0000:0000:0000:ffff:7f00:0002')}.${apex}`))!;
      assert.deepEqual(v6.answer.map((r) => r.data), ['127.0.0.2'], v6.text);
      const v6no = (await ask(t, `${nibbles('0000:0000:0000:0000:0000:ffff:7f00:0001')}.${apex}`))!;
      assert.equal(v6no.status, 'NXDOMAIN', v6no.text);
    }
  });

  test('a ban answers its category code, a TXT with the reason and the end, a TTL below the time left', async (t) => {
    if (!requireBinary('dig', t)) return;
    await store.ban({ cidr: '192.0.2.9', reason: 'ssh password guessing', category: 'brute-force', source: 'test', durationSeconds: 120 });
    await store.ban({ cidr: '192.0.2.10', reason: 'sent to spamtrap <trap@x.test>', category: 'spamtrap', source: 'test', durationSeconds: 3600 });
    await store.ban({ cidr: '192.0.2.11', reason: '', category: 'manual', source: 'test', durationSeconds: 3600 });
    await store.ban({ cidr: '192.0.2.12', reason: 'scanner', category: 'probe', source: 'test', durationSeconds: 3600 });
    await store.ban({ cidr: '192.0.2.13', reason: 'odd', category: 'something-new', source: 'test', durationSeconds: 3600 });
    const a = (await ask(t, `${rev4('192.0.2.9')}.${BL}`))!;
    assert.deepEqual(a.answer.map((r) => r.data), ['127.0.0.2'], a.text);
    assert.ok(a.answer[0].ttl < 120 && a.answer[0].ttl >= 100, `TTL ${a.answer[0].ttl} below the 120 s left`);
    const txt = (await ask(t, `${rev4('192.0.2.9')}.${BL}`, 'TXT'))!;
    const until = new Date(clock.now() + 120_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    assert.deepEqual(txt.answer.map((r) => r.data), [`"192.0.2.9/32 banned (brute-force): ssh password guessing; until ${until}"`]);
    for (const [ip, code] of [['192.0.2.10', 3], ['192.0.2.11', 4], ['192.0.2.12', 5], ['192.0.2.13', 9]] as const) {
      const r = (await ask(t, `${rev4(ip)}.${BL}`))!;
      assert.deepEqual(r.answer.map((x) => x.data), [`127.0.0.${code}`], r.text);
      assert.equal(r.answer[0].ttl, 300, 'the configured TTL when the ban lasts longer');
    }
    // Not in the allow zone.
    assert.equal((await ask(t, `${rev4('192.0.2.9')}.${WL}`))!.status, 'NXDOMAIN');
    // An expired ban is not listed, before any purge.
    clock.advance(121);
    assert.equal((await ask(t, `${rev4('192.0.2.9')}.${BL}`))!.status, 'NXDOMAIN');
    clock.advance(-121);
  });

  test('IPv6 bans by nibbles; a prefix ban lists every address inside it', async (t) => {
    if (!requireBinary('dig', t)) return;
    await store.ban({ cidr: '2001:db8:1::/48', reason: 'v6 bot net', category: 'probe', source: 'test', durationSeconds: 3600 });
    const a = (await ask(t, `${nibbles('2001:0db8:0001:0042:0000:0000:0000:0001')}.${BL}`))!;
    assert.deepEqual(a.answer.map((r) => r.data), ['127.0.0.5'], a.text);
    const no = (await ask(t, `${nibbles('2001:0db8:0002:0000:0000:0000:0000:0001')}.${BL}`))!;
    assert.equal(no.status, 'NXDOMAIN');
  });

  test('deny lists (config and store) answer 127.0.0.10; whitelists win over them', async (t) => {
    if (!requireBinary('dig', t)) return;
    await store.listAdd('more-deny', '203.0.113.0/24', { source: 'test', expiresAt: clock.now() + 50_000 });
    const cfg = (await ask(t, `${rev4('198.51.100.1')}.${BL}`, 'TXT'))!;
    assert.deepEqual(cfg.answer.map((r) => r.data), ['"198.51.100.0/24 on the deny list; no expiry"'], cfg.text);
    const st = (await ask(t, `${rev4('203.0.113.5')}.${BL}`))!;
    assert.deepEqual(st.answer.map((r) => r.data), ['127.0.0.10'], st.text);
    assert.ok(st.answer[0].ttl < 50, 'a list entry with an expiry: TTL below it');
    // 198.51.100.7 is on the config allow list: never listed by the block zone, listed (.2) by the allow zone.
    assert.equal((await ask(t, `${rev4('198.51.100.7')}.${BL}`))!.status, 'NXDOMAIN');
    const wl = (await ask(t, `${rev4('198.51.100.7')}.${WL}`))!;
    assert.deepEqual(wl.answer.map((r) => r.data), ['127.0.0.2'], wl.text);
    // The store's allow list too, and my_networks never in the block zone.
    await store.listAdd('deny', '10.20.1.1', { source: 'test' });
    assert.equal((await ask(t, `${rev4('10.20.1.1')}.${BL}`))!.status, 'NXDOMAIN', 'my_networks are never listed');
    await store.listAdd('allow', '203.0.113.77', { source: 'test' });
    assert.equal((await ask(t, `${rev4('203.0.113.77')}.${BL}`))!.status, 'NXDOMAIN', 'the store allow list wins');
    assert.deepEqual((await ask(t, `${rev4('203.0.113.77')}.${WL}`))!.answer.map((r) => r.data), ['127.0.0.2']);
    // A ban and a deny list together: both codes, both reasons.
    await store.ban({ cidr: '203.0.113.9', reason: 'spam', category: 'spamtrap', source: 'test', durationSeconds: 3600 });
    const both = (await ask(t, `${rev4('203.0.113.9')}.${BL}`, 'ANY'))!;
    assert.deepEqual(both.answer.filter((r) => r.type === 'A').map((r) => r.data), ['127.0.0.3', '127.0.0.10'], both.text);
    assert.equal(both.answer.filter((r) => r.type === 'TXT').length, 2);
  });

  test('SOA and NS at the apex; NXDOMAIN and NODATA carry the SOA with the negative TTL', async (t) => {
    if (!requireBinary('dig', t)) return;
    const soa = (await ask(t, BL, 'SOA'))!;
    assert.equal(soa.answer.length, 1, soa.text);
    assert.match(soa.answer[0].data, /^ns1\.zone\.test\. hostmaster\.bl\.zone\.test\. \d+ 3600 600 604800 45$/);
    const ns = (await ask(t, WL, 'NS'))!;
    assert.deepEqual(ns.answer.map((r) => r.data), ['ns1.zone.test.']);
    const nx = (await ask(t, `${rev4('192.0.2.200')}.${BL}`))!;
    assert.equal(nx.status, 'NXDOMAIN');
    assert.equal(nx.authority[0]?.type, 'SOA');
    assert.equal(nx.authority[0]?.ttl, 45);
    const nodata = (await ask(t, `${rev4('192.0.2.10')}.${BL}`, 'AAAA'))!;
    assert.equal(nodata.status, 'NOERROR');
    assert.equal(nodata.answer.length, 0);
    assert.equal(nodata.authority[0]?.type, 'SOA');
    // A prefix of an address name exists (RFC 9156 minimisation goes on through it).
    const ent = (await ask(t, `0.127.${BL}`))!;
    assert.equal(ent.status, 'NOERROR', ent.text);
    assert.equal(ent.answer.length, 0);
  });

  test('REFUSED for other zones and zone transfers', async (t) => {
    if (!requireBinary('dig', t)) return;
    for (const name of ['example.com', 'zone.test', `x${BL}`, '2.0.0.127.in-addr.arpa']) {
      assert.equal((await ask(t, name))!.status, 'REFUSED', name);
    }
    assert.match((await ask(t, BL, 'AXFR'))!.text, /Transfer failed|REFUSED/);
  });

  test('malformed names get NXDOMAIN; malformed messages FORMERR or silence; the server goes on', async (t) => {
    if (!requireBinary('dig', t)) return;
    for (const name of [`300.2.0.192.${BL}`, `g.h.i.j.${BL}`, `1.2.3.4.55.${BL}`, `01.2.0.192.${BL}`, `x_y.-z.${BL}`, `${'0.'.repeat(33)}${BL}`]) {
      assert.equal((await ask(t, name))!.status, 'NXDOMAIN', name);
    }
    // Raw garbage over UDP.
    const sock = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const good = dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: `2.0.0.127.${BL}` }] });
    const bad = [
      Buffer.alloc(0),
      Buffer.from([1, 2, 3]),
      Buffer.concat([good.subarray(0, 12), Buffer.from([63, 0x41])]), // a label running past the end
      Buffer.from([0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]), // a compression pointer to itself
      Buffer.from([0, 10, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]), // two questions
      Buffer.from([0, 11, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]), // a response: never answered
      Buffer.from([0, 12, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // opcode UPDATE
    ];
    for (const b of bad) sock.send(b, server.port, '127.0.0.1');
    sock.send(good, server.port, '127.0.0.1');
    for (let i = 0; i < 100 && !replies.some((r) => r.readUInt16BE(0) === 7); i++) await new Promise((r) => setTimeout(r, 50));
    sock.close();
    const byId = new Map(replies.map((r) => [r.readUInt16BE(0), r[3] & 15]));
    assert.equal(byId.get(7), 0, 'the good query after the garbage is answered');
    assert.equal(byId.get(9), 1, 'compression loop: FORMERR');
    assert.equal(byId.get(10), 1, 'two questions: FORMERR');
    assert.equal(byId.has(11), false, 'a response is never answered');
    assert.equal(byId.get(12), 4, 'UPDATE: NOTIMP');
  });

  test('EDNS0: OPT answered; no EDNS, no OPT; version 1 gets BADVERS', async (t) => {
    if (!requireBinary('dig', t)) return;
    assert.equal((await ask(t, `2.0.0.127.${BL}`))!.edns, true);
    const plain = (await ask(t, `2.0.0.127.${BL}`, 'A', ['+noedns']))!;
    assert.equal(plain.edns, false);
    assert.equal(plain.status, 'NOERROR');
    assert.equal((await ask(t, `2.0.0.127.${BL}`, 'A', ['+edns=1', '+noednsneg']))!.status, 'BADVERS');
  });

  test('an answer too big for UDP is truncated (TC) and whole over TCP; dig retries by itself', async (t) => {
    if (!requireBinary('dig', t)) return;
    const long = 'x'.repeat(200);
    await store.ban({ cidr: '192.0.2.50', reason: `${long} ban`, category: 'manual', source: 'test', durationSeconds: 3600 });
    await store.listAdd('more-deny', '192.0.2.48/29', { source: 'test' });
    await store.listAdd('deny', '192.0.2.50', { source: 'test' });
    // Two A and three TXT records, one TXT of 255 octets: more than 512 bytes.
    const tc = (await ask(t, `${rev4('192.0.2.50')}.${BL}`, 'ANY', ['+noedns', '+ignore', '+notcp']))!;
    assert.ok(tc.flags.includes('tc'), tc.text);
    assert.equal(tc.answer.length, 0);
    const retried = (await ask(t, `${rev4('192.0.2.50')}.${BL}`, 'ANY', ['+noedns', '+notcp']))!;
    assert.match(retried.text, /Truncated, retrying in TCP mode/);
    assert.equal(retried.answer.length, 5, retried.text);
    const tcp = (await ask(t, `${rev4('192.0.2.50')}.${BL}`, 'ANY', ['+tcp']))!;
    assert.equal(tcp.answer.length, 5, tcp.text);
    // With EDNS (1232 bytes) it fits in UDP.
    const edns = (await ask(t, `${rev4('192.0.2.50')}.${BL}`, 'ANY', ['+ignore', '+notcp']))!;
    assert.equal(edns.flags.includes('tc'), false);
    assert.equal(edns.answer.length, 5);
  });

  test('the change feed: a ban from another process is listed, and unlisted after ban del', async (t) => {
    if (!requireBinary('dig', t)) return;
    const name = `${rev4('192.0.2.77')}.${BL}`;
    assert.equal((await ask(t, name))!.status, 'NXDOMAIN');
    const add = await runCli(['ban', 'add', '192.0.2.77', '--config', configPath, '--category', 'spamtrap', '--reason', 'trap hit', '--duration', '1h']);
    assert.equal(add.code, 0, add.stderr);
    let a: DigAnswer | undefined;
    for (let i = 0; i < 100; i++) {
      a = await ask(t, name);
      if (a?.status === 'NOERROR') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(a?.answer.map((r) => r.data), ['127.0.0.3'], a?.text);
    const del = await runCli(['ban', 'del', '192.0.2.77/32', '--config', configPath]);
    assert.equal(del.code, 0, del.stderr);
    for (let i = 0; i < 100; i++) {
      a = await ask(t, name);
      if (a?.status === 'NXDOMAIN') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(a?.status, 'NXDOMAIN', a?.text);
  });

  test('the A fast path answers exactly as the general path', () => {
    const fast = new FastPath(zone.context);
    const now = clock.now();
    let taken = 0;
    for (const ip of ['127.0.0.2', '127.0.0.1', '192.0.2.10', '192.0.2.11', '192.0.2.200', '198.51.100.1', '198.51.100.7', '203.0.113.5', '203.0.113.9', '10.20.1.1', '1.2.3.4', '192.0.2.50']) {
      for (const apex of [BL, WL, BL.toUpperCase()]) {
        for (const edns of [false, true]) {
          const q = dnsPacket.encode({
            type: 'query',
            id: 4242,
            flags: dnsPacket.RECURSION_DESIRED,
            questions: [{ type: 'A', name: `${rev4(ip)}.${apex}` }],
            additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
          });
          const got = fast.answer(q, now);
          const want = dnsPacket.decode(dnsPacket.encode(answer(dnsPacket.decode(q), zone.context, now)));
          if (!got) {
            assert.ok(ip === '1.2.3.4', `the fast path took ${ip}`);
            continue;
          }
          taken++;
          const g = dnsPacket.decode(got);
          const what = `${ip} ${apex} edns=${edns}`;
          assert.equal(g.id, 4242);
          assert.equal((g as { rcode?: string }).rcode, (want as { rcode?: string }).rcode, what);
          assert.equal(g.flags, want.flags, what);
          assert.deepEqual(g.questions, want.questions, what);
          assert.deepEqual(g.answers, want.answers, what);
          // The SOA owner may keep the question's case (a pointer into it): names compare case-insensitively.
          const soa = (p: typeof g) => (p.authorities ?? []).map((a) => JSON.stringify(a).toLowerCase());
          assert.deepEqual(soa(g), soa(want), what);
          assert.deepEqual(g.additionals, want.additionals, what);
        }
      }
    }
    assert.ok(taken >= 60);
    // Not for the fast path: other types, IPv6 names, a leading zero, trailing bytes.
    const other = (type: 'TXT' | 'AAAA', name: string) => fast.answer(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type, name }] }), now);
    assert.equal(other('TXT', `10.2.0.192.${BL}`), undefined);
    assert.equal(other('AAAA', `10.2.0.192.${BL}`), undefined);
    assert.equal(fast.answer(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: `010.2.0.192.${BL}` }] }), now), undefined);
    assert.equal(fast.answer(Buffer.concat([dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: `10.2.0.192.${BL}` }] }), Buffer.from([0])]), now), undefined);
  });

  test('frontline zone export: rbldnsd, bind and plain', async () => {
    const rbl = await runCli(['zone', 'export', '--config', configPath, '--format', 'rbldnsd']);
    assert.equal(rbl.code, 0, rbl.stderr);
    assert.match(rbl.stdout, /^\$SOA 300 ns1\.zone\.test\. hostmaster\.bl\.zone\.test\. \d+ 3600 600 604800 45$/m);
    assert.match(rbl.stdout, /^\$DATASET ip4trie:frontline-v4 @$/m);
    assert.match(rbl.stdout, /^192\.0\.2\.10\/32 :3:banned \(spamtrap\): sent to spamtrap <trap@x\.test>; until /m);
    assert.match(rbl.stdout, /^198\.51\.100\.0\/24 :10:on the deny list; no expiry$/m);
    assert.match(rbl.stdout, /^127\.0\.0\.2\/32 :2:RFC 5782 test point$/m);
    assert.match(rbl.stdout, /^2001:db8:1::\/48 :5:/m);
    assert.match(rbl.stdout, /^!198\.51\.100\.7\/32$/m, 'the allow list excluded');
    assert.match(rbl.stdout, /^!10\.20\.0\.0\/16$/m, 'my_networks excluded');
    const bind = await runCli(['zone', 'export', '--config', configPath, '--format', 'bind']);
    assert.equal(bind.code, 0, bind.stderr);
    assert.match(bind.stdout, /^\$ORIGIN bl\.zone\.test\.$/m);
    assert.match(bind.stdout, /^10\.2\.0\.192 300 IN A 127\.0\.0\.3$/m);
    assert.match(bind.stdout, /^\*\.100\.51\.198 300 IN A 127\.0\.0\.10$/m);
    const plain = await runCli(['zone', 'export', '--config', configPath, '--format', 'plain']);
    assert.match(plain.stdout, /^192\.0\.2\.10\/32$/m);
    assert.doesNotMatch(plain.stdout, /127\.0\.0\.2/);
    const wl = await runCli(['zone', 'export', '--config', configPath, '--format', 'plain', '--zone', 'wl']);
    assert.match(wl.stdout, /^198\.51\.100\.7\/32$/m);
    const badFormat = await runCli(['zone', 'export', '--config', configPath, '--format', 'djbdns']);
    assert.equal(badFormat.code, 1);
    assert.match(badFormat.stderr, /--format must be one of rbldnsd, bind, plain/);
  });
});

describe('who may ask, and how much', () => {
  let dir: string;
  let store: Store;
  const clock = new ManualClock();
  after(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(zoneYaml: string): Promise<RunningZone> {
    dir ??= mkdtempSync(join(tmpdir(), 'fl-zone-acl-'));
    const path = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(path, `data_dir: ${join(dir, 'data')}\nzone:\n  listen: 127.0.0.1:0\n  bl_name: ${BL}\n${zoneYaml}`);
    const config = loadConfig(path);
    store ??= await openConfiguredStore(config, { clock });
    return (await startZone(config, { store, clock }))!;
  }

  async function udpAsk(port: number, count: number): Promise<Buffer[]> {
    const sock = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    for (let i = 0; i < count; i++) sock.send(dnsPacket.encode({ type: 'query', id: i, questions: [{ type: 'TXT', name: `2.0.0.127.${BL}` }] }), port, '127.0.0.1');
    // Wait until the replies stop coming.
    let seen = -1;
    for (let i = 0; i < 100 && seen !== replies.length; i++) {
      seen = replies.length;
      await new Promise((r) => setTimeout(r, 100));
    }
    sock.close();
    return replies;
  }

  test('a client outside zone.allow_from is REFUSED over UDP and cut off over TCP', async (t) => {
    const zone = await start('  allow_from: [10.0.0.0/8]\n');
    t.after(() => zone.close());
    const port = Number(zone.addresses[0].split(':')[1]);
    const replies = await udpAsk(port, 1);
    assert.equal(replies.length, 1);
    assert.equal(replies[0][3] & 15, 5, 'REFUSED');
    assert.ok(replies[0].length <= 60, 'no bigger than the query');
    const closed = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('data', () => resolve(false));
      c.on('close', () => resolve(true));
      c.on('error', () => resolve(true));
    });
    assert.ok(closed);
    const digBin = findBinary('dig');
    if (digBin) assert.equal((await dig(digBin, { host: '127.0.0.1', port }, `2.0.0.127.${BL}`)).status, 'REFUSED');
  });

  test('the per-client rate limit: the burst is answered, then every 2nd answer is an empty truncated reply, the rest dropped', async (t) => {
    const zone = await start('  rate_limit: { per_s: 1, burst: 5, slip: 2 }\n');
    t.after(() => zone.close());
    const port = Number(zone.addresses[0].split(':')[1]);
    // The clock stands still: no tokens come back during the test.
    const replies = await udpAsk(port, 25);
    const full = replies.filter((r) => (r[2] & 0x02) === 0);
    const truncated = replies.filter((r) => (r[2] & 0x02) !== 0);
    assert.equal(full.length, 5);
    assert.equal(truncated.length, 10);
    assert.ok(truncated.every((r) => r.readUInt16BE(6) === 0 && r.length < 60), 'slipped replies carry no records');
    assert.equal(zone.server.stats.rateLimited, 20);
  });
});
