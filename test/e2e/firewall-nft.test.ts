// The firewall's nftables backend against the real `nft`, in two network
// namespaces this test makes (a veth pair): the store's bans reach the
// server namespace's `table inet frontline`, and a banned client address
// cannot open a TCP connection to a listener there. Also: an address on the
// allow list can, whatever the store says; a ban's end lets it in again
// (the kernel's own timeout); a hand-deleted element comes back at the next
// reconcile; a malformed or too-wide store entry is left out and counted,
// never failing the transaction.
//
// Run: npm run test:e2e (as root; skipped without nft or ip outside CI).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import { startFirewall } from '../../src/enforce/firewall/index.js';
import { nftBackend } from '../../src/enforce/firewall/nft.js';
import { FirewallReconciler } from '../../src/enforce/firewall/reconciler.js';
import { fixedSource } from '../../src/enforce/firewall/source.js';
import { firewallSchema } from '../../src/config/enforce-schema.js';
import { requireBinary } from '../helpers/binaries.js';
import { eventually, netnsPair } from '../helpers/netns.js';
import { memoryLogger } from '../helpers/firewall.js';

test('nftables: bans dropped in the kernel, allow list wins, expiry, repair at reconcile', { timeout: 240_000 }, async (t) => {
  if (!requireBinary('nft', t)) return;
  const net = await netnsPair(t);
  if (!net) return;
  const dir = mkdtempSync(join(tmpdir(), 'fl-fw-nft-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openStore({ backend: 'sqlite', path: join(dir, 'state.db'), pollMs: 100 }, { purgeIntervalSeconds: 0, neverBanLists: ['allow'], ownAddresses: [] });
  t.after(() => store.close());
  const log = memoryLogger();
  const cfg = firewallSchema.parse({ backend: 'nft', reconcile_s: 3, ports: [net.port, 22] });
  const fw = startFirewall(cfg, { store, logger: log, staticAllow: ['127.0.0.0/8', '::1'], minPrefix: { v4: 16, v6: 32 }, run: net.run, backend: nftBackend() });
  t.after(() => fw.stop());
  const first = await fw.ready;
  assert.equal((first as { ok: boolean }).ok, true, log.lines.join('\n'));

  const [a, b, c] = net.client4;
  const [a6] = net.client6;
  assert.equal(await net.connects(a), true, 'before any ban, the client connects');

  // A ban from the store (as `frontline ban add` makes it) reaches the kernel through the change feed.
  await store.ban({ cidr: a, reason: 'test', category: 'manual', source: 'test', durationSeconds: 3600 });
  await store.ban({ cidr: `${a6.replace(/::.*$/, '')}::/64`, reason: 'test', category: 'manual', source: 'test', durationSeconds: 3600 });
  await eventually('the banned IPv4 client is dropped', async () => !(await net.connects(a, 800)));
  await eventually('the banned IPv6 network is dropped', async () => !(await net.connects(a6, 800)));
  assert.equal(await net.connects(b), true, 'an address not banned still connects');
  const listed = (await net.run(['nft', 'list', 'set', 'inet', 'frontline', 'ban4'])).stdout;
  assert.match(listed, new RegExp(`${a.replaceAll('.', '\\.')} timeout 1h`), 'the element carries the remaining time');

  // Banned, then allow-listed: the allow set is accepted first, and the ban leaves the drop set.
  await store.ban({ cidr: b, reason: 'test', category: 'manual', source: 'test', durationSeconds: 3600 });
  await eventually('the second client is dropped', async () => !(await net.connects(b, 800)));
  await store.listAdd('allow', b, { source: 'test' });
  await eventually('the allow-listed client connects although banned in the store', () => net.connects(b));
  assert.ok(await store.getBan(b), 'the store still holds the ban');
  const ban4 = (await net.run(['nft', 'list', 'set', 'inet', 'frontline', 'ban4'])).stdout;
  assert.doesNotMatch(ban4, new RegExp(`${b.replaceAll('.', '\\.')}[ ,]`), 'never-ban: the allowed address is in no drop set');

  // Expiry: the kernel's timeout ends the ban by itself.
  await store.ban({ cidr: c, reason: 'short', category: 'manual', source: 'test', durationSeconds: 6 });
  await eventually('the short-banned client is dropped', async () => !(await net.connects(c, 800)));
  await eventually('after the ban ends it connects again', () => net.connects(c), 60_000);

  // A hand-deleted element comes back at the next reconcile (reconcile_s: 3).
  const del = await net.run(['nft', 'delete', 'element', 'inet', 'frontline', 'ban4', `{ ${a} }`]);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(await net.connects(a), true, 'deleted by hand: the client connects');
  await eventually('the reconcile puts the element back', async () => !(await net.connects(a, 800)));

  // Bad store entries (written into the SQLite file by another program) are left out and counted.
  const db = new Database(join(dir, 'state.db'));
  const now = Date.now();
  const put = db.prepare(
    'INSERT INTO bans (cidr, reason, category, source, first_seen, created_at, expires_at, offences) VALUES (?, ?, ?, ?, ?, ?, ?, 1)',
  );
  put.run('10.0.0.0/8', 'too wide', 'manual', 'test', now, now, now + 3600_000);
  put.run('010.1.2.3/32', 'malformed', 'manual', 'test', now, now, now + 3600_000);
  put.run('not an address', 'malformed', 'manual', 'test', now, now, now + 3600_000);
  db.close();
  const r = await fw.reconciler.reconcile();
  assert.equal(r.ok, true, r.error);
  assert.equal(r.skipped.tooWide, 1);
  assert.equal(r.skipped.malformed, 2);
  assert.equal(r.skipped.neverBan, 1, 'the allow-listed ban');
  assert.ok(log.lines.some((l) => /4 store entries left out of the firewall \(ban "010\.1\.2\.3\/32": leading zero/.test(l)), log.lines.join('\n'));
  assert.equal(await net.connects(a, 800), false, 'the good bans are still enforced');
  assert.equal(await net.connects(net.client4[3]), true, 'the /8 never went in');
});

test('nft missing or not permitted: the reconcile reports one clear error and tries again', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-fw-nft-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openStore({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { purgeIntervalSeconds: 0, ownAddresses: [] });
  t.after(() => store.close());
  const log = memoryLogger();
  const cfg = firewallSchema.parse({ backend: 'nft', reconcile_s: 1 });
  const fw = startFirewall(cfg, { store, logger: log, staticAllow: [], minPrefix: { v4: 16, v6: 32 }, backend: nftBackend(join(dir, 'no-such-nft')) });
  t.after(() => fw.stop());
  const r = (await fw.ready) as { ok: boolean; error?: string };
  assert.equal(r.ok, false);
  assert.match(r.error ?? '', /no-such-nft: command not found/);
  await eventually('a second attempt, logged once more', async () => log.lines.filter((l) => /firewall not updated/.test(l)).length >= 2, 20_000);
  // The store keeps working: bans are still made and answered from memory.
  const ban = await store.ban({ cidr: '198.51.100.9', reason: 't', category: 'manual', source: 'test' });
  assert.equal(ban.refused, false);
  assert.equal(store.lookup.isBanned('198.51.100.9'), true);

  // Without CAP_NET_ADMIN (nft as nobody): "not permitted", named as such.
  const setpriv = requireBinary('setpriv', t);
  if (!setpriv || !requireBinary('nft', t) || process.getuid?.() !== 0) return;
  const { spawnRunner, runFirewallCommand } = await import('../../src/enforce/firewall/run.js');
  const asNobody = (argv: string[], stdin?: string) => spawnRunner([setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...argv], stdin);
  await assert.rejects(runFirewallCommand(asNobody, { argv: ['nft', 'list', 'ruleset'] }), /not permitted \(frontline needs CAP_NET_ADMIN/);
});

test('nftables: a host set filled by increments past its size is sized anew by the full reconcile that follows', { timeout: 120_000 }, async (t) => {
  if (!requireBinary('nft', t)) return;
  const net = await netnsPair(t);
  if (!net) return;
  // A headroom of 100 (65,536 in use), so that 200 bans from 203.0.113.0/24 fill it.
  const bans: Array<{ cidr: string; expiresAt: number }> = [];
  const log = memoryLogger();
  const rec = new FirewallReconciler({ backend: nftBackend('nft', { sizeRoom: 100 }), rules: { ports: [net.port], action: 'drop' }, source: fixedSource(bans, ['127.0.0.0/8'], { v4: 16, v6: 32 }), reconcileS: 3600, run: net.run, logger: log });
  t.after(() => rec.stop());
  assert.equal((await rec.start()).ok, true, log.lines.join('\n'));
  assert.match((await net.run(['nft', 'list', 'set', 'inet', 'frontline', 'ban4'])).stdout, /size 100\b/);
  const expiresAt = Date.now() + 3600_000;
  const changes = [];
  for (let i = 1; i <= 200; i++) {
    const cidr = `203.0.113.${i}/32`;
    bans.push({ cidr, expiresAt });
    changes.push({ kind: 'ban' as const, ban: { cidr, expiresAt, reason: 't', category: 'manual', source: 'test', firstSeen: 0, createdAt: 0, offences: 1 } });
  }
  await rec.applyChanges(changes);
  await eventually('the full reconcile after the refused increment', async () => rec.last?.bans === 200);
  assert.ok(log.lines.some((l) => /firewall increment failed, reconciling in full/.test(l)), log.lines.join('\n'));
  const listed = (await net.run(['nft', 'list', 'set', 'inet', 'frontline', 'ban4'])).stdout;
  assert.match(listed, /size 300\b/);
  assert.equal(listed.match(/203\.0\.113\.\d+ timeout/g)?.length, 200, 'every ban is in the kernel');
  assert.equal(await net.connects(net.client4[0], 800), true, 'the clients (not banned) still connect');
});
