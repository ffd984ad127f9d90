// The helpers e2e tests use to find external binaries and free ports.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { findBinary, requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/ports.js';

test('findBinary finds programs on PATH and by absolute path', () => {
  const sh = findBinary('sh');
  assert.ok(sh && sh.endsWith('/sh'));
  assert.equal(findBinary(sh), sh);
  assert.equal(findBinary('frontline-no-such-binary-xyz'), undefined);
  assert.equal(findBinary('/nonexistent/bin/sh'), undefined);
});

test('requireBinary returns the path of a present binary', (t) => {
  assert.equal(requireBinary('sh', t), findBinary('sh'));
});

test('requireBinary skips without CI and throws under CI=true', () => {
  const saved = process.env.CI;
  const warn = console.warn;
  const warned: string[] = [];
  console.warn = (m: string) => warned.push(m);
  try {
    process.env.CI = 'true';
    assert.throws(() => requireBinary('frontline-no-such-binary-xyz'), /not found.*CI=true/);
    delete process.env.CI;
    const skipped: string[] = [];
    const fakeContext = { name: 'uses a missing tool', skip: (m: string) => skipped.push(m) } as unknown as TestContext;
    assert.equal(requireBinary('frontline-no-such-binary-xyz', fakeContext), undefined);
    assert.match(skipped.join(), /frontline-no-such-binary-xyz/);
    assert.match(warned.join('\n'), /SKIPPED "uses a missing tool".*frontline-no-such-binary-xyz/);
  } finally {
    console.warn = warn;
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
});

test('freePort gives a port that can be listened on', async () => {
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
