// intel.self_check: our own outgoing addresses asked of the DNSBL zones over
// the fixture DNS server (real UDP on loopback): listed, not listed, a zone
// that times out, an error answer (127.255.255.x) that is no listing; then
// `frontline serve` running the check on its schedule, logging the listing
// and exposing it on /metrics (promtool-valid text checked elsewhere) and
// the dashboard's Overview.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Zone } from '../../src/dns/zone.js';
import { createResolver, type CachedResolver } from '../../src/dns/index.js';
import { dnsblQueryName, parseZoneSpec } from '../../src/checks/dnsbl.js';
import { describeSelfCheck, runSelfCheck } from '../../src/intel/self-check.js';
import { parseConfig } from '../../src/config/load.js';
import { startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { startServe } from '../helpers/cli.js';

const OURS = '198.51.100.25';
const CLEAN = '198.51.100.26';

const world: Record<string, unknown> = {
  [dnsblQueryName(OURS, 'bl.test')]: [{ A: '127.0.0.2' }],
  [dnsblQueryName(OURS, 'other.test')]: [{ A: '127.0.0.4' }],
  // Public-resolver refusals are answered with 127.255.255.x: not a listing.
  [dnsblQueryName(CLEAN, 'other.test')]: [{ A: '127.255.255.254' }],
  [dnsblQueryName(OURS, 'slow.test')]: ['TIMEOUT'],
  [dnsblQueryName(CLEAN, 'slow.test')]: ['TIMEOUT'],
};

let dns: FixtureDns;
let resolver: CachedResolver;
let dir: string;
before(async () => {
  dns = await startFixtureDns(new Zone(world));
  // Generous timeouts: the machine is shared and loaded; only the TIMEOUT zone waits them out.
  resolver = createResolver({ servers: [dns.server], timeoutMs: 2000, retries: 0 });
  dir = mkdtempSync(join(os.tmpdir(), 'fl-self-check-'));
});
after(async () => {
  resolver.close();
  await dns.close();
  rmSync(dir, { recursive: true, force: true });
});

test('listed, not listed, an error answer and a silent zone, per address and zone', async () => {
  const clock = { now: () => 1_700_000_000_000 };
  const r = await runSelfCheck({
    addresses: [OURS, CLEAN],
    zones: ['bl.test', 'other.test=127.0.0.[2..11]', 'slow.test'].map(parseZoneSpec),
    timeoutMs: 2500,
    resolver,
    clock: clock as never,
  });
  assert.equal(r.checkedAt, 1_700_000_000_000);
  assert.deepEqual(r.zones, ['bl.test', 'other.test', 'slow.test']);
  assert.equal(r.listed, 2);
  assert.deepEqual(r.addresses[0].listedBy, [
    { zone: 'bl.test', codes: ['127.0.0.2'] },
    { zone: 'other.test', codes: ['127.0.0.4'] },
  ]);
  assert.deepEqual(r.addresses[0].unanswered, [{ zone: 'slow.test', reason: 'timeout after 2500 ms' }]);
  assert.deepEqual(r.addresses[1].listedBy, []);
  assert.deepEqual(
    r.addresses[1].unanswered.map((u) => u.zone),
    ['other.test', 'slow.test'],
  );
  assert.match(describeSelfCheck(r), /^self check: 198\.51\.100\.25 listed by bl\.test \(127\.0\.0\.2\); 198\.51\.100\.25 listed by other\.test \(127\.0\.0\.4\); no answer: /);
});

test('config: on needs addresses; addresses must be IPs; zones parsed like checks.dnsbl.zones', () => {
  assert.throws(() => parseConfig('intel: { self_check: { enabled: true } }\n', 'f.yaml'), /intel\.self_check\.addresses: intel\.self_check\.enabled needs the addresses/);
  assert.throws(() => parseConfig('intel: { self_check: { addresses: [mail.example.com] } }\n', 'f.yaml'), /expected an IP address/);
  assert.throws(() => parseConfig('intel: { self_check: { zones: ["bl.test=127.0.0"] } }\n', 'f.yaml'), /must have 4 octets/);
  const c = parseConfig(`intel: { self_check: { enabled: true, addresses: ['${OURS}', '2001:db8::25'] } }\n`, 'f.yaml');
  assert.equal(c.intel.self_check.interval_s, 3600);
  assert.equal(c.intel.self_check.zones, null);
});

test('frontline serve: runs the check at start, logs the listing at warn level, exposes it on /metrics and the Overview', { timeout: 180_000 }, async (t) => {
  const config = join(dir, 'frontline.yaml');
  writeFileSync(
    config,
    [
      `data_dir: ${join(dir, 'data')}`,
      'dns: { timeout_ms: 2000, retries: 0 }',
      'checks: { dnsbl: { zones: [bl.test], probe_interval_s: 0 } }',
      `intel: { spf_whitelist: { enabled: false }, correspondents: { enabled: false }, self_check: { enabled: true, addresses: ['${OURS}', '${CLEAN}'], interval_s: 60, timeout_ms: 3000 } }`,
      'web: { listen: "127.0.0.1:0" }',
      `log: { file: ${join(dir, 'frontline.log')} }`,
      '',
    ].join('\n'),
  );
  const serve = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0'], { timeoutMs: 120_000 });
  t.after(() => serve.stop());
  const m = /web (http:\/\/\S+?)(?:,|$|\s)/m.exec(serve.stderr());
  assert.ok(m, serve.stderr());
  const url = m[1];
  let text = '';
  for (let i = 0; i < 600; i++) {
    text = await (await fetch(`${url}/metrics`)).text();
    if (text.includes('frontline_self_listed{')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(text, /^frontline_self_listed\{address="198\.51\.100\.25",zone="bl\.test"\} 1$/m);
  assert.match(text, /^frontline_self_listed\{address="198\.51\.100\.26",zone="bl\.test"\} 0$/m);
  assert.match(text, /^frontline_self_check_timestamp_seconds \d{10}$/m);
  const overview = await (await fetch(`${url}/`)).text();
  assert.match(overview, /<td>198\.51\.100\.25<\/td><td>bl\.test \(127\.0\.0\.2\)<\/td>/);
  // The log is written asynchronously and flushed at the latest when serve stops.
  assert.equal(await serve.stop(), 0);
  const logged = readFileSync(join(dir, 'frontline.log'), 'utf8');
  assert.match(logged, /"level":40[^\n]*"event":"self-check"[^\n]*self check: 198\.51\.100\.25 listed by bl\.test \(127\.0\.0\.2\)/);
});
