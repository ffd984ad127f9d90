import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { greylist, greyKey, greyOrigin, normaliseSender, normaliseRecipient, DEFAULT_GREYLIST, type GreyStore } from '../../src/store/greylist.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { Store } from '../../src/store/types.js';
import { ManualClock } from '../helpers/fake-clock.js';

const DAY = 86400;
const stores: Store[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

async function setup(config: Partial<typeof DEFAULT_GREYLIST> = {}) {
  const clock = new ManualClock();
  const store = await SqliteStore.open({ backend: 'sqlite', path: ':memory:', pollMs: 0 }, { clock, purgeIntervalSeconds: 0 });
  stores.push(store);
  const grey = (clientIp: string, sender: string, recipient: string, spfDomain?: string) =>
    greylist({ clientIp, sender, recipient, spfDomain }, { store, clock, config });
  return { clock, store, grey };
}

describe('sender normalisation', () => {
  const cases: Array<[string, string]> = [
    ['plain@example.com', 'plain@example.com'],
    ['User+tag@Example.COM', 'user@example.com'],
    ['<Alice@Example.com>', 'alice@example.com'],
    ['', '<>'],
    ['<>', '<>'],
    ['prvs=1234abcdef=bounce@example.com', 'bounce@example.com'],
    ['msprvs1=17827ZbOd2Bs3=bounces@example.com', 'bounces@example.com'],
    ['btv1==1a2b3c4d5e6==user@example.com', 'user@example.com'],
    ['bounce-12345-user=example.org@lists.example.com', 'bounce-#-user=example.org@lists.example.com'],
    ['0100018f3a2b4c5d-e6f7a8b9-1234-5678-9abc-def012345678-000000@amazonses.com', '#-#-#-#-#-#-#@amazonses.com'],
    ['SRS0=HHH=TT=example.org=user@forwarder.example', 'srs0=#=#=example.org=user@forwarder.example'],
    ['john2024@example.com', '#@example.com'],
    ['info@example.com', 'info@example.com'],
    ['ab1@example.com', 'ab1@example.com'],
    ['+only@example.com', '+only@example.com'],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${expected}`, () => assert.equal(normaliseSender(input), expected));
  }
  test('recipients are only lower-cased', () => {
    assert.equal(normaliseRecipient('<Postmaster+x@Example.ORG>'), 'postmaster+x@example.org');
  });
});

describe('greylist keys', () => {
  test('client subnet /24 and /64 by default, configurable', () => {
    assert.equal(greyOrigin({ clientIp: '192.0.2.77', sender: '', recipient: 'a@b' }), 'net:192.0.2.0/24');
    assert.equal(greyOrigin({ clientIp: '2001:db8:1:2:3:4:5:6', sender: '', recipient: 'a@b' }), 'net:2001:db8:1:2::/64');
    assert.equal(greyOrigin({ clientIp: '::ffff:192.0.2.77', sender: '', recipient: 'a@b' }), 'net:192.0.2.0/24');
    assert.equal(greyOrigin({ clientIp: '192.0.2.77', sender: '', recipient: 'a@b' }, { ...DEFAULT_GREYLIST, ipv4Prefix: 32 }), 'net:192.0.2.77/32');
    assert.equal(
      greyKey({ clientIp: '192.0.2.77', sender: 'Bob+x@Example.com', recipient: 'Me@Example.org' }),
      'net:192.0.2.0/24|bob@example.com|me@example.org',
    );
  });

  test('SPF-authenticated domain replaces the subnet (unless disabled)', () => {
    const input = { clientIp: '192.0.2.77', sender: 'bob@example.com', recipient: 'me@example.org', spfDomain: 'Example.COM.' };
    assert.equal(greyKey(input), 'spf:example.com|bob@example.com|me@example.org');
    assert.equal(greyOrigin(input, { ...DEFAULT_GREYLIST, keyOnSpfDomain: false }), 'net:192.0.2.0/24');
  });
});

describe('greylisting decisions', () => {
  test('first attempt deferred with the delay; early retry deferred with the time left; retry after the delay passes', async () => {
    const { clock, grey } = await setup();
    const first = await grey('192.0.2.10', 'a@sender.example', 'me@example.org');
    assert.equal(first.action, 'defer');
    assert.equal(first.secondsLeft, 300);
    assert.match(first.reason, /300/);
    clock.advance(100);
    const early = await grey('192.0.2.10', 'a@sender.example', 'me@example.org');
    assert.equal(early.action, 'defer');
    assert.equal(early.secondsLeft, 200);
    clock.advance(200);
    const retry = await grey('192.0.2.10', 'a@sender.example', 'me@example.org');
    assert.equal(retry.action, 'pass');
    assert.equal(retry.secondsLeft, undefined);
    clock.advance(60);
    assert.equal((await grey('192.0.2.99', 'a+other@sender.example', 'ME@example.org')).action, 'pass', 'same subnet, normalised sender');
    assert.equal((await grey('198.51.100.10', 'a@sender.example', 'me@example.org')).action, 'defer', 'another subnet is another triplet');
  });

  test('SPF pass: a retry from another address of the sender\'s pool passes at the first retry', async () => {
    const { clock, grey } = await setup();
    assert.equal((await grey('192.0.2.10', 'bounce@bigmail.example', 'me@example.org', 'bigmail.example')).action, 'defer');
    clock.advance(300);
    const retry = await grey('203.0.113.200', 'bounce@bigmail.example', 'me@example.org', 'bigmail.example');
    assert.equal(retry.action, 'pass');
    assert.equal(retry.origin, 'spf:bigmail.example');
  });

  test('a retry after the retry window starts over', async () => {
    const { clock, grey } = await setup();
    await grey('192.0.2.10', 'a@sender.example', 'me@example.org');
    clock.advance(2 * DAY + 1);
    const late = await grey('192.0.2.10', 'a@sender.example', 'me@example.org');
    assert.equal(late.action, 'defer');
    assert.equal(late.secondsLeft, 300);
    clock.advance(300);
    assert.equal((await grey('192.0.2.10', 'a@sender.example', 'me@example.org')).action, 'pass');
  });

  test('passed triplets are kept 36 days after they were last seen', async () => {
    const { clock, grey } = await setup({ autoAllowAfter: 0 });
    await grey('192.0.2.10', 'a@sender.example', 'me@example.org');
    clock.advance(300);
    assert.equal((await grey('192.0.2.10', 'a@sender.example', 'me@example.org')).action, 'pass');
    clock.advance(35 * DAY);
    assert.equal((await grey('192.0.2.10', 'a@sender.example', 'me@example.org')).action, 'pass', 'renewed by use');
    clock.advance(35 * DAY);
    assert.equal((await grey('192.0.2.10', 'a@sender.example', 'me@example.org')).action, 'pass');
    clock.advance(36 * DAY);
    assert.equal((await grey('192.0.2.10', 'a@sender.example', 'me@example.org')).action, 'defer', 'forgotten after 36 idle days');
  });

  test('auto-allow: after N triplets passed, the origin passes at once', async () => {
    const { clock, grey } = await setup({ autoAllowAfter: 3 });
    for (let i = 0; i < 3; i++) {
      assert.equal((await grey('192.0.2.10', `user${'abc'[i]}@sender.example`, 'me@example.org')).action, 'defer');
      clock.advance(300);
      assert.equal((await grey('192.0.2.10', `user${'abc'[i]}@sender.example`, 'me@example.org')).action, 'pass');
    }
    const fresh = await grey('192.0.2.44', 'new@sender.example', 'other@example.org');
    assert.equal(fresh.action, 'pass');
    assert.match(fresh.reason, /auto-allowed/);
    assert.equal((await grey('198.51.100.1', 'new@sender.example', 'other@example.org')).action, 'defer', 'only that origin');
  });

  test('auto-allow off (0): every new triplet is greylisted', async () => {
    const { clock, grey } = await setup({ autoAllowAfter: 0 });
    for (let i = 0; i < 6; i++) {
      await grey('192.0.2.10', `u${'abcdef'[i]}@s.example`, 'me@example.org');
      clock.advance(300);
      await grey('192.0.2.10', `u${'abcdef'[i]}@s.example`, 'me@example.org');
    }
    assert.equal((await grey('192.0.2.10', 'new@s.example', 'me@example.org')).action, 'defer');
  });

  test('configurable delay and window', async () => {
    const { clock, grey } = await setup({ delaySeconds: 60, retryWindowSeconds: 600 });
    assert.equal((await grey('192.0.2.10', 'a@s.example', 'me@example.org')).secondsLeft, 60);
    clock.advance(59);
    assert.equal((await grey('192.0.2.10', 'a@s.example', 'me@example.org')).secondsLeft, 1);
    clock.advance(1);
    assert.equal((await grey('192.0.2.10', 'a@s.example', 'me@example.org')).action, 'pass');
  });

  test('a store fault propagates as StoreUnavailableError (the caller decides 4xx or continue)', async () => {
    const down: GreyStore = {
      greyGet: () => Promise.reject(new StoreUnavailableError('redis: down')),
      greyPut: () => Promise.reject(new StoreUnavailableError('redis: down')),
      greyClientPasses: () => Promise.reject(new StoreUnavailableError('redis: down')),
      greyClientPass: () => Promise.reject(new StoreUnavailableError('redis: down')),
    };
    await assert.rejects(
      greylist({ clientIp: '192.0.2.1', sender: 'a@b.example', recipient: 'c@d.example' }, { store: down, clock: new ManualClock() }),
      StoreUnavailableError,
    );
  });
});
