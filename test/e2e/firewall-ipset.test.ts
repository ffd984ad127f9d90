// The firewall's ipset + iptables backend against the real `ipset`,
// `iptables-restore` and `ip6tables-restore`, in two network namespaces this
// test makes: a banned client cannot open a TCP connection (rejected with a
// TCP reset here), an allow-listed one can, a ban's end lets it in again
// (ipset's own timeout), and a hand-deleted element comes back at the next
// reconcile. Only frontline's chain and sets are touched.
//
// Run: npm run test:e2e (as root; skipped without ipset or iptables outside CI).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { startFirewall } from '../../src/enforce/firewall/index.js';
import { ipsetBackend } from '../../src/enforce/firewall/ipset.js';
import { firewallSchema } from '../../src/config/enforce-schema.js';
import { requireBinary } from '../helpers/binaries.js';
import { eventually, netnsPair } from '../helpers/netns.js';
import { memoryLogger } from '../helpers/firewall.js';

test('ipset + iptables: bans rejected in the kernel, allow list wins, expiry, repair at reconcile', { timeout: 240_000 }, async (t) => {
  for (const b of ['ipset', 'iptables-restore', 'ip6tables-restore', 'iptables']) if (!requireBinary(b, t)) return;
  const net = await netnsPair(t);
  if (!net) return;
  const dir = mkdtempSync(join(tmpdir(), 'fl-fw-ipset-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openStore({ backend: 'sqlite', path: join(dir, 'state.db'), pollMs: 100 }, { purgeIntervalSeconds: 0, neverBanLists: ['allow'], ownAddresses: [] });
  t.after(() => store.close());
  const log = memoryLogger();
  // An admin rule of their own in INPUT: frontline must leave it alone.
  assert.equal((await net.run(['iptables', '-A', 'INPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP'])).code, 0);
  const cfg = firewallSchema.parse({ backend: 'ipset', reconcile_s: 3, action: 'reject' });
  const fw = startFirewall(cfg, { store, logger: log, staticAllow: ['127.0.0.0/8', '::1'], minPrefix: { v4: 16, v6: 32 }, run: net.run, backend: ipsetBackend() });
  t.after(() => fw.stop());
  const first = (await fw.ready) as { ok: boolean };
  assert.equal(first.ok, true, log.lines.join('\n'));

  const [a, b, c] = net.client4;
  const [a6] = net.client6;
  assert.equal(await net.connects(a), true, 'before any ban, the client connects');

  await store.ban({ cidr: a, reason: 'test', category: 'manual', source: 'test', durationSeconds: 3600 });
  await store.ban({ cidr: a6, reason: 'test', category: 'manual', source: 'test', durationSeconds: 3600 });
  await eventually('the banned IPv4 client is refused', async () => !(await net.connects(a, 800)));
  await eventually('the banned IPv6 client is refused', async () => !(await net.connects(a6, 800)));
  assert.equal(await net.connects(b), true, 'an address not banned still connects');
  const saved = (await net.run(['ipset', 'save', 'frontline-ban4'])).stdout;
  assert.match(saved, new RegExp(`add frontline-ban4 ${a.replaceAll('.', '\\.')} timeout 3[56]\\d\\d`), 'the element carries the remaining time');

  await store.ban({ cidr: b, reason: 'test', category: 'manual', source: 'test', durationSeconds: 3600 });
  await eventually('the second client is refused', async () => !(await net.connects(b, 800)));
  await store.listAdd('allow', b, { source: 'test' });
  await eventually('the allow-listed client connects although banned in the store', () => net.connects(b));

  await store.ban({ cidr: c, reason: 'short', category: 'manual', source: 'test', durationSeconds: 6 });
  await eventually('the short-banned client is refused', async () => !(await net.connects(c, 800)));
  await eventually('after the ban ends it connects again', () => net.connects(c), 60_000);

  const del = await net.run(['ipset', 'del', 'frontline-ban4', a]);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(await net.connects(a), true, 'deleted by hand: the client connects');
  await eventually('the reconcile puts the element back', async () => !(await net.connects(a, 800)));

  const rules = (await net.run(['iptables', '-S', 'INPUT'])).stdout;
  assert.match(rules, /-A INPUT -p udp -m udp --dport 9 -j DROP/, "the admin's rule is still there");
  assert.equal(rules.match(/-j FRONTLINE/g)?.length, 1, 'one jump to FRONTLINE, however many reconciles');
});
