// The firewall backends' scripts, without a kernel: what desiredState leaves
// out (and counts), the nft / ipset scripts, and the pf input against golden
// files — pf cannot run on Linux, so these files are what was checked
// (test/fixtures/firewall/pf-*.txt; UPDATE_GOLDEN=1 rewrites them).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { banElements, desiredState } from '../../src/enforce/firewall/desired.js';
import { fixedSource } from '../../src/enforce/firewall/source.js';
import { nftBackend, nftFullScript, nftIncrementScript, parseNftJson } from '../../src/enforce/firewall/nft.js';
import { ipsetBackend, ipsetFullScript, iptablesChain, parseIpsetSave } from '../../src/enforce/firewall/ipset.js';
import { parsePfShow, pfBackend } from '../../src/enforce/firewall/pf.js';
import { formatCommands } from '../../src/enforce/firewall/run.js';
import { FirewallReconciler } from '../../src/enforce/firewall/reconciler.js';
import type { DesiredState, FirewallCommand } from '../../src/enforce/firewall/types.js';
import type { CommandRunner } from '../../src/enforce/firewall/run.js';
import { memoryLogger } from '../helpers/firewall.js';

const NOW = 1_800_000_000_000;
const H = 3600_000;
const MIN = { v4: 16, v6: 32 };

function golden(name: string, actual: string): void {
  const path = new URL(`../fixtures/firewall/${name}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `differs from test/fixtures/firewall/${name}`);
}

const SAMPLE = {
  bans: [
    { cidr: '198.51.100.7/32', expiresAt: NOW + H },
    { cidr: '203.0.113.0/24', expiresAt: NOW + 2 * H },
    { cidr: '2001:db8:1::/64', expiresAt: NOW + 90_500 },
    { cidr: '2001:db8:2::5/128', expiresAt: NOW + 30 * 86400_000 },
  ],
  allow: ['127.0.0.0/8', '::1', '192.0.2.0/24', '192.0.2.10', '2001:db8:ffff::/48'],
  minPrefix: MIN,
  now: NOW,
};

describe('desired state', () => {
  test('bad store entries are left out and counted, the rest kept', () => {
    const s = desiredState({
      ...SAMPLE,
      bans: [
        ...SAMPLE.bans,
        { cidr: '010.0.0.1', expiresAt: NOW + H }, // octal-looking
        { cidr: '198.51.100.9/24', expiresAt: NOW + H }, // host bits set
        { cidr: 'garbage', expiresAt: NOW + H },
        { cidr: '0.0.0.0/0', expiresAt: NOW + H }, // too wide
        { cidr: '10.0.0.0/8', expiresAt: NOW + H }, // too wide
        { cidr: '2001::/16', expiresAt: NOW + H }, // too wide
        { cidr: '127.0.0.1', expiresAt: NOW + H }, // loopback
        { cidr: '192.0.2.0/25', expiresAt: NOW + H }, // inside an allowed network
        { cidr: '192.0.0.0/16', expiresAt: NOW + H }, // contains an allowed network
        { cidr: '2001:db8:ffff:1::9', expiresAt: NOW + H }, // inside an allowed v6 network
        { cidr: '198.51.100.8', expiresAt: NOW - 1 }, // expired: simply not there
      ],
      allow: [...SAMPLE.allow, 'bad allow entry'],
      disjointNets: true,
    });
    assert.deepEqual(s.skipped, { malformed: 3, tooWide: 3, neverBan: 4, allowMalformed: 1 });
    assert.deepEqual(banElements(s).map((b) => b.cidr).sort(), ['198.51.100.7/32', '2001:db8:1::/64', '2001:db8:2::5/128', '203.0.113.0/24']);
    // 192.0.2.10 lies inside 192.0.2.0/24: an nft interval set would refuse both.
    assert.deepEqual(s.allow, ['127.0.0.0/8', '192.0.2.0/24', '2001:db8:ffff::/48', '::1/128']);
    assert.equal(s.examples.length, 5);
  });

  test('nft: a network inside a wider ban is covered, or shadowed until the wider one ends', () => {
    const s = desiredState({
      bans: [
        { cidr: '203.0.113.0/24', expiresAt: NOW + H },
        { cidr: '203.0.113.128/25', expiresAt: NOW + H / 2 }, // covered
        { cidr: '203.0.113.0/26', expiresAt: NOW + 5 * H }, // outlasts the /24
        { cidr: '203.0.113.9/32', expiresAt: NOW + 9 * H }, // a host: its own set
      ],
      allow: [],
      minPrefix: MIN,
      now: NOW,
      disjointNets: true,
    });
    assert.deepEqual(banElements(s).map((b) => b.cidr).sort(), ['203.0.113.0/24', '203.0.113.9/32']);
    assert.equal(s.shadowedUntil, NOW + H);
    const ipset = desiredState({ bans: banElements(s), allow: [], minPrefix: MIN, now: NOW, disjointNets: false });
    assert.equal(ipset.shadowedUntil, undefined);
  });
});

describe('nft', () => {
  const state = desiredState({ ...SAMPLE, disjointNets: true });
  test('the full script: one table, hosts and networks per family, allow first, timeouts left', () => {
    golden('nft-full.txt', nftFullScript(state, { ports: [22, 25, 465, 587, 993], action: 'reject' }, NOW));
    const all = nftFullScript(state, { ports: [], action: 'drop' }, NOW);
    assert.match(all, /meta l4proto tcp ip saddr @ban4 drop/);
    assert.match(all, /198\.51\.100\.7 timeout 3600s/);
    assert.match(all, /2001:db8:1::\/64 timeout 91s/, 'rounded up');
    assert.doesNotMatch(all, /table (?!inet frontline)/, 'no other table is named');
  });
  test('timeouts are capped at what the kernel takes', () => {
    const s = desiredState({ ...SAMPLE, bans: [{ cidr: '198.51.100.1', expiresAt: NOW + 3650 * 86400_000 }], disjointNets: true });
    assert.match(nftFullScript(s, { ports: [], action: 'drop' }, NOW), /198\.51\.100\.1 timeout 31536000s/);
  });
  test('increments: add, and delete after an add so an expired element is no error', () => {
    const [host, net] = [banElements(state).find((b) => b.cidr === '198.51.100.7/32')!, banElements(state).find((b) => b.cidr === '203.0.113.0/24')!];
    assert.equal(
      nftIncrementScript([host], [net], NOW),
      'add element inet frontline ban4 { 198.51.100.7 timeout 3600s }\n' +
        'add element inet frontline ban4_nets { 203.0.113.0/24 timeout 1s }\n' +
        'delete element inet frontline ban4_nets { 203.0.113.0/24 }\n',
    );
  });
  test('the listing read back', () => {
    const k = parseNftJson(
      JSON.stringify({
        nftables: [
          { metainfo: {} },
          { table: { family: 'inet', name: 'frontline' } },
          { set: { family: 'inet', name: 'ban4', table: 'frontline', elem: [{ elem: { val: '198.51.100.7', timeout: 3600, expires: 3500 } }] } },
          { set: { family: 'inet', name: 'ban6_nets', table: 'frontline', elem: [{ elem: { val: { prefix: { addr: '2001:db8:1::', len: 64 } }, timeout: 91, expires: 90 } }] } },
          { set: { family: 'inet', name: 'allow4', table: 'frontline', elem: [{ prefix: { addr: '127.0.0.0', len: 8 } }] } },
          { set: { family: 'inet', name: 'other', table: 'someone-else', elem: ['10.0.0.1'] } },
        ],
      }),
    );
    assert.equal(k.present, true);
    assert.deepEqual([...k.bans], [['198.51.100.7/32', 3500], ['2001:db8:1::/64', 90]]);
    assert.deepEqual([...k.allow], ['127.0.0.0/8']);
    assert.equal(parseNftJson('').present, false);
  });
});

describe('ipset', () => {
  const state = desiredState({ ...SAMPLE, disjointNets: false });
  test('one restore: every set refilled through a temporary set and swapped in', () => {
    golden('ipset-full.txt', ipsetFullScript(state, NOW));
    assert.equal(
      iptablesChain(4, { ports: Array.from({ length: 17 }, (_, i) => 1000 + i), action: 'reject' }),
      '*filter\n:FRONTLINE - [0:0]\n-A FRONTLINE -m set --match-set frontline-allow4 src -j RETURN\n' +
        '-A FRONTLINE -p tcp -m multiport --dports 1000,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013,1014 -m set --match-set frontline-ban4 src -j REJECT --reject-with tcp-reset\n' +
        '-A FRONTLINE -p tcp -m multiport --dports 1015,1016 -m set --match-set frontline-ban4 src -j REJECT --reject-with tcp-reset\nCOMMIT\n',
    );
    assert.match(ipsetFullScript(desiredState({ ...SAMPLE, bans: [{ cidr: '198.51.100.1', expiresAt: NOW + 300 * 86400_000 }], disjointNets: false }), NOW), /198\.51\.100\.1 timeout 2147483\n/);
  });
  test('the listing read back', () => {
    const k = parseIpsetSave(['create frontline-ban4 hash:net family inet timeout 0\nadd frontline-ban4 198.51.100.7 timeout 3599\nadd frontline-ban4 203.0.113.0/24 timeout 10\n', 'add frontline-allow6 ::1\n', '']);
    assert.deepEqual([...k.bans], [['198.51.100.7/32', 3599], ['203.0.113.0/24', 10]]);
    assert.deepEqual([...k.allow], ['::1/128']);
    assert.equal(k.present, true);
  });
});

describe('pf (not run here: golden files)', () => {
  const state = desiredState({ ...SAMPLE, disjointNets: false });
  const pf = pfBackend();
  test('full reconcile: the anchor rule and one table replace', () => {
    golden('pf-full.txt', formatCommands(pf.full(state, { ports: [25, 465, 587], action: 'drop' }, NOW)));
    golden('pf-full-reject-all-ports.txt', formatCommands(pf.full(state, { ports: [], action: 'reject' }, NOW)));
  });
  test('increments and flush', () => {
    const add = banElements(state).filter((b) => b.cidr.startsWith('198'));
    const del = banElements(state).filter((b) => b.cidr.startsWith('203'));
    golden('pf-increment.txt', formatCommands(pf.increment(add, del, NOW)));
    golden('pf-flush.txt', formatCommands(pf.flush()));
  });
  test('the table read back: negated entries are the allow set', () => {
    const k = parsePfShow('   198.51.100.7\n   2001:db8:1::/64\n  !127.0.0.0/8\n');
    assert.deepEqual([...k.bans.keys()], ['198.51.100.7/32', '2001:db8:1::/64']);
    assert.deepEqual([...k.allow], ['127.0.0.0/8']);
  });
});

describe('reconciler', () => {
  const source = (bans: Array<{ cidr: string; expiresAt: number }>, allow: string[] = []) => fixedSource(bans, allow, MIN, ['allow']);
  const recorder = () => {
    const seen: Array<{ argv: string[]; stdin?: string }> = [];
    const run: CommandRunner = async (argv, stdin) => {
      seen.push({ argv, stdin });
      return { code: 0, stdout: '', stderr: '' };
    };
    return { seen, run };
  };
  const clock = { now: () => NOW, after: () => () => {} };

  test('a refused script fails the reconcile with the tool\'s words; increments wait for a good one', async () => {
    let fail = true;
    const seen: string[] = [];
    const run: CommandRunner = async (argv, stdin) => {
      seen.push(stdin ?? '');
      return fail ? { code: 1, stdout: '', stderr: 'Error: Could not process rule: Operation not permitted\n' } : { code: 0, stdout: '', stderr: '' };
    };
    const log = memoryLogger();
    const r = new FirewallReconciler({ backend: nftBackend(), rules: { ports: [], action: 'drop' }, source: source([{ cidr: '198.51.100.7', expiresAt: NOW + H }]), reconcileS: 300, run, clock, logger: log });
    const first = await r.start();
    assert.equal(first.ok, false);
    assert.match(first.error!, /nft: not permitted \(frontline needs CAP_NET_ADMIN/);
    assert.equal(log.lines.filter((l) => l.startsWith('error')).length, 1);
    await r.applyChanges([{ kind: 'ban', ban: { cidr: '198.51.100.8/32', expiresAt: NOW + H, reason: '', category: 'manual', source: 't', firstSeen: NOW, createdAt: NOW, offences: 1 } }]);
    assert.equal(seen.length, 1, 'no increment while the firewall refuses');
    fail = false;
    assert.equal((await r.reconcile()).ok, true);
    await r.stop();
  });

  test('increments from the feed: bad and never-ban entries stay out, an overlapping network means a full reconcile', async () => {
    const { seen, run } = recorder();
    const log = memoryLogger();
    const r = new FirewallReconciler({
      backend: nftBackend(),
      rules: { ports: [], action: 'drop' },
      source: source([{ cidr: '203.0.113.0/24', expiresAt: NOW + H }], ['192.0.2.0/24']),
      reconcileS: 300,
      run,
      clock,
      logger: log,
    });
    await r.start();
    const ban = (cidr: string) => ({ kind: 'ban' as const, ban: { cidr, expiresAt: NOW + H, reason: '', category: 'manual', source: 't', firstSeen: NOW, createdAt: NOW, offences: 1 } });
    await r.applyChanges([ban('198.51.100.7/32'), ban('192.0.2.5/32'), ban('0.0.0.0/0'), ban('nonsense'), { kind: 'unban', cidr: '198.51.100.9/32' }]);
    assert.equal(seen.length, 2);
    assert.equal(seen[1].stdin, 'add element inet frontline ban4 { 198.51.100.7 timeout 3600s }\nadd element inet frontline ban4 { 198.51.100.9 timeout 1s }\ndelete element inet frontline ban4 { 198.51.100.9 }\n');
    assert.equal(log.lines.filter((l) => /left out/.test(l)).length, 3);
    await r.applyChanges([ban('203.0.113.0/25')]);
    await r.reconcile();
    assert.equal(seen.length, 3, 'the overlapping network went to a full reconcile');
    assert.match(seen[2].stdin!, /delete table inet frontline/);
    await r.stop();
  });

  test('dry-run output names each command and its input', () => {
    const cmds: FirewallCommand[] = [{ argv: ['iptables', '-I', 'INPUT', '1', '-j', 'FRONTLINE'], unless: ['iptables', '-C', 'INPUT', '-j', 'FRONTLINE'] }, { argv: ['nft', '-f', '-'], stdin: 'add table inet frontline\n' }];
    assert.equal(formatCommands(cmds), '# unless `iptables -C INPUT -j FRONTLINE` succeeds:\n$ iptables -I INPUT 1 -j FRONTLINE\n$ nft -f - <<EOF\nadd table inet frontline\nEOF\n');
  });

  test('every backend names only its own table, sets and chain', () => {
    const s: DesiredState = desiredState({ ...SAMPLE, disjointNets: false });
    for (const b of [nftBackend(), ipsetBackend(), pfBackend()]) {
      const text = formatCommands([...b.full(s, { ports: [], action: 'drop' }, NOW), ...b.flush(), ...b.list()]);
      assert.doesNotMatch(text, /flush ruleset|-F INPUT|-F\s*$|-F all/m, b.name);
    }
  });
});
