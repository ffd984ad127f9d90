// DNS server strings as admins write them, and createResolver's checks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResolver, formatServer, parseServer, readResolvConf } from '../../src/dns/index.js';

test('parseServer reads IPv4 and IPv6, with and without a port', () => {
  assert.deepEqual(parseServer('192.0.2.53'), { host: '192.0.2.53', port: 53 });
  assert.deepEqual(parseServer(' 127.0.0.1:5353 '), { host: '127.0.0.1', port: 5353 });
  assert.deepEqual(parseServer('2001:db8::53'), { host: '2001:db8::53', port: 53 });
  assert.deepEqual(parseServer('[2001:db8::53]:5353'), { host: '2001:db8::53', port: 5353 });
  assert.deepEqual(parseServer('[::1]'), { host: '::1', port: 53 });
});

test('parseServer errors quote the input and say what was expected', () => {
  assert.throws(() => parseServer('dns.example.com'), /"dns\.example\.com".*not an IP address/);
  assert.throws(() => parseServer('192.0.2.53:0'), /port must be a number from 1 to 65535, got "0"/);
  assert.throws(() => parseServer('192.0.2.53:99999'), /port/);
  assert.throws(() => parseServer('192.0.2.53:'), /port/);
  assert.throws(() => parseServer('[192.0.2.53]:53'), /not an IPv6 address/);
  assert.throws(() => parseServer('2001:db8::53:x'), /not an IP address/);
  assert.throws(() => parseServer(''), /empty/);
});

test('formatServer gives back what parseServer reads', () => {
  for (const s of ['192.0.2.53:53', '[2001:db8::53]:5353']) assert.equal(formatServer(parseServer(s)), s);
});

test('readResolvConf lists the nameserver lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-dns-'));
  const path = join(dir, 'resolv.conf');
  writeFileSync(path, '# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver  2001:db8::1\nnameserver bogus\n');
  assert.deepEqual(readResolvConf(path), ['192.0.2.1', '2001:db8::1']);
  assert.deepEqual(readResolvConf(join(dir, 'missing')), []);
});

test('createResolver refuses bad options with clear errors', () => {
  assert.throws(() => createResolver({ servers: [] }), /no servers/);
  assert.throws(() => createResolver({ servers: ['ns1.example'] }), /"ns1\.example"/);
  assert.throws(() => createResolver({ servers: ['127.0.0.1'], timeoutMs: 0 }), /timeoutMs/);
  assert.throws(() => createResolver({ servers: ['127.0.0.1'], retries: -1 }), /retries/);
  const r = createResolver({ servers: ['127.0.0.1:53', '[::1]:53'] });
  r.close();
});
