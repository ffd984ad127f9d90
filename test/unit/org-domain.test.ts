import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSubdomainOf, orgDomain, sameOrgDomain } from '../../src/checks/org-domain.js';

test('orgDomain follows the Public Suffix List (ICANN section)', () => {
  assert.equal(orgDomain('mail.example.com'), 'example.com');
  assert.equal(orgDomain('MAIL.Example.COM.'), 'example.com');
  assert.equal(orgDomain('a.b.example.co.uk'), 'example.co.uk');
  assert.equal(orgDomain('co.uk'), undefined);
  assert.equal(orgDomain('com'), undefined);
  assert.equal(orgDomain('192.0.2.1'), undefined);
  assert.equal(orgDomain(''), undefined);
  // private section ignored on purpose
  assert.equal(orgDomain('foo.blogspot.com'), 'blogspot.com');
});

test('sameOrgDomain', () => {
  assert.ok(sameOrgDomain('out1.mail.example.com', 'example.com'));
  assert.ok(sameOrgDomain('a.example.co.uk', 'b.example.co.uk'));
  assert.ok(!sameOrgDomain('a.example.co.uk', 'a.other.co.uk'));
  assert.ok(!sameOrgDomain('co.uk', 'co.uk'), 'a public suffix is no organisation');
  assert.ok(!sameOrgDomain('cable.isp.example', 'bigisp.com'));
});

test('isSubdomainOf', () => {
  assert.ok(isSubdomainOf('a.example.com', 'example.com'));
  assert.ok(isSubdomainOf('Example.com.', 'example.COM'));
  assert.ok(!isSubdomainOf('badexample.com', 'example.com'));
  assert.ok(!isSubdomainOf('example.com', ''));
});
