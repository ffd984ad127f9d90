// The Store conformance suite: the same behaviour asserted on every backend.
// A backend test file calls storeConformance() with a factory that gives
// each test a fresh, empty namespace (a new SQLite file, a new Redis key
// prefix) in which any number of stores can be opened on the same state.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Ban, Store, StoreChange, StoreDeps, StoreLogger } from '../../src/store/types.js';
import { InvalidEntryError } from '../../src/store/errors.js';
import { attemptOf } from '../../src/store/greylist.js';
import { ManualClock } from './fake-clock.js';

export interface Namespace {
  /** Open a store on this namespace's state (call again for a second "host"). */
  open(deps: StoreDeps): Promise<Store>;
}

export interface Backend {
  /** A new, empty namespace. */
  fresh(): Promise<Namespace>;
  /** Released after the suite. */
  close(): Promise<void>;
}

export interface ConformanceOptions {
  /** Reason to skip the whole suite (e.g. redis-server missing). */
  skip?: string;
}

const HOUR = 3600;
const DAY = 86400;

interface Logged {
  level: string;
  obj: object;
  msg: string;
}

function recordingLogger(): StoreLogger & { lines: Logged[] } {
  const lines: Logged[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

/** Wait until `cond` holds (polling every 10 ms), or fail after `ms`. */
export async function eventually(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

export function storeConformance(name: string, setup: () => Promise<Backend>, opts: ConformanceOptions = {}): void {
  describe(`Store conformance: ${name}`, { skip: opts.skip }, () => {
    let backend: Backend;
    const opened: Store[] = [];

    before(async () => {
      backend = await setup();
    });
    after(async () => {
      for (const s of opened) await s.close();
      await backend?.close();
    });

    /**
     * A fresh namespace and a store on it with a manual clock and jitter
     * pinned to 0 (random = 0.5). The host's own addresses are none (the
     * machine's interfaces must not decide what these tests may ban); the
     * own-address tests give theirs.
     */
    async function fresh(deps: StoreDeps = {}) {
      const clock = (deps.clock as ManualClock | undefined) ?? new ManualClock();
      const logger = recordingLogger();
      const ns = await backend.fresh();
      const open = async (more: StoreDeps = {}) => {
        const s = await ns.open({ clock, logger, random: () => 0.5, purgeIntervalSeconds: 0, ownAddresses: [], ...deps, ...more });
        opened.push(s);
        return s;
      };
      const store = await open();
      return { store, clock, logger, open };
    }

    describe('bans', () => {
      test('ban, then getBan finds it; canonical CIDR; first offence lasts baseSeconds', async () => {
        const { store, clock } = await fresh();
        const r = await store.ban({ cidr: '192.0.2.7', reason: 'spamtrap hit', category: 'spamtrap', source: 'rule:trap' });
        assert.equal(r.refused, false);
        assert.ok(!r.refused && r.created);
        const ban = await store.getBan('192.0.2.7');
        assert.deepEqual(ban, {
          cidr: '192.0.2.7/32',
          reason: 'spamtrap hit',
          category: 'spamtrap',
          source: 'rule:trap',
          firstSeen: clock.now(),
          createdAt: clock.now(),
          expiresAt: clock.now() + HOUR * 1000,
          offences: 1,
        });
        assert.equal(await store.getBan('192.0.2.8'), undefined);
        assert.equal(await store.getBan('not-an-ip'), undefined);
        assert.deepEqual(store.lookup.bannedBy('192.0.2.7'), { cidr: '192.0.2.7/32', expiresAt: clock.now() + HOUR * 1000 });
        assert.deepEqual(await store.showBan('192.0.2.7/32'), ban);
      });

      test('getBan returns the longest unexpired prefix containing the IP (IPv4 and IPv6)', async () => {
        const { store } = await fresh();
        await store.ban({ cidr: '198.51.100.0/24', reason: 'net', category: 'dnsbl', source: 't', durationSeconds: 10 * HOUR });
        await store.ban({ cidr: '198.51.100.9', reason: 'host', category: 'probe', source: 't' });
        await store.ban({ cidr: '2001:db8:1::/48', reason: 'v6', category: 'manual', source: 't' });
        assert.equal((await store.getBan('198.51.100.9'))?.cidr, '198.51.100.9/32');
        assert.equal((await store.getBan('198.51.100.10'))?.cidr, '198.51.100.0/24');
        assert.equal(await store.getBan('198.51.101.1'), undefined);
        assert.equal((await store.getBan('2001:db8:1:2::3'))?.cidr, '2001:db8:1::/48');
        assert.equal((await store.getBan('::ffff:198.51.100.9'))?.cidr, '198.51.100.9/32');
        assert.equal(await store.getBan('2001:db8:2::1'), undefined);
      });

      test('bans expire by themselves: the shorter prefix takes over, listings drop them, purge deletes them', async () => {
        const { store, clock } = await fresh();
        await store.ban({ cidr: '203.0.113.0/24', reason: 'net', category: 'policy', source: 't', durationSeconds: 5 * HOUR });
        await store.ban({ cidr: '203.0.113.5', reason: 'host', category: 'policy', source: 't' });
        clock.advance(HOUR - 1);
        assert.equal((await store.getBan('203.0.113.5'))?.cidr, '203.0.113.5/32');
        clock.advance(1);
        assert.equal((await store.getBan('203.0.113.5'))?.cidr, '203.0.113.0/24', 'expired /32 no longer matches');
        assert.equal(await store.showBan('203.0.113.5'), undefined);
        assert.deepEqual(
          (await store.listBans()).map((b) => b.cidr),
          ['203.0.113.0/24'],
        );
        const purged = await store.purge();
        assert.equal(purged.bans, 1);
        clock.advance(5 * HOUR);
        assert.equal(await store.getBan('203.0.113.5'), undefined);
        assert.deepEqual(await store.listBans(), []);
      });

      test('scanBans: every unexpired ban once, CIDR and expiry only, in pages', async () => {
        const { store, clock } = await fresh();
        const want = new Map<string, number>();
        for (const [cidr, s] of [
          ['203.0.113.5', HOUR],
          ['203.0.113.0/24', 5 * HOUR],
          ['2001:db8:1::/48', 2 * HOUR],
          ['2001:db8:2::7', 3 * HOUR],
          ['198.51.100.9', 60],
        ] as const) {
          const r = await store.ban({ cidr, reason: 'r', category: 'manual', source: 't', durationSeconds: s });
          assert.ok(!r.refused);
          want.set(r.ban.cidr, r.ban.expiresAt);
        }
        const scan = async () => {
          const got = new Map<string, number>();
          let pages = 0;
          const n = await store.scanBans((cidrs, expiresAt) => {
            pages++;
            assert.equal(cidrs.length, expiresAt.length);
            cidrs.forEach((c, i) => {
              assert.ok(!got.has(c), `${c} once`);
              got.set(c, expiresAt[i]);
            });
          });
          assert.equal(n, got.size);
          assert.ok(pages >= 1 || n === 0);
          return got;
        };
        assert.deepEqual(await scan(), want);
        clock.advance(60);
        want.delete('198.51.100.9/32');
        assert.deepEqual(await scan(), want, 'an expired ban is left out, purged or not');
        clock.advance(10 * HOUR);
        assert.deepEqual(await scan(), new Map());
      });

      test('scanBanRecords: every unexpired ban in full, as listBans has it; false ends the scan', async () => {
        const { store, clock } = await fresh();
        for (const [cidr, s, category] of [
          ['203.0.113.5', HOUR, 'manual'],
          ['203.0.113.0/24', 5 * HOUR, 'spamtrap'],
          ['2001:db8:1::/48', 2 * HOUR, 'probe'],
          ['198.51.100.9', 60, 'brute-force'],
        ] as const) {
          assert.ok(!(await store.ban({ cidr, reason: `r ${cidr}`, category, source: 't', durationSeconds: s })).refused);
        }
        const scan = async () => {
          const got = new Map<string, Ban>();
          const n = await store.scanBanRecords((page) => {
            for (const b of page) {
              assert.ok(!got.has(b.cidr), `${b.cidr} once`);
              got.set(b.cidr, b);
            }
          });
          assert.equal(n, got.size);
          return got;
        };
        const listed = async () => new Map((await store.listBans({ limit: 100 })).map((b) => [b.cidr, b]));
        assert.equal((await scan()).size, 4);
        assert.deepEqual(await scan(), await listed());
        clock.advance(60);
        assert.deepEqual([...(await scan()).keys()].sort(), ['2001:db8:1::/48', '203.0.113.0/24', '203.0.113.5/32'], 'an expired ban is left out, purged or not');
        assert.deepEqual(await scan(), await listed());
        let pages = 0;
        assert.equal(await store.scanBanRecords(() => (pages++, false)), 3, 'the page that said stop is counted');
        assert.equal(pages, 1);
      });

      test('countBans: unexpired bans by category', async () => {
        const { store, clock } = await fresh();
        assert.deepEqual(await store.countBans(), new Map());
        for (const [cidr, s, category] of [
          ['203.0.113.5', HOUR, 'manual'],
          ['203.0.113.6', HOUR, 'manual'],
          ['203.0.113.0/24', 5 * HOUR, 'spamtrap'],
          ['198.51.100.9', 60, 'brute-force'],
        ] as const) {
          assert.ok(!(await store.ban({ cidr, reason: 'r', category, source: 't', durationSeconds: s })).refused);
        }
        assert.deepEqual(await store.countBans(), new Map([['manual', 2], ['spamtrap', 1], ['brute-force', 1]]));
        clock.advance(60);
        assert.deepEqual(await store.countBans(), new Map([['manual', 2], ['spamtrap', 1]]), 'an expired ban is left out, purged or not');
      });

      test('reoffenders: each new ban lasts longer (geometric), capped at maxSeconds', async () => {
        const { store, clock } = await fresh({ banPolicy: { baseSeconds: HOUR, factor: 2, maxSeconds: 5 * HOUR } });
        const lengths: number[] = [];
        const offences: number[] = [];
        for (let i = 0; i < 5; i++) {
          const r = await store.ban({ cidr: '192.0.2.50', reason: 'again', category: 'brute-force', source: 't' });
          assert.ok(!r.refused && r.created);
          lengths.push((r.ban.expiresAt - r.ban.createdAt) / 1000);
          offences.push(r.ban.offences);
          clock.ms = r.ban.expiresAt + 60_000;
        }
        assert.deepEqual(offences, [1, 2, 3, 4, 5]);
        assert.deepEqual(lengths, [HOUR, 2 * HOUR, 4 * HOUR, 5 * HOUR, 5 * HOUR]);
      });

      test('the offence count is forgotten after the quiet period; firstSeen restarts with it', async () => {
        const { store, clock } = await fresh({ banPolicy: { forgetAfterSeconds: 10 * DAY } });
        const first = await store.ban({ cidr: '192.0.2.60', reason: 'a', category: 'probe', source: 't' });
        assert.ok(!first.refused);
        const t0 = clock.now();
        clock.ms = first.ban.expiresAt + 10 * DAY * 1000 - 1000;
        const second = await store.ban({ cidr: '192.0.2.60', reason: 'b', category: 'probe', source: 't' });
        assert.ok(!second.refused);
        assert.equal(second.ban.offences, 2);
        assert.equal(second.ban.firstSeen, t0);
        clock.ms = second.ban.expiresAt + 10 * DAY * 1000;
        const third = await store.ban({ cidr: '192.0.2.60', reason: 'c', category: 'probe', source: 't' });
        assert.ok(!third.refused);
        assert.equal(third.ban.offences, 1);
        assert.equal(third.ban.firstSeen, clock.now());
        assert.equal(third.ban.expiresAt - third.ban.createdAt, HOUR * 1000);
      });

      test('jitter: ± the configured fraction', async () => {
        const low = await fresh({ random: () => 0 });
        const r1 = await low.store.ban({ cidr: '192.0.2.70', reason: 'j', category: 'probe', source: 't' });
        assert.ok(!r1.refused);
        assert.equal(r1.ban.expiresAt - r1.ban.createdAt, 3240_000);
        const high = await fresh({ random: () => 1 });
        const r2 = await high.store.ban({ cidr: '192.0.2.70', reason: 'j', category: 'probe', source: 't' });
        assert.ok(!r2.refused);
        assert.equal(r2.ban.expiresAt - r2.ban.createdAt, 3960_000);
      });

      test('banning an already banned address is not a new offence; a fixed duration can extend it', async () => {
        const { store, clock } = await fresh();
        const a = await store.ban({ cidr: '192.0.2.80', reason: 'first', category: 'spamtrap', source: 't' });
        clock.advance(60);
        const b = await store.ban({ cidr: '192.0.2.80', reason: 'second', category: 'spamtrap', source: 't' });
        assert.ok(!a.refused && !b.refused);
        assert.equal(b.created, false);
        assert.deepEqual(b.ban, a.ban);
        const c = await store.ban({ cidr: '192.0.2.80/32', reason: 'admin', category: 'manual', source: 'cli', durationSeconds: 7 * DAY });
        assert.ok(!c.refused);
        assert.equal(c.created, false);
        assert.equal(c.ban.expiresAt, clock.now() + 7 * DAY * 1000);
        assert.equal(c.ban.offences, 1);
        assert.equal((await store.getBan('192.0.2.80'))?.expiresAt, c.ban.expiresAt);
      });

      test('never-ban: loopback always, configured networks, entries of never-ban lists; refusals are logged', async () => {
        const { store, logger } = await fresh({ neverBan: ['10.0.0.0/8', '2001:db8:ffff::/48'], neverBanLists: ['whitelist'] });
        await store.listAdd('whitelist', '203.0.113.0/26', { source: 'config' });
        for (const cidr of ['127.0.0.1', '::1', '127.0.0.0/16', '10.1.2.3', '2001:db8:ff00::/40', '2001:db8:ffff:1::1', '2001:db8::/32', '203.0.113.5', '203.0.113.0/24']) {
          const r = await store.ban({ cidr, reason: 'x', category: 'manual', source: 't' });
          assert.equal(r.refused, true, cidr);
          assert.ok(r.refused && r.why.length > 0);
        }
        const ok = await store.ban({ cidr: '203.0.113.64/26', reason: 'x', category: 'manual', source: 't' });
        assert.equal(ok.refused, false);
        assert.equal(await store.getBan('10.1.2.3'), undefined);
        const refusals = logger.lines.filter((l) => l.level === 'warn' && /never-ban/.test(l.msg));
        assert.equal(refusals.length, 9);
        assert.equal((refusals[0].obj as { cidr: string }).cidr, '127.0.0.1/32');
      });

      test('bans too wide are refused: shorter than the minimum prefix, or with host bits set (the error names the network)', async () => {
        const { store } = await fresh();
        const refused: Array<[string, RegExp]> = [
          ['128.0.0.0/1', /128\.0\.0\.0\/1 is wider than a ban may be: the shortest prefix is \/16 \(store\.bans\.min_prefix\.ipv4\)/],
          ['0.0.0.0/0', /shortest prefix is \/16/],
          ['198.50.0.0/15', /shortest prefix is \/16/],
          ['::ffff:10.0.0.0/104', /10\.0\.0\.0\/8 is wider than a ban may be/],
          ['2001:db8::/31', /shortest prefix is \/32 \(store\.bans\.min_prefix\.ipv6\)/],
          ['::/0', /shortest prefix is \/32/],
          ['10.0.0.0/1', /"10\.0\.0\.0\/1": host bits set: the network is 0\.0\.0\.0\/1/],
          ['198.51.100.9/24', /host bits set: the network is 198\.51\.100\.0\/24/],
          ['2001:db8::1/64', /host bits set: the network is 2001:db8::\/64/],
          ['010.0.0.1', /leading zero in "010"/],
          ['10.1', /short form/],
          ['0x0a.0.0.1', /not an IP address|hexadecimal/],
          ['[2001:db8::1]', /without brackets/],
          ['fe80::1%eth0', /zone ids/],
          ['198.51.100.0/033', /bad prefix length/],
        ];
        for (const [cidr, why] of refused) {
          await assert.rejects(store.ban({ cidr, reason: 'x', category: 'manual', source: 't' }), (e: Error) => e instanceof InvalidEntryError && why.test(e.message), cidr);
        }
        assert.deepEqual(await store.listBans(), [], 'nothing was banned');
        for (const cidr of ['198.51.0.0/16', '2001:db8::/32', '::ffff:198.51.100.0/120']) {
          const r = await store.ban({ cidr, reason: 'x', category: 'manual', source: 't' });
          assert.equal(r.refused, false, cidr);
        }
        assert.deepEqual((await store.listBans()).map((b) => b.cidr).sort(), ['198.51.0.0/16', '198.51.100.0/24', '2001:db8::/32']);
      });

      test('the minimum prefix is configurable per family', async () => {
        const { store } = await fresh({ banMinPrefix: { v4: 24, v6: 48 } });
        await assert.rejects(store.ban({ cidr: '198.51.0.0/16', reason: 'x', category: 'manual', source: 't' }), /shortest prefix is \/24/);
        await assert.rejects(store.ban({ cidr: '2001:db8::/32', reason: 'x', category: 'manual', source: 't' }), /shortest prefix is \/48/);
        assert.equal((await store.ban({ cidr: '198.51.100.0/24', reason: 'x', category: 'manual', source: 't' })).refused, false);
      });

      test("this host's own addresses are never banned, and a ban that reaches them another way never matches them", async () => {
        const own = [
          { address: '198.51.100.25', iface: 'eth0' },
          { address: '2001:db8:25::1', iface: 'eth0' },
        ];
        const { store, open, logger } = await fresh({ ownAddresses: own });
        for (const cidr of ['198.51.100.25', '198.51.100.0/24', '::ffff:198.51.100.25', '2001:db8:25::1', '2001:db8:25::/48']) {
          const r = await store.ban({ cidr, reason: 'x', category: 'spamtrap', source: 'spamtrap' });
          assert.equal(r.refused, true, cidr);
          assert.ok(r.refused && /this host's own address .* \(eth0\)/.test(r.why), cidr);
        }
        assert.ok(logger.lines.some((l) => l.level === 'warn' && /never-ban/.test(l.msg) && /own address/.test(JSON.stringify(l.obj))));
        // Another host sharing the state (it does not have these addresses) bans the /24; here, our own address stays unbanned.
        const elsewhere = await open({ ownAddresses: [] });
        assert.equal((await elsewhere.ban({ cidr: '198.51.100.0/24', reason: 'x', category: 'manual', source: 'other-host' })).refused, false);
        await eventually(() => store.lookup.isBanned('198.51.100.26'), 3000, 'the ban reached this store');
        assert.equal(store.lookup.isBanned('198.51.100.25'), false);
        assert.equal(store.lookup.bannedBy('198.51.100.25'), undefined);
        assert.equal(await store.getBan('198.51.100.25'), undefined);
        assert.equal(await store.getBan('::ffff:198.51.100.25'), undefined);
        assert.equal((await store.getBan('198.51.100.26'))?.cidr, '198.51.100.0/24');
        // A store opened later loads the same ban, with the same exception.
        const late = await open({ ownAddresses: own });
        assert.equal(late.lookup.isBanned('198.51.100.25'), false);
        assert.equal(late.lookup.isBanned('198.51.100.26'), true);
      });

      test('unban lifts the ban at once and keeps the offence count', async () => {
        const { store, clock } = await fresh();
        await store.ban({ cidr: '192.0.2.90', reason: 'x', category: 'probe', source: 't' });
        assert.equal(await store.unban('192.0.2.90/32'), true);
        assert.equal(await store.unban('192.0.2.90'), false);
        assert.equal(await store.getBan('192.0.2.90'), undefined);
        assert.equal(store.lookup.bannedBy('192.0.2.90'), undefined);
        clock.advance(60);
        const again = await store.ban({ cidr: '192.0.2.90', reason: 'y', category: 'probe', source: 't' });
        assert.ok(!again.refused && again.created);
        assert.equal(again.ban.offences, 2);
      });

      test('listBans: latest expiry first, limit/offset, category filter', async () => {
        const { store } = await fresh();
        for (let i = 1; i <= 6; i++) {
          await store.ban({ cidr: `192.0.2.${i}`, reason: `r${i}`, category: i % 2 ? 'spamtrap' : 'dnsbl', source: 't', durationSeconds: i * HOUR });
        }
        assert.deepEqual(
          (await store.listBans()).map((b) => b.cidr),
          ['192.0.2.6/32', '192.0.2.5/32', '192.0.2.4/32', '192.0.2.3/32', '192.0.2.2/32', '192.0.2.1/32'],
        );
        assert.deepEqual(
          (await store.listBans({ limit: 2, offset: 1 })).map((b) => b.cidr),
          ['192.0.2.5/32', '192.0.2.4/32'],
        );
        assert.deepEqual(
          (await store.listBans({ category: 'spamtrap', limit: 2, offset: 1 })).map((b) => b.cidr),
          ['192.0.2.3/32', '192.0.2.1/32'],
        );
      });

      test('bad input is refused with InvalidEntryError', async () => {
        const { store } = await fresh();
        await assert.rejects(store.ban({ cidr: '192.0.2.300', reason: 'x', category: 'manual', source: 't' }), InvalidEntryError);
        await assert.rejects(store.ban({ cidr: '192.0.2.0/33', reason: 'x', category: 'manual', source: 't' }), InvalidEntryError);
        await assert.rejects(store.ban({ cidr: '192.0.2.1', reason: 'x', category: '', source: 't' }), InvalidEntryError);
        await assert.rejects(store.ban({ cidr: '192.0.2.1', reason: 'x', category: 'manual', source: 't', durationSeconds: -5 }), InvalidEntryError);
        await assert.rejects(store.unban('nonsense'), InvalidEntryError);
      });
    });

    describe('lists', () => {
      test('kinds are inferred from the first entry and lookups match per kind', async () => {
        const { store } = await fresh();
        assert.equal((await store.listAdd('nets', '198.51.100.0/24', { source: 'file:a' })).kind, 'ip');
        await store.listAdd('nets', '2001:db8::/32', { source: 'file:a' });
        assert.equal((await store.listAdd('domains', 'Example.COM.', { source: 'cli' })).entry, 'example.com');
        assert.equal((await store.listAdd('asns', 'as64496', { source: 'cli' })).entry, 'AS64496');
        assert.equal((await store.listAdd('traps', '<Trap@Example.org>', { source: 'cli' })).entry, 'trap@example.org');
        assert.equal(await store.listHas('nets', '198.51.100.77'), true);
        assert.equal(await store.listHas('nets', '2001:db8:5::1'), true);
        assert.equal(await store.listHas('nets', '198.51.101.1'), false);
        assert.equal(await store.listHas('domains', 'mail.example.com'), true);
        assert.equal(await store.listHas('domains', 'EXAMPLE.com'), true);
        assert.equal(await store.listHas('domains', 'notexample.com'), false);
        assert.equal(store.lookup.listMatch('domains', 'a.b.example.com'), 'example.com');
        assert.equal(await store.listHas('asns', 64496), true);
        assert.equal(await store.listHas('asns', 'AS64496'), true);
        assert.equal(await store.listHas('asns', 64497), false);
        assert.equal(await store.listHas('traps', 'TRAP@example.org'), true);
        assert.equal(await store.listHas('traps', 'other@example.org'), false);
        assert.equal(await store.listHas('nosuchlist', '198.51.100.77'), false);
        assert.equal(store.lookup.listKind('asns'), 'asn');
      });

      test('an entry of the wrong kind, a bad entry or a bad list name is refused', async () => {
        const { store } = await fresh();
        await store.listAdd('nets', '198.51.100.0/24', { source: 't' });
        await assert.rejects(store.listAdd('nets', 'example.com', { source: 't' }), InvalidEntryError);
        await assert.rejects(store.listAdd('doms', 'example.com', { source: 't', kind: 'domain' }).then(() => store.listAdd('doms', '192.0.2.1', { source: 't', kind: 'ip' })), InvalidEntryError);
        await assert.rejects(store.listAdd('nets', '198.51.100.0/40', { source: 't' }), InvalidEntryError);
        await assert.rejects(store.listAdd('bad name!', '198.51.100.0/24', { source: 't' }), InvalidEntryError);
        await assert.rejects(store.listAdd('d2', 'exa mple.com', { source: 't', kind: 'domain' }), InvalidEntryError);
        assert.deepEqual((await store.listShow('nets')).map((e) => e.entry), ['198.51.100.0/24']);
      });

      test('listDel, listShow (sorted, with source), listNames (with counts)', async () => {
        const { store, clock } = await fresh();
        await store.listAdd('white', '203.0.113.9', { source: 'config' });
        await store.listAdd('white', '192.0.2.0/24', { source: 'cli:root' });
        await store.listAdd('black', 'spam.example', { source: 'import' });
        assert.deepEqual(await store.listShow('white'), [
          { list: 'white', kind: 'ip', entry: '192.0.2.0/24', source: 'cli:root', addedAt: clock.now() },
          { list: 'white', kind: 'ip', entry: '203.0.113.9/32', source: 'config', addedAt: clock.now() },
        ]);
        assert.deepEqual(await store.listNames(), [
          { name: 'black', kind: 'domain', entries: 1 },
          { name: 'white', kind: 'ip', entries: 2 },
        ]);
        assert.equal(await store.listDel('white', '203.0.113.9/32'), true);
        assert.equal(await store.listDel('white', '203.0.113.9'), false);
        assert.equal(await store.listDel('nolist', '203.0.113.9'), false);
        assert.equal(await store.listHas('white', '203.0.113.9'), false);
        assert.equal(await store.listHas('white', '192.0.2.1'), true);
      });

      test('entries with an expiry stop matching when it passes, and purge removes them', async () => {
        const { store, clock } = await fresh();
        await store.listAdd('learned', '192.0.2.0/24', { source: 'learn', expiresAt: clock.now() + HOUR * 1000 });
        await store.listAdd('learned', '192.0.2.7', { source: 'learn' });
        await store.listAdd('doms', 'short.example', { source: 'learn', expiresAt: clock.now() + 1000 });
        assert.equal(await store.listHas('learned', '192.0.2.8'), true);
        clock.advance(HOUR);
        assert.equal(await store.listHas('learned', '192.0.2.8'), false);
        assert.equal(await store.listHas('learned', '192.0.2.7'), true);
        assert.equal(await store.listHas('doms', 'short.example'), false);
        assert.deepEqual((await store.listShow('learned')).map((e) => e.entry), ['192.0.2.7/32']);
        const purged = await store.purge();
        assert.equal(purged.listEntries, 2);
      });
    });

    describe('greylist entries', () => {
      const entry = (clock: ManualClock, ip = '192.0.2.1', ttl = 2 * DAY) => ({
        firstSeen: clock.now(),
        lastSeen: clock.now(),
        attempts: 1,
        passes: 0,
        clientIp: ip,
        expiresAt: clock.now() + ttl * 1000,
      });

      test('put, get, delete; expired entries are gone', async () => {
        const { store, clock } = await fresh();
        const e = entry(clock);
        await store.greyPut('net:192.0.2.0/24|a@b.example|c@d.example', e);
        assert.deepEqual(await store.greyGet('net:192.0.2.0/24|a@b.example|c@d.example'), e);
        const passed = { ...e, passedAt: clock.now() + 1, passes: 1, attempts: 2 };
        await store.greyPut('net:192.0.2.0/24|a@b.example|c@d.example', passed);
        assert.deepEqual(await store.greyGet('net:192.0.2.0/24|a@b.example|c@d.example'), passed);
        assert.equal(await store.greyDelete('net:192.0.2.0/24|a@b.example|c@d.example'), true);
        assert.equal(await store.greyDelete('net:192.0.2.0/24|a@b.example|c@d.example'), false);
        assert.equal(await store.greyGet('net:192.0.2.0/24|a@b.example|c@d.example'), undefined);
        await store.greyPut('k2', entry(clock, '192.0.2.1', 10));
        clock.advance(10);
        assert.equal(await store.greyGet('k2'), undefined);
        assert.deepEqual(await store.greyList(), []);
      });

      test('greyList is newest first; greyDeleteByClient drops an IP or a whole subnet', async () => {
        const { store, clock } = await fresh();
        await store.greyPut('a', entry(clock, '192.0.2.1'));
        clock.advance(1);
        await store.greyPut('b', entry(clock, '192.0.2.2'));
        clock.advance(1);
        await store.greyPut('c', entry(clock, '2001:db8::1'));
        clock.advance(1);
        await store.greyPut('d', entry(clock, '198.51.100.1'));
        assert.deepEqual((await store.greyList()).map((x) => x.key), ['d', 'c', 'b', 'a']);
        assert.deepEqual((await store.greyList({ limit: 2 })).map((x) => x.key), ['d', 'c']);
        assert.equal(await store.greyDeleteByClient('192.0.2.2'), 1);
        assert.equal(await store.greyDeleteByClient('192.0.2.0/24'), 1);
        assert.equal(await store.greyDeleteByClient('2001:db8::/32'), 1);
        assert.deepEqual((await store.greyList()).map((x) => x.key), ['d']);
        await assert.rejects(store.greyDeleteByClient('nonsense'), InvalidEntryError);
      });

      const GREY_ATTEMPT = { timing: { delaySeconds: 60, retryWindowSeconds: 600, passedTtlSeconds: 3600 }, key: 'net:192.0.2.0/24|a@b.example|c@d.example' };

      test('greyAttempt: first, early, retried, known, past the window — the answers and entries of attemptOf', async () => {
        const { store, clock } = await fresh();
        const { timing, key } = GREY_ATTEMPT;
        // Each step: the store's answer, and the entry it stored, are attemptOf's on what greyGet saw before.
        const step = async (ip: string, outcome: string, seconds: number) => {
          const before = await store.greyGet(key);
          const expected = attemptOf(before, ip, clock.now(), timing);
          assert.deepEqual(await store.greyAttempt(key, ip, clock.now(), timing), { outcome, seconds });
          assert.equal(expected.outcome, outcome);
          assert.deepEqual(await store.greyGet(key), expected.entry);
        };
        await step('192.0.2.1', 'first', 60);
        clock.advance(20.5);
        await step('192.0.2.2', 'early', 40);
        clock.advance(39);
        await step('192.0.2.2', 'early', 1);
        clock.advance(0.7);
        await step('192.0.2.3', 'retried', 60);
        clock.advance(90);
        await step('192.0.2.1', 'known', 90);
        // Past the passed TTL the triplet starts over.
        clock.advance(3600);
        await step('192.0.2.1', 'first', 60);
        // Past the retry window, too.
        clock.advance(601);
        await step('192.0.2.1', 'first', 60);
        // An entry written by greyPut (another frontline's read and write) is taken up.
        const other = 'spf:example.com|x@example.com|c@d.example';
        await store.greyPut(other, { firstSeen: clock.now() - 120_000, lastSeen: clock.now() - 120_000, attempts: 1, passes: 0, clientIp: '2001:db8::1', expiresAt: clock.now() + 480_000 });
        assert.deepEqual(await store.greyAttempt(other, '2001:DB8::2', clock.now(), timing), { outcome: 'retried', seconds: 120 });
        const e = await store.greyGet(other);
        assert.equal(e?.clientIp, '2001:db8::2');
        assert.equal(e?.passedAt, clock.now());
        assert.equal(e?.attempts, 2);
      });

      test('greyAttempt from two stores on one backend at once: every attempt counted', async () => {
        const { store, clock, open } = await fresh();
        const second = await open();
        const { timing, key } = GREY_ATTEMPT;
        const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? second : store).greyAttempt(key, '192.0.2.1', clock.now(), timing)));
        assert.equal(answers.filter((a) => a.outcome === 'first').length, 1);
        assert.equal(answers.filter((a) => a.outcome === 'early').length, 39);
        assert.equal((await store.greyGet(key))?.attempts, 40);
      });

      test('auto-allow counter per client counts up and expires', async () => {
        const { store, clock } = await fresh();
        assert.equal(await store.greyClientPasses('net:192.0.2.0/24'), 0);
        assert.equal(await store.greyClientPass('net:192.0.2.0/24', clock.now() + DAY * 1000), 1);
        assert.equal(await store.greyClientPass('net:192.0.2.0/24', clock.now() + DAY * 1000), 2);
        assert.equal(await store.greyClientPasses('net:192.0.2.0/24'), 2);
        assert.equal(await store.greyClientPasses('spf:example.com'), 0);
        clock.advance(DAY);
        assert.equal(await store.greyClientPasses('net:192.0.2.0/24'), 0);
        assert.equal(await store.greyClientPass('net:192.0.2.0/24', clock.now() + DAY * 1000), 1);
      });
    });

    describe('rate limits', () => {
      test('token bucket: burst up to capacity, then refused with the wait; refills with time', async () => {
        const { store, clock } = await fresh();
        const req = { capacity: 3, refillPerSecond: 0.5 };
        const got = [];
        for (let i = 0; i < 4; i++) got.push(await store.rateTake('ip:192.0.2.1', req));
        assert.deepEqual(
          got.map((r) => r.allowed),
          [true, true, true, false],
        );
        assert.equal(got[2].remaining, 0);
        assert.equal(got[3].retryAfterSeconds, 2);
        clock.advance(1);
        const half = await store.rateTake('ip:192.0.2.1', req);
        assert.equal(half.allowed, false);
        assert.ok(Math.abs(half.retryAfterSeconds - 1) < 1e-9);
        clock.advance(1);
        assert.equal((await store.rateTake('ip:192.0.2.1', req)).allowed, true);
        assert.equal((await store.rateTake('ip:192.0.2.2', req)).allowed, true, 'keys are independent');
        clock.advance(3600);
        const full = await store.rateTake('ip:192.0.2.1', { ...req, cost: 3 });
        assert.equal(full.allowed, true, 'refills up to capacity, not beyond');
        assert.equal(full.remaining, 0);
      });

      test('concurrent takes never overspend the bucket', async () => {
        const { store, open } = await fresh();
        const other = await open();
        const req = { capacity: 10, refillPerSecond: 0.001 };
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? store : other).rateTake('shared', req)));
        assert.equal(results.filter((r) => r.allowed).length, 10);
      });

      test('nonsense requests are refused', async () => {
        const { store } = await fresh();
        await assert.rejects(store.rateTake('k', { capacity: 0, refillPerSecond: 1 }), InvalidEntryError);
        await assert.rejects(store.rateTake('k', { capacity: 2, refillPerSecond: 1, cost: 3 }), InvalidEntryError);
      });
    });

    describe('learned correspondents', () => {
      test('counted per key, kept by a second host on the same state (a restart, or another MX), forgotten at expiry', async () => {
        const { store, clock, open } = await fresh();
        const t0 = clock.now();
        const ttl = 30 * DAY * 1000;
        assert.deepEqual(await store.correspondentRecord('example.com', 'domain', t0, t0 + ttl), {
          key: 'example.com',
          kind: 'domain',
          count: 1,
          firstSeen: t0,
          lastSeen: t0,
          expiresAt: t0 + ttl,
        });
        clock.advance(HOUR);
        const t1 = clock.now();
        const again = await store.correspondentRecord('example.com', 'domain', t1, t1 + ttl);
        assert.deepEqual([again.count, again.firstSeen, again.lastSeen, again.expiresAt], [2, t0, t1, t1 + ttl]);
        await store.correspondentRecord('bob@gmail.com', 'address', t1, t1 + ttl);

        const other = await open();
        assert.equal((await other.correspondentGet('example.com', t1))?.count, 2);
        assert.deepEqual(
          (await other.correspondentAll(t1)).map((c) => [c.key, c.kind, c.count]),
          [
            ['bob@gmail.com', 'address', 1],
            ['example.com', 'domain', 2],
          ],
        );
        assert.equal(await other.correspondentGet('unknown.example', t1), undefined);

        // Expired: gone from reads; a new message starts the count again.
        const late = t1 + ttl + 1;
        assert.equal(await store.correspondentGet('example.com', late), undefined);
        assert.deepEqual(await store.correspondentAll(late), []);
        const fresh2 = await store.correspondentRecord('example.com', 'domain', late, late + ttl);
        assert.deepEqual([fresh2.count, fresh2.firstSeen], [1, late]);
        clock.ms = late;
        const purged = await store.purge();
        assert.equal(purged.correspondents, 1, 'the expired address is purged');
        assert.deepEqual((await store.correspondentAll(late)).map((c) => c.key), ['example.com']);
      });

      test('records made together count as if made one by one', async () => {
        const { store, clock } = await fresh();
        const t0 = clock.now();
        const ttl = DAY * 1000;
        const rec = (key: string, t: number, exp = t + ttl) => store.correspondentRecord(key, 'domain', t, exp);
        const got = await Promise.all([rec('example.com', t0), rec('other.example', t0), rec('example.com', t0 + 1), rec('example.com', t0 + 2)]);
        assert.deepEqual(
          got.map((c) => [c.key, c.count, c.firstSeen, c.lastSeen]),
          [
            ['example.com', 1, t0, t0],
            ['other.example', 1, t0, t0],
            ['example.com', 2, t0, t0 + 1],
            ['example.com', 3, t0, t0 + 2],
          ],
        );
        assert.deepEqual(await store.correspondentGet('example.com', t0 + 2), { key: 'example.com', kind: 'domain', count: 3, firstSeen: t0, lastSeen: t0 + 2, expiresAt: t0 + 2 + ttl });
        // Once the row has expired, counting starts again, gathered or not.
        const late = t0 + 2 + ttl + 1;
        const again = await Promise.all([rec('example.com', late), rec('example.com', late + 1)]);
        assert.deepEqual(
          again.map((c) => [c.count, c.firstSeen]),
          [
            [1, late],
            [2, late],
          ],
        );
        // A record that expires before the next one of its key: the next starts afresh.
        const short = await Promise.all([rec('short.example', late, late + 1), rec('short.example', late + 5)]);
        assert.deepEqual(
          short.map((c) => [c.count, c.firstSeen, c.expiresAt]),
          [
            [1, late, late + 1],
            [1, late + 5, late + 5 + ttl],
          ],
        );
      });

      test('trim keeps the ones seen last', async () => {
        const { store, clock } = await fresh();
        const t0 = clock.now();
        for (let i = 0; i < 5; i++) await store.correspondentRecord(`d${i}.example`, 'domain', t0 + i, t0 + i + DAY * 1000);
        assert.equal(await store.correspondentTrim(2), 3);
        assert.deepEqual((await store.correspondentAll(t0)).map((c) => c.key), ['d3.example', 'd4.example']);
        assert.equal(await store.correspondentTrim(2), 0);
      });
    });

    describe('sasl_spread and held users', () => {
      const W = { windowMs: HOUR * 1000, newWindowMs: HOUR * 1000, knownMs: 30 * DAY * 1000, maxValues: 100 };
      const ip = (value: string) => ({ kind: 'ip' as const, value });
      const rcpt = (value: string) => ({ kind: 'rcpt' as const, value });

      test('distinct addresses, networks and countries in the window; new recipients; seen by a second host', async () => {
        const { store, clock, open } = await fresh();
        const rec = (values: Parameters<Store['spreadRecord']>[0]['values'], user = 'joe') => store.spreadRecord({ user, values, now: clock.now(), ...W });
        assert.deepEqual(await rec([ip('192.0.2.1'), { kind: 'asn', value: 'AS64496' }, { kind: 'country', value: 'DE' }, rcpt('a@x.test')]), { ips: 1, asns: 1, countries: 1, newRcpts: 1 });
        // The same values again count once.
        assert.deepEqual(await rec([ip('192.0.2.1'), rcpt('a@x.test')]), { ips: 1, asns: 1, countries: 1, newRcpts: 1 });
        clock.advance(600);
        assert.deepEqual(await rec([ip('198.51.100.7'), { kind: 'country', value: 'FR' }, rcpt('b@x.test')]), { ips: 2, asns: 1, countries: 2, newRcpts: 2 });
        // Another user is counted apart.
        assert.deepEqual(await rec([ip('203.0.113.9')], 'ann'), { ips: 1, asns: 0, countries: 0, newRcpts: 0 });
        const other = await open();
        assert.deepEqual(await other.spreadRecord({ user: 'joe', values: [ip('203.0.113.5')], now: clock.now(), ...W }), { ips: 3, asns: 1, countries: 2, newRcpts: 2 });
      });

      test('the window slides: old addresses drop out; a recipient stays known, so it is not new again', async () => {
        const { store, clock } = await fresh();
        const rec = (values: Parameters<Store['spreadRecord']>[0]['values']) => store.spreadRecord({ user: 'joe', values, now: clock.now(), ...W });
        await rec([ip('192.0.2.1'), rcpt('a@x.test')]);
        clock.advance(HOUR - 10);
        assert.deepEqual(await rec([ip('192.0.2.2')]), { ips: 2, asns: 0, countries: 0, newRcpts: 1 });
        clock.advance(20);
        // 192.0.2.1 was seen an hour and ten seconds ago: out; a@x.test was first seen then: not new.
        assert.deepEqual(await rec([ip('192.0.2.2'), rcpt('a@x.test')]), { ips: 1, asns: 0, countries: 0, newRcpts: 0 });
        assert.deepEqual(await rec([rcpt('c@x.test')]), { ips: 1, asns: 0, countries: 0, newRcpts: 1 });
      });

      test('at most maxValues per user and kind: the counts saturate, the least recently seen go', async () => {
        const { store, clock } = await fresh();
        let last = { ips: 0, asns: 0, countries: 0, newRcpts: 0 };
        for (let i = 0; i < 12; i++) {
          clock.advance(1);
          last = await store.spreadRecord({ user: 'joe', values: [ip(`192.0.2.${i}`), rcpt(`r${i}@x.test`)], now: clock.now(), ...W, maxValues: 5 });
        }
        assert.deepEqual(last, { ips: 5, asns: 0, countries: 0, newRcpts: 5 });
        // r0 was dropped: it counts as new again (and pushes out r7).
        clock.advance(1);
        assert.equal((await store.spreadRecord({ user: 'joe', values: [rcpt('r11@x.test')], now: clock.now(), ...W, maxValues: 5 })).newRcpts, 5);
      });

      test('bad records are refused before anything is written', async () => {
        const { store, clock } = await fresh();
        const ok = { user: 'joe', values: [ip('192.0.2.1')], now: clock.now(), ...W };
        await assert.rejects(store.spreadRecord({ ...ok, user: '' }), InvalidEntryError);
        await assert.rejects(store.spreadRecord({ ...ok, user: 'x'.repeat(321) }), InvalidEntryError);
        await assert.rejects(store.spreadRecord({ ...ok, values: [{ kind: 'bogus' as 'ip', value: '1' }] }), InvalidEntryError);
        await assert.rejects(store.spreadRecord({ ...ok, values: [ip('y'.repeat(321))] }), InvalidEntryError);
        await assert.rejects(store.spreadRecord({ ...ok, windowMs: 0 }), InvalidEntryError);
        assert.deepEqual(await store.spreadRecord(ok), { ips: 1, asns: 0, countries: 0, newRcpts: 0 });
      });

      test('hold, show on a second host, keep the first hold, release resets the spread', async () => {
        const { store, clock, open } = await fresh();
        const t0 = clock.now();
        for (const [i, r] of ['a@x.test', 'b@x.test'].entries()) await store.spreadRecord({ user: 'joe', values: [ip(`192.0.2.${i}`), rcpt(r)], now: t0, ...W });
        assert.deepEqual(await store.userHold({ user: 'joe', by: 'rule:sasl-spread', reason: '5 client addresses in 3600 s', createdAt: t0 }), {
          hold: { user: 'joe', by: 'rule:sasl-spread', reason: '5 client addresses in 3600 s', createdAt: t0 },
          created: true,
        });
        const again = await store.userHold({ user: 'joe', by: 'cli:root', reason: 'again', createdAt: t0 + 5 });
        assert.equal(again.created, false);
        assert.equal(again.hold.by, 'rule:sasl-spread');
        const other = await open();
        assert.equal((await other.userHoldGet('joe'))?.reason, '5 client addresses in 3600 s');
        assert.equal(await other.userHoldGet('ann'), undefined);
        await store.userHold({ user: 'ann', by: 'cli:root', reason: '', createdAt: t0 + 1 });
        assert.deepEqual((await other.userHolds()).map((h) => h.user), ['joe', 'ann']);
        assert.equal((await other.userRelease('joe'))?.by, 'rule:sasl-spread');
        assert.equal(await store.userHoldGet('joe'), undefined);
        assert.equal(await store.userRelease('joe'), undefined, 'a second release finds no hold');
        // After the release: no address counted, the known recipients are not new.
        assert.deepEqual(await store.spreadRecord({ user: 'joe', values: [ip('192.0.2.9'), rcpt('a@x.test')], now: t0 + 1000, ...W }), { ips: 1, asns: 0, countries: 0, newRcpts: 0 });
        await assert.rejects(store.userHold({ user: '', by: 'x', reason: '', createdAt: t0 }), InvalidEntryError);
      });
    });

    describe('decision log', () => {
      const ev = (ts: number, clientIp: string, rule: string, from: string, rcpts: string[], action = 'reject') => ({
        ts,
        sessionId: `s-${ts}`,
        clientIp,
        helo: 'mx.example.net',
        from,
        rcpts,
        stage: 'rcpt',
        action,
        code: action === 'reject' ? 554 : undefined,
        rule,
        text: 'no',
        evidence: [{ check: 'dnsbl', result: 'listed', detail: 'x'.repeat(1000), ms: 1.5 }],
      });

      test('queries by ip, domain, rule, action and time, newest first, with a limit', async () => {
        const { store, clock } = await fresh();
        const t = clock.now();
        await Promise.all([
          store.logEvent(ev(t + 1, '192.0.2.1', 'dnsbl', 'a@sender.example', ['x@rcpt.example'])),
          store.logEvent(ev(t + 2, '192.0.2.2', 'spf', 'b@other.example', ['y@RCPT.example', 'z@third.example'])),
          store.logEvent(ev(t + 3, '192.0.2.1', 'spf', '', ['x@rcpt.example'], 'defer')),
          store.logEvent(ev(t + 4, '2001:db8::1', 'greylist', 'c@sender.example', ['w@four.example'], 'defer')),
        ]);
        const ids = (es: Array<{ ts: number }>) => es.map((e) => e.ts - t);
        assert.deepEqual(ids(await store.queryEvents({})), [4, 3, 2, 1]);
        assert.deepEqual(ids(await store.queryEvents({ ip: '192.0.2.1' })), [3, 1]);
        assert.deepEqual(ids(await store.queryEvents({ ip: '2001:DB8:0::1' })), [4]);
        assert.deepEqual(ids(await store.queryEvents({ domain: 'sender.example' })), [4, 1]);
        assert.deepEqual(ids(await store.queryEvents({ domain: 'rcpt.example' })), [3, 2, 1]);
        assert.deepEqual(ids(await store.queryEvents({ domain: 'third.example' })), [2]);
        assert.deepEqual(ids(await store.queryEvents({ rule: 'spf' })), [3, 2]);
        assert.deepEqual(ids(await store.queryEvents({ action: 'defer' })), [4, 3]);
        assert.deepEqual(ids(await store.queryEvents({ since: t + 2, until: t + 3 })), [3, 2]);
        assert.deepEqual(ids(await store.queryEvents({ limit: 1 })), [4]);
        const [e] = await store.queryEvents({ rule: 'dnsbl' });
        assert.equal(e.sessionId, `s-${t + 1}`);
        assert.equal(e.helo, 'mx.example.net');
        assert.equal(e.code, 554);
        assert.deepEqual(e.rcpts, ['x@rcpt.example']);
        assert.equal(e.evidence[0].check, 'dnsbl');
        assert.ok((e.evidence[0].detail ?? '').length <= 300, 'evidence detail is compacted');
        assert.equal(typeof e.id, 'string');
      });

      test('keeps the score and what test-mode rules would have done; --would-have finds them', async () => {
        const { store, clock } = await fresh();
        const t = clock.now();
        await Promise.all([
          store.logEvent({ ...ev(t + 1, '192.0.2.1', 'default', 'a@sender.example', ['x@rcpt.example'], 'continue'), score: 3.5 }),
          store.logEvent({
            ...ev(t + 2, '192.0.2.2', 'default', 'b@other.example', ['y@rcpt.example'], 'continue'),
            score: -1,
            wouldHave: [
              { rule: 'no-ptr', action: 'reject', code: 550, text: 'no reverse DNS' },
              { rule: 'score-new', action: 'continue', text: 'score +2' },
            ],
          }),
          store.logEvent(ev(t + 3, '192.0.2.3', 'spf', 'c@sender.example', ['z@rcpt.example'])),
        ]);
        const all = await store.queryEvents({});
        assert.deepEqual(
          all.map((e) => [e.ts - t, e.score, e.wouldHave]),
          [
            [3, undefined, undefined],
            [
              2,
              -1,
              [
                { rule: 'no-ptr', action: 'reject', code: 550, text: 'no reverse DNS' },
                { rule: 'score-new', action: 'continue', text: 'score +2' },
              ],
            ],
            [1, 3.5, undefined],
          ],
        );
        assert.deepEqual(
          (await store.queryEvents({ wouldHave: true })).map((e) => e.ts - t),
          [2],
        );
      });

      test('counters: per minute by action, top keys per hour, zones, test-mode findings (countEvents)', async () => {
        const { store, clock } = await fresh();
        const h0 = Math.floor(clock.now() / 3_600_000) * 3_600_000 + 3_600_000;
        const listed = {
          check: 'dnsbl',
          result: 'listed',
          detail: '192.0.2.9 listed by zen.example (127.0.0.2), bl.example (127.0.0.4); score 2 ≥ 1; not consulted: dead.example (out of use: lists 127.0.0.1)',
        };
        const e = (min: number, ip: string, rule: string, action: string, from?: string) => ({
          ...ev(h0 + min * 60_000 + 5, ip, rule, from ?? 'x@Sender.Example', ['u@rcpt.example'], action),
          evidence: rule === 'dnsbl' ? [listed] : [{ check: 'spf', result: 'pass' }],
        });
        await Promise.all([
          store.logEvent(e(0, '192.0.2.9', 'dnsbl', 'reject')),
          store.logEvent(e(0, '192.0.2.9', 'dnsbl', 'reject')),
          store.logEvent(e(1, '192.0.2.8', 'greylist', 'defer', '')),
          store.logEvent(e(1, '192.0.2.7', 'default', 'accept')),
          store.logEvent({ ...e(61, '2001:DB8::1', 'default', 'accept'), wouldHave: [{ rule: 'no-ptr', action: 'reject', code: 550 }] }),
          store.logEvent(e(62, '192.0.2.9', 'dnsbl', 'reject')),
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'minute', since: h0, until: h0 + 2 * 3_600_000 }), [
          { bucket: h0, key: '', action: 'reject', n: 2 },
          { bucket: h0 + 60_000, key: '', action: 'accept', n: 1 },
          { bucket: h0 + 60_000, key: 'greylist', action: 'defer', n: 1 },
          { bucket: h0 + 61 * 60_000, key: '', action: 'accept', n: 1 },
          { bucket: h0 + 62 * 60_000, key: '', action: 'reject', n: 1 },
        ]);
        // A window covers whole buckets: `since` inside the first minute still counts it.
        assert.equal((await store.countEvents({ dim: 'minute', since: h0 + 30_000, until: h0 + 30_000 })).length, 1);
        assert.deepEqual(await store.countEvents({ dim: 'client', since: h0, limit: 2 }), [
          { key: '192.0.2.9', action: 'reject', n: 3 },
          { key: '192.0.2.7', action: 'accept', n: 1 },
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'client', since: h0, actions: ['accept'], limit: 5 }), [
          { key: '192.0.2.7', action: 'accept', n: 1 },
          { key: '2001:db8::1', action: 'accept', n: 1 },
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'client', since: h0 + 3_600_000, limit: 5 }), [
          { key: '192.0.2.9', action: 'reject', n: 1 },
          { key: '2001:db8::1', action: 'accept', n: 1 },
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'domain', since: h0 }), [
          { key: 'sender.example', action: 'reject', n: 3 },
          { key: 'sender.example', action: 'accept', n: 2 },
          { key: '<>', action: 'defer', n: 1 },
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'rule', since: h0, until: h0 }), [
          { key: 'dnsbl', action: 'reject', n: 2 },
          { key: 'default', action: 'accept', n: 1 },
          { key: 'greylist', action: 'defer', n: 1 },
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'zone', since: h0 }), [
          { key: 'bl.example', action: 'reject', n: 3 },
          { key: 'zen.example', action: 'reject', n: 3 },
        ]);
        assert.deepEqual(await store.countEvents({ dim: 'zone-skip', since: h0 }), [{ key: 'dead.example', action: 'reject', n: 3 }]);
        assert.deepEqual(await store.countEvents({ dim: 'would-have', since: h0 }), [{ key: 'no-ptr', action: 'reject', n: 1 }]);
        assert.deepEqual(await store.countEvents({ dim: 'rule', since: h0 + 3 * 3_600_000 }), []);
        // Retention drops the counters of the hours before the oldest remaining event.
        clock.ms = h0 + 61 * 60_000;
        assert.equal(await store.pruneEvents({ maxAgeSeconds: 30 }), 4);
        assert.deepEqual(await store.countEvents({ dim: 'rule', since: 0 }), [
          { key: 'default', action: 'accept', n: 1 },
          { key: 'dnsbl', action: 'reject', n: 1 },
        ]);
      });

      test('counters over days: the coarser counters (a day of clients, an hour of minutes) answer as every event summed', async () => {
        const { store, clock } = await fresh();
        const H = 3_600_000;
        const D = 86_400_000;
        // Days that start after the store opened (Redis counts its coarse counters from then on).
        const day0 = Math.ceil(clock.now() / D) * D + D;
        let seed = 18;
        const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
        const actions = ['reject', 'accept', 'defer', 'continue'];
        const events: Array<{ ts: number; ip: string; from: string; action: string }> = [];
        for (let i = 0; i < 3000; i++) {
          // Half from 40 returning clients (a few busy), half a new address each: a day holds hundreds of keys.
          const ip = rand() < 0.5 ? `10.0.0.${1 + Math.floor(rand() ** 3 * 40)}` : `10.${1 + Math.floor(rand() * 200)}.${Math.floor(rand() * 250)}.${1 + Math.floor(rand() * 250)}`;
          const from = `u@d${Math.floor(rand() ** 2 * 300)}.example`;
          events.push({ ts: day0 - 5 * H + Math.floor(rand() * (2 * D + 12 * H)), ip, from, action: actions[Math.floor(rand() ** 2 * 4)] });
        }
        // In time order, as decisions come (Redis's stream ids follow them, and retention reads the oldest id).
        events.sort((a, b) => a.ts - b.ts);
        for (let i = 0; i < events.length; i += 500) {
          await Promise.all(events.slice(i, i + 500).map((e) => store.logEvent(ev(e.ts, e.ip, 'r', e.from, ['x@rcpt.example'], e.action))));
        }
        // Every event summed: the hours (minutes) from the one holding `since` to the one holding `until`.
        const expectTop = (keyOf: (e: (typeof events)[0]) => string, since: number, until: number, limit: number, only?: string[]) => {
          const by = new Map<string, Map<string, number>>();
          for (const e of events) {
            if (Math.floor(e.ts / H) < Math.floor(since / H) || Math.floor(e.ts / H) > Math.floor(until / H)) continue;
            if (only && !only.includes(e.action)) continue;
            const m = by.get(keyOf(e)) ?? new Map<string, number>();
            m.set(e.action, (m.get(e.action) ?? 0) + 1);
            by.set(keyOf(e), m);
          }
          const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
          return [...by]
            .sort((a, b) => total(b[1]) - total(a[1]) || (a[0] < b[0] ? -1 : 1))
            .slice(0, limit)
            .flatMap(([key, m]) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([action, n]) => ({ key, action, n })));
        };
        const windows = [
          [day0 - 3 * H + 17 * 60_000, day0 + 2 * D + 5 * H + 180_000], // hours, two whole days, hours
          [day0 + D + 2 * H, day0 + D + 9 * H], // hours only
          [day0 - 5 * H, day0 + 3 * D], // to the end
        ];
        for (const [since, until] of windows) {
          for (const [limit, only] of [[3, ['reject']], [5, undefined], [20, ['accept', 'defer']]] as Array<[number, string[] | undefined]>) {
            assert.deepEqual(await store.countEvents({ dim: 'client', since, until, limit, actions: only }), expectTop((e) => e.ip, since, until, limit, only), `clients ${since - day0}..${until - day0} top ${limit} ${only ?? ''}`);
          }
          assert.deepEqual(await store.countEvents({ dim: 'domain', since, until, limit: 4 }), expectTop((e) => e.from.slice(2), since, until, 4), 'domains');
          // The timeline in hours reads hour counters where the window holds the hour whole, and the same numbers.
          const rows = await store.countEvents({ dim: 'minute', since, until, maxBucketMs: H });
          const inWindow = events.filter((e) => e.ts >= Math.floor(since / 60_000) * 60_000 && e.ts < Math.floor(until / 60_000) * 60_000 + 60_000);
          for (const a of actions) {
            assert.equal(rows.filter((r) => r.action === a).reduce((x, r) => x + r.n, 0), inWindow.filter((e) => e.action === a).length, `minute ${a}`);
          }
          for (const a of actions) {
            const perHour = new Map<number, number>();
            for (const r of rows.filter((x) => x.action === a)) perHour.set(Math.floor((r.bucket as number) / H), (perHour.get(Math.floor((r.bucket as number) / H)) ?? 0) + r.n);
            for (const [h, n] of perHour) assert.equal(n, inWindow.filter((e) => e.action === a && Math.floor(e.ts / H) === h).length, `hour ${h} ${a}`);
          }
          assert.ok(rows.length < inWindow.length, 'coarser rows than events');
        }
        // Retention: the counters of the hours (and days) before the oldest remaining event go; the rest answer alike.
        clock.ms = day0 + D + 3 * H + 1;
        await store.pruneEvents({ maxAgeSeconds: 0.001 });
        const left = events.filter((e) => e.ts >= day0 + D + 3 * H);
        const since = day0 - 5 * H;
        const until = day0 + 3 * D;
        const got = await store.countEvents({ dim: 'client', since, until, limit: 5 });
        events.splice(0, events.length, ...left);
        assert.deepEqual(got, expectTop((e) => e.ip, since, until, 5), 'after retention');

      });

      test('retention by age and by row count', async () => {
        const { store, clock } = await fresh();
        const t = clock.now();
        for (let i = 0; i < 10; i++) await store.logEvent(ev(t + i * 1000, '192.0.2.1', 'r', 'a@b.example', []));
        clock.ms = t + 10_000;
        assert.equal(await store.pruneEvents({ maxAgeSeconds: 7 }), 3);
        assert.deepEqual(
          (await store.queryEvents({})).map((e) => (e.ts - t) / 1000),
          [9, 8, 7, 6, 5, 4, 3],
        );
        assert.equal(await store.pruneEvents({ maxRows: 2 }), 5);
        assert.deepEqual(
          (await store.queryEvents({})).map((e) => (e.ts - t) / 1000),
          [9, 8],
        );
      });
    });

    describe('change feed', () => {
      test('local changes reach listeners; unsubscribe stops them', async () => {
        const { store } = await fresh();
        const seen: StoreChange[] = [];
        const off = store.onChange((c) => seen.push(c));
        await store.ban({ cidr: '192.0.2.1', reason: 'x', category: 'manual', source: 't' });
        await store.ban({ cidr: '192.0.2.1', reason: 'x', category: 'manual', source: 't' });
        await store.unban('192.0.2.1');
        await store.listAdd('l', 'example.com', { source: 't' });
        await store.listDel('l', 'example.com');
        await store.ban({ cidr: '127.0.0.1', reason: 'x', category: 'manual', source: 't' });
        assert.deepEqual(
          seen.map((c) => c.kind),
          ['ban', 'unban', 'list-add', 'list-del'],
        );
        off();
        await store.ban({ cidr: '192.0.2.2', reason: 'x', category: 'manual', source: 't' });
        assert.equal(seen.length, 4);
      });

      test('a second store on the same state hears bans and list changes within a second, and its index follows', async () => {
        const { store, open } = await fresh();
        const peer = await open();
        const heard: StoreChange[] = [];
        peer.onChange((c) => heard.push(c));
        const t0 = Date.now();
        await store.ban({ cidr: '198.51.100.7', reason: 'x', category: 'spamtrap', source: 'host-a' });
        await eventually(() => heard.some((c) => c.kind === 'ban'), 1000, 'peer hears the ban');
        assert.ok(Date.now() - t0 < 1000);
        assert.equal(peer.lookup.bannedBy('198.51.100.7')?.cidr, '198.51.100.7/32');
        assert.equal((await peer.getBan('198.51.100.7'))?.source, 'host-a');
        await store.listAdd('white', '192.0.2.0/24', { source: 'host-a' });
        await eventually(() => peer.lookup.listHas('white', '192.0.2.9'), 1000, 'peer index has the list entry');
        await store.unban('198.51.100.7');
        await eventually(() => peer.lookup.bannedBy('198.51.100.7') === undefined, 1000, 'peer index drops the ban');
        assert.equal(heard.filter((c) => c.kind === 'ban').length, 1, 'own echo is not repeated');
        // The other way round, and a store opened later loads what exists.
        await peer.ban({ cidr: '198.51.100.8', reason: 'y', category: 'probe', source: 'host-b' });
        await eventually(() => store.lookup.bannedBy('198.51.100.8') !== undefined, 1000, 'first store hears the peer');
        const late = await open();
        assert.equal((await late.getBan('198.51.100.8'))?.source, 'host-b');
        assert.equal(await late.listHas('white', '192.0.2.200'), true);
      });

      test('getBan trusts the store over a stale index', async () => {
        const { store, open } = await fresh();
        const peer = await open();
        await store.ban({ cidr: '203.0.113.1', reason: 'x', category: 'manual', source: 't' });
        await eventually(() => peer.lookup.bannedBy('203.0.113.1') !== undefined, 1000, 'peer index has it');
        const silent = await open();
        await peer.unban('203.0.113.1');
        // `silent` may not have heard yet; getBan must still say "not banned".
        assert.equal(await silent.getBan('203.0.113.1'), undefined);
      });
    });

    test('health reports ok; close is idempotent', async () => {
      const { store } = await fresh();
      const h = await store.health();
      assert.equal(h.ok, true);
      assert.equal(h.backend, store.backend);
      await store.close();
      await store.close();
    });
  });
}
