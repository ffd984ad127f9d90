import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Zone, ZoneResolver } from '../../src/dns/zone.js';
import type { Envelope } from '../../src/core/types.js';
import { checkArc } from '../../src/checks/arc.js';
import { envelope, fixedClock, makeContext } from '../helpers/check-context.js';
import { arcSeal, generateKey, plainMessage, signMessage } from '../helpers/signed-mail.js';

const fwdKey = generateKey();
const listKey = generateKey();
const NOW = Date.parse('2024-01-01T00:05:00Z');

const zoneData = {
  's._domainkey.forwarder.example': [{ TXT: fwdKey.txt }],
  's._domainkey.lists.example': [{ TXT: listKey.txt }],
  's._domainkey.example.org': [{ TXT: fwdKey.txt }],
  's._domainkey.slow.example': ['TIMEOUT'],
};

function run(message: Buffer | undefined) {
  const resolver = new ZoneResolver(new Zone(zoneData));
  const env: Envelope = envelope({ clientIp: '192.0.2.1', from: 'a@example.org', message });
  return { ev: checkArc(env, makeContext(resolver, { clock: fixedClock(NOW) })), resolver };
}

const original = () => signMessage(plainMessage({ from: 'alice@example.org', body: 'Hello list.\r\n' }), { domain: 'example.org', key: fwdKey });

describe('arc', () => {
  test('no message: none', async () => {
    const e = await run(undefined).ev;
    assert.equal(e.check, 'arc');
    assert.equal(e.result, 'none');
  });

  test('no ARC headers: none, without DNS or hashing', async () => {
    const { ev, resolver } = run(await original());
    const e = await ev;
    assert.equal(e.result, 'none');
    assert.equal(e.data?.instances, 0);
    assert.deepEqual(resolver.queries, []);
  });

  test('one intact ARC set: pass, with the sealer and the upstream results', async () => {
    const sealed = await arcSeal(await original(), { domain: 'forwarder.example', key: fwdKey });
    const e = await run(sealed).ev;
    assert.equal(e.result, 'pass', e.detail);
    assert.equal(e.data?.instances, 1);
    assert.equal(e.data?.lastSigner, 'forwarder.example');
    assert.ok(e.data?.authResults);
  });

  test('two sets by two forwarders: pass, last signer is the newest', async () => {
    const one = await arcSeal(await original(), { domain: 'forwarder.example', key: fwdKey });
    const two = await arcSeal(one, { domain: 'lists.example', key: listKey, cv: 'pass' });
    const e = await run(two).ev;
    assert.equal(e.result, 'pass', e.detail);
    assert.equal(e.data?.instances, 2);
    assert.equal(e.data?.lastSigner, 'lists.example');
  });

  test('body changed after sealing: fail', async () => {
    const sealed = await arcSeal(await original(), { domain: 'forwarder.example', key: fwdKey });
    const e = await run(Buffer.from(sealed.toString().replace('Hello list.', 'Buy pills.'))).ev;
    assert.equal(e.result, 'fail', e.detail);
    assert.equal(e.data?.instances, 1);
  });

  test('an earlier set altered under a later seal: fail', async () => {
    const one = await arcSeal(await original(), { domain: 'forwarder.example', key: fwdKey, authResults: 'mx.forwarder.example; spf=fail smtp.mailfrom=example.org' });
    const two = await arcSeal(one, { domain: 'lists.example', key: listKey });
    const forged = Buffer.from(two.toString().replace('spf=fail smtp.mailfrom=example.org', 'spf=pass smtp.mailfrom=example.org'));
    assert.notDeepEqual(forged, two);
    const e = await run(forged).ev;
    assert.equal(e.result, 'fail', e.detail);
  });

  test('seal key lookup times out: temperror, not fail', async () => {
    const sealed = await arcSeal(await original(), { domain: 'slow.example', key: fwdKey });
    const e = await run(sealed).ev;
    assert.equal(e.result, 'temperror', e.detail);
    assert.match(e.detail, /s\._domainkey\.slow\.example/);
  });

  test('a set with i=2 and no i=1: fail (malformed chain)', async () => {
    const one = await arcSeal(await original(), { domain: 'forwarder.example', key: fwdKey });
    const renumbered = Buffer.from(one.toString().replace(/\bi=1;/g, 'i=2;'));
    const e = await run(renumbered).ev;
    assert.equal(e.result, 'fail', e.detail);
    assert.match(e.detail, /malformed/);
  });
});
