// Output formats of the SPF walk, and the `spfwalk` command end to end
// against the fixture DNS server.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { formatJson, formatNetworks, formatNft, formatPlain, formatPostfix, formatRbldnsd } from '../../src/intel/spfwalk/format.js';
import { registerSpfwalkCommand, spfwalk, type SpfwalkOptions } from '../../src/cli/spfwalk.js';
import { createResolver, type CachedResolver } from '../../src/dns/index.js';
import { startFixtureDns, zoneFromYaml, type FixtureDns } from '../helpers/fixture-dns.js';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../helpers/cli.js';

const NETS = ['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32', '2001:db8:ffff::1/128'];

describe('formats', () => {
  test('plain: one per line', () => {
    assert.equal(formatPlain(NETS), '192.0.2.0/24\n198.51.100.7/32\n2001:db8::/32\n2001:db8:ffff::1/128\n');
    assert.equal(formatPlain([]), '');
  });

  test('json: networks, and the walk when given', () => {
    assert.deepEqual(JSON.parse(formatJson(NETS)), { networks: NETS });
    const walk = { networks: [{ cidr: '192.0.2.0/24', domain: 'a.example', via: 'ip4:192.0.2.0/24' }], unwalkable: [], skipped: [], errors: [], loops: [], domains: [] };
    const j = JSON.parse(formatNetworks(['192.0.2.0/24'], 'json', { walk }));
    assert.deepEqual(j.networks, ['192.0.2.0/24']);
    assert.deepEqual(j.sources, walk.networks);
    assert.deepEqual(Object.keys(j), ['networks', 'sources', 'domains', 'unwalkable', 'skipped', 'errors', 'loops']);
  });

  test('nft: an ipv4_addr and an ipv6_addr interval set', () => {
    assert.equal(
      formatNft(NETS),
      [
        'set spf_walked_v4 {',
        '\ttype ipv4_addr',
        '\tflags interval',
        '\telements = { 192.0.2.0/24, 198.51.100.7/32 }',
        '}',
        'set spf_walked_v6 {',
        '\ttype ipv6_addr',
        '\tflags interval',
        '\telements = { 2001:db8::/32, 2001:db8:ffff::1/128 }',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('nft: an empty family has no elements line; the name is configurable', () => {
    const out = formatNetworks(['192.0.2.0/24'], 'nft', { name: 'mx_ok' });
    assert.match(out, /set mx_ok_v6 \{\n\ttype ipv6_addr\n\tflags interval\n\}/);
    assert.match(out, /set mx_ok_v4 \{/);
    assert.doesNotMatch(out, /elements = \{ \}/);
  });

  test('rbldnsd: a combined dataset, ip4set and ip6trie', () => {
    assert.equal(
      formatRbldnsd(NETS),
      '# 4 networks\n$DATASET ip4set:spf_walked @\n192.0.2.0/24\n198.51.100.7/32\n$DATASET ip6trie:spf_walked @\n2001:db8::/32\n2001:db8:ffff::1/128\n',
    );
  });

  test('postfix: a cidr table', () => {
    assert.equal(formatPostfix(NETS), '192.0.2.0/24 OK\n198.51.100.7/32 OK\n2001:db8::/32 OK\n2001:db8:ffff::1/128 OK\n');
    assert.equal(formatNetworks(['192.0.2.0/24'], 'postfix', { postfixAction: 'permit_auth_destination' }), '192.0.2.0/24 permit_auth_destination\n');
  });
});

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

describe('frontline spfwalk', () => {
  let fx: FixtureDns;
  let resolver: CachedResolver;
  before(async () => {
    fx = await startFixtureDns(
      zoneFromYaml(`
a.example:
  - TXT: "v=spf1 ip4:192.0.2.0/25 include:b.example ptr -ip4:192.0.2.200 -all"
b.example:
  - TXT: "v=spf1 ip4:192.0.2.128/25 ip6:2001:db8::/33 ip6:2001:db8:8000::/33"
down.example:
  - SERVFAIL
`),
    );
    resolver = createResolver({ servers: [fx.server], timeoutMs: 500, retries: 0 });
  });
  after(async () => {
    resolver.close();
    await fx.close();
  });

  const run = async (domains: string[], opts: Partial<SpfwalkOptions>) => {
    const stdout = new Sink();
    const stderr = new Sink();
    const code = await spfwalk(domains, { format: 'plain', merge: true, ...opts }, { stdout, stderr, resolver });
    return { code, stdout: stdout.text, stderr: stderr.text };
  };

  test('merges by default and reports problems on stderr', async () => {
    const r = await run(['a.example'], {});
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '192.0.2.0/24\n2001:db8::/32\n');
    assert.match(r.stderr, /^unwalkable: a\.example: ptr: /m);
    assert.match(r.stderr, /^skipped: a\.example: -ip4:192\.0\.2\.200: /m);
    assert.match(r.stderr, /^a\.example: ok, 4 networks, 1 lookups$/m);
  });

  test('--no-merge keeps the networks as found', async () => {
    const r = await run(['a.example'], { merge: false, quiet: true });
    assert.equal(r.stdout, '192.0.2.0/25\n192.0.2.128/25\n2001:db8::/33\n2001:db8:8000::/33\n');
    assert.equal(r.stderr, '');
  });

  test('a failing domain: exit 2, the rest still printed', async () => {
    const r = await run(['down.example', 'b.example'], { format: 'postfix' });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '192.0.2.128/25 OK\n2001:db8::/32 OK\n');
    assert.match(r.stderr, /^error: down\.example: TXT down\.example: SERVFAIL \(temporary\)$/m);
  });

  test('as a real command, with --dns and --format', async () => {
    const program = new Command('frontline').exitOverride();
    registerSpfwalkCommand(program);
    const cmd = program.commands.find((c) => c.name() === 'spfwalk');
    assert.ok(cmd);
    assert.deepEqual(
      cmd.options.map((o) => o.long),
      ['--format', '--dns', '--dns-timeout', '--no-merge', '--max-lookups', '--concurrency', '--set-name', '--postfix-action', '--quiet'],
    );
    // Through a child process, the way an admin runs it.
    const { spawn } = await import('node:child_process');
    const main = fileURLToPath(new URL('../helpers/spfwalk-main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'spfwalk', 'a.example', '--format', 'nft', '--dns', fx.server], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 0, err);
    assert.match(out, /elements = \{ 192\.0\.2\.0\/24 \}/);
    assert.match(out, /elements = \{ 2001:db8::\/32 \}/);
    assert.match(err, /unwalkable: a\.example: ptr/);
  });
});
