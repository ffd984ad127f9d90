import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFqdn, isValidHostname } from '../../src/checks/hostname.js';

// The regex form the one-pass readers replaced (src/checks/hostname.ts): they must agree on every name.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/i;
const TLD = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/i;
function validByRegex(name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (n.length === 0 || n.length > 253) return false;
  return n.split('.').every((l) => l.length <= 63 && LABEL.test(l));
}
function fqdnByRegex(name: string): boolean {
  if (!validByRegex(name)) return false;
  const labels = name.replace(/\.$/, '').split('.');
  return labels.length >= 2 && TLD.test(labels[labels.length - 1]);
}

test('host name syntax: the same answers as the label regex, on chosen and generated names', () => {
  const chosen = [
    '', '.', '..', 'a', 'a.', 'a..', 'a..b', '.a', '-a.example', 'a-.example', 'a-b.example', 'a_b.example', '_dmarc.example',
    'mail.example.com', 'MAIL.Example.COM.', 'x.123', 'x.xn--p1ai', 'x.xn--', 'xn--mller-kva.de', 'müller.de', 'a b.example',
    `${'a'.repeat(63)}.example`, `${'a'.repeat(64)}.example`, `${'a.'.repeat(126)}ab`, `${'a.'.repeat(127)}ab`, 'a.b-', 'a.-b', '1.2.3.4', '[1.2.3.4]',
  ];
  const alphabet = ['a', 'Z', '0', '9', '_', '-', '.', 'é', ' ', 'x'];
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const generated = Array.from({ length: 20_000 }, () => Array.from({ length: rand(12) }, () => alphabet[rand(alphabet.length)]).join(''));
  for (const name of [...chosen, ...generated]) {
    assert.equal(isValidHostname(name), validByRegex(name), `isValidHostname(${JSON.stringify(name)})`);
    assert.equal(isFqdn(name), fqdnByRegex(name), `isFqdn(${JSON.stringify(name)})`);
  }
});
