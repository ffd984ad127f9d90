// The SPF record parser and macro expander, term by term (RFC 7208 §4.6, §5, §6, §7).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpfSyntaxError, isSpfRecord, mechanismsOf, parseSpfRecord, parseTerm } from '../../src/checks/spf/parser.js';
import {
  type MacroValues,
  expand,
  expandDomain,
  parseDomainSpec,
  parseExplanation,
  parseMacroString,
  transform,
  urlEscape,
} from '../../src/checks/spf/macro.js';
import { parseClientIp, parseIp6, macroIp } from '../../src/checks/spf/ip.js';

describe('record selection', () => {
  test('v=spf1 in any case, followed by a space or the end', () => {
    assert.equal(isSpfRecord('v=spf1'), true);
    assert.equal(isSpfRecord('V=SpF1 -all'), true);
    assert.equal(isSpfRecord('v=spf10'), false);
    assert.equal(isSpfRecord('v=spf1mx'), false);
    assert.equal(isSpfRecord(' v=spf1 -all'), false);
    assert.equal(isSpfRecord('v=spf2.0/pra -all'), false);
  });
});

describe('parseSpfRecord', () => {
  test('every mechanism with qualifiers, CIDR lengths and defaults', () => {
    const r = parseSpfRecord('v=spf1 +a -mx:example.org/24 ~a:%{d}//64 ?ptr ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.net exists:%{i}.bl.example.com all');
    const m = mechanismsOf(r);
    assert.deepEqual(
      m.map((t) => [t.qualifier, t.type]),
      [['+', 'a'], ['-', 'mx'], ['~', 'a'], ['?', 'ptr'], ['+', 'ip4'], ['+', 'ip6'], ['+', 'include'], ['+', 'exists'], ['+', 'all']],
    );
    const a = m[0];
    assert.ok(a.type === 'a');
    assert.equal(a.domain, undefined);
    assert.equal(a.cidr4, 32);
    assert.equal(a.cidr6, 128);
    const mx = m[1];
    assert.ok(mx.type === 'mx');
    assert.equal(mx.domain?.text, 'example.org');
    assert.equal(mx.cidr4, 24);
    assert.equal(mx.cidr6, 128);
    const a6 = m[2];
    assert.ok(a6.type === 'a');
    assert.equal(a6.domain?.text, '%{d}');
    assert.equal(a6.cidr4, 32);
    assert.equal(a6.cidr6, 64);
    const ip4 = m[4];
    assert.ok(ip4.type === 'ip4');
    assert.equal(ip4.address, '192.0.2.0');
    assert.equal(ip4.prefix, 24);
    const ip6 = m[5];
    assert.ok(ip6.type === 'ip6');
    assert.equal(ip6.prefix, 32);
    assert.equal(m[6].text, 'include:_spf.example.net');
  });

  test('dual CIDR a/24//64, and a domain-spec that contains "/" and ":"', () => {
    const t = parseTerm('a:foo:bar/baz.example.com/24//64');
    assert.ok(t.type === 'a');
    assert.equal(t.domain?.text, 'foo:bar/baz.example.com');
    assert.equal(t.cidr4, 24);
    assert.equal(t.cidr6, 64);
    const plain = parseTerm('a:foo:bar/baz.example.com');
    assert.ok(plain.type === 'a');
    assert.equal(plain.domain?.text, 'foo:bar/baz.example.com');
    assert.equal(plain.cidr4, 32);
  });

  test('modifiers: redirect and exp are pulled out, unknown ones kept, names case-insensitive', () => {
    const r = parseSpfRecord('v=spf1 Redirect=_spf.example.com EXP=why.%{d} moo.cow-far_out=man:dog/cat');
    assert.equal(r.redirect?.text, '_spf.example.com');
    assert.equal(r.exp?.text, 'why.%{d}');
    assert.deepEqual(
      r.terms.map((t) => (t.type === 'modifier' ? t.name : t.type)),
      ['redirect', 'exp', 'moo.cow-far_out'],
    );
    assert.equal(mechanismsOf(r).length, 0);
  });

  test('terms are split on SP only; repeated and trailing spaces are fine', () => {
    assert.equal(parseSpfRecord('v=spf1 a  -all ').terms.length, 2);
    assert.equal(parseSpfRecord('v=spf1').terms.length, 0);
  });

  const bad: Array<[string, string]> = [
    ['v=spf1 ip4:1.2.3.4 -all moo', 'unknown mechanism after the end'],
    ['v=spf1 moo.cow/far_out=man:dog/cat', 'modifier name with "/"'],
    ['v=spf1 1up=foo', 'modifier name not starting with a letter'],
    ['v=spf1 =all', 'empty modifier name'],
    ['v=spf1 redirect:example.com', 'redirect written as a mechanism'],
    ['v=spf1 -all.', 'all with trailing dot'],
    ['v=spf1 -all:foo', 'all with an argument'],
    ['v=spf1 -all/8', 'all with a CIDR'],
    ['v=spf1 ptr/0', 'ptr with a CIDR'],
    ['v=spf1 ptr:', 'ptr with an empty domain'],
    ['v=spf1 a:', 'a with an empty domain'],
    ['v=spf1 include', 'include without a domain'],
    ['v=spf1 include:example.com/24', 'include with a CIDR'],
    ['v=spf1 exists', 'exists without a domain'],
    ['v=spf1 a/33', 'ip4 CIDR over 32'],
    ['v=spf1 a//129', 'ip6 CIDR over 128'],
    ['v=spf1 a/24/64', 'dual CIDR with one slash'],
    ['v=spf1 ip4:1.2.3.4/032', 'CIDR with a leading zero'],
    ['v=spf1 ip4:1.2.3', 'short IPv4'],
    ['v=spf1 ip4:1.2.3.4:8080', 'IPv4 with a port'],
    ['v=spf1 ip4:01.2.3.4', 'IPv4 with a leading zero'],
    ['v=spf1 ip4:1.2.3.4//32', 'dual CIDR on ip4'],
    ['v=spf1 ip4', 'bare ip4'],
    ['v=spf1 ip6::CAFE::BABE', 'bad IPv6'],
    ['v=spf1 ip6:fe80::1%eth0', 'IPv6 with a zone id'],
    ['v=spf1 ip6:::1.1.1.1//33', 'dual CIDR on ip6'],
    ['v=spf1 a:foo-bar', 'domain-spec without a dot'],
    ['v=spf1 a:museum.', 'domain-spec of only a top label'],
    ['v=spf1 a:111.222.33.44', 'numeric top label'],
    ['v=spf1 a:example.-com', 'top label starting with a dash'],
    ['v=spf1 a:example.com:8080', 'top label with a colon'],
    ['v=spf1 a:foo.example.com\0', 'NUL in a domain'],
    ['v=spf1 a:ctrl.example.com\rptr', 'CR between terms'],
    ['v=spf1 ip4:192.0.2.5\n include:example.com', 'LF between terms'],
    ['v=spf1 a:\u00ef\u00bb\u00bfgarbage.example.net', 'non-ASCII in a domain'],
    ['v=spf1 \u0080a:example.net', 'non-ASCII before a mechanism'],
    ['v=spf1 -exists:%(ir).sbl.example.com', '"%(" is no macro'],
    ['v=spf1 exists:foo%.sbl.example.com', 'lone "%"'],
    ['v=spf1 a:%{a}.example.com', 'unknown macro letter'],
    ['v=spf1 -all exp=%{r}.example.com', 'exp-only letter in a domain-spec'],
    ['v=spf1 a:%{d0}.example.com', 'macro keeping zero parts'],
    ['v=spf1 exp= -all', 'empty exp='],
    ['v=spf1 ?all redirect=', 'empty redirect='],
    ['v=spf1 exp=-all', 'exp= without a dot'],
    ['v=spf1 redirect=a.example.com redirect=b.example.com', 'redirect twice'],
    ['v=spf1 exp=a.example.com exp=b.example.com', 'exp twice'],
    ['v=spf1 -all foo=%abc', 'bad macro in an unknown modifier'],
    ['v=spf2 -all', 'wrong version'],
  ];
  for (const [record, why] of bad) {
    test(`syntax error: ${why}`, () => {
      assert.throws(() => parseSpfRecord(record), SpfSyntaxError);
    });
  }

  const good: Array<[string, string]> = [
    ['v=spf1 a:foo.example.xn--zckzah -all', 'IDN top label with dashes'],
    ['v=spf1 ip6:::1.1.1.1/0', 'IPv6 with an embedded IPv4'],
    ['v=spf1 ip6:Cafe:Babe:8000::/33', 'IPv6 CIDR over 32'],
    ['v=spf1 default=+', 'unknown modifier with odd value'],
    ['v=spf1 a:macro%%percent%_%_space%-url-space.example.com', 'escapes in a domain'],
    ['v=spf1 redirect=%{d}.d.spf.example.com.', 'trailing dot'],
    ['v=spf1 exists:%{l2r+-}.user.%{d2}', 'domain-spec ending in a macro'],
    ['v=spf1 a:%{H}.bar', 'macro then a top label'],
  ];
  for (const [record, why] of good) {
    test(`valid: ${why}`, () => {
      assert.doesNotThrow(() => parseSpfRecord(record));
    });
  }
});

describe('macro-strings', () => {
  test('parts: literals, escapes and macros with transformers', () => {
    const ms = parseMacroString('x%%%_%-%{L2r-.}y');
    assert.deepEqual(ms.parts, [
      { kind: 'literal', text: 'x' },
      { kind: 'escape', text: '%' },
      { kind: 'escape', text: ' ' },
      { kind: 'escape', text: '%20' },
      { kind: 'macro', letter: 'l', urlEscape: true, keep: 2, reverse: true, delimiters: '-.' },
      { kind: 'literal', text: 'y' },
    ]);
  });

  test('explanation text allows spaces and c r t; domain-specs do not', () => {
    assert.doesNotThrow(() => parseExplanation('%{c} at %{t} via %{r} is not allowed'));
    assert.throws(() => parseMacroString('%{c}.example.com'), SpfSyntaxError);
    assert.throws(() => parseMacroString('a b'), SpfSyntaxError);
    assert.throws(() => parseExplanation('The %{x}-files.'), SpfSyntaxError);
    assert.throws(() => parseExplanation('\u00efExplanation'), SpfSyntaxError);
  });

  test('domain-spec end: a macro or "." toplabel ["."]', () => {
    for (const ok of ['example.com', 'example.com.', '%{d}', '_spf.%{d2}', 'x.%%', 'a.b-c', 'a.1-2']) {
      assert.doesNotThrow(() => parseDomainSpec(ok), ok);
    }
    for (const bad of ['', 'com', '.', 'a.', 'a.-b', 'a.b-', 'a.123', '%{d}com', '%{d}.', 'a..']) {
      assert.throws(() => parseDomainSpec(bad), SpfSyntaxError, bad);
    }
  });

  test('transform: split, reverse, keep right-hand parts', () => {
    assert.equal(transform('a.b.c', { reverse: false, delimiters: '' }), 'a.b.c');
    assert.equal(transform('a.b.c', { reverse: true, delimiters: '' }), 'c.b.a');
    assert.equal(transform('a.b.c', { keep: 2, reverse: false, delimiters: '' }), 'b.c');
    assert.equal(transform('a.b.c', { keep: 9, reverse: false, delimiters: '' }), 'a.b.c');
    assert.equal(transform('foo-bar+zip+quux', { keep: 2, reverse: true, delimiters: '+-' }), 'bar.foo');
    assert.equal(transform('a/b=c,d_e', { reverse: false, delimiters: '/=,_' }), 'a.b.c.d.e');
  });

  test('URL escaping keeps only RFC 3986 unreserved characters', () => {
    assert.equal(urlEscape('~jack&jill=up-a_b3.c'), '~jack%26jill%3Dup-a_b3.c');
    assert.equal(urlEscape("JUMPIN' JUPITER!*()"), 'JUMPIN%27%20JUPITER%21%2A%28%29');
    assert.equal(urlEscape('é'), '%C3%A9');
  });
});

describe('macro expansion (RFC 7208 §7.4 examples)', () => {
  function values(ip: string, over: Partial<MacroValues> = {}): MacroValues {
    const client = parseClientIp(ip);
    assert.ok(client);
    return {
      sender: 'strong-bad@email.example.com',
      localPart: 'strong-bad',
      senderDomain: 'email.example.com',
      domain: 'email.example.com',
      ip: client,
      helo: 'mx.example.org',
      receivingHost: 'mx.example.net',
      now: 1_700_000_000_123,
      validatedName: async () => 'mx.example.org',
      ...over,
    };
  }
  const v4: Array<[string, string]> = [
    ['%{s}', 'strong-bad@email.example.com'],
    ['%{o}', 'email.example.com'],
    ['%{d}', 'email.example.com'],
    ['%{d4}', 'email.example.com'],
    ['%{d3}', 'email.example.com'],
    ['%{d2}', 'example.com'],
    ['%{d1}', 'com'],
    ['%{dr}', 'com.example.email'],
    ['%{d2r}', 'example.email'],
    ['%{l}', 'strong-bad'],
    ['%{l-}', 'strong.bad'],
    ['%{lr}', 'strong-bad'],
    ['%{lr-}', 'bad.strong'],
    ['%{l1r-}', 'strong'],
    ['%{ir}.%{v}._spf.%{d2}', '3.2.0.192.in-addr._spf.example.com'],
    ['%{lr-}.lp._spf.%{d2}', 'bad.strong.lp._spf.example.com'],
    ['%{lr-}.lp.%{ir}.%{v}._spf.%{d2}', 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com'],
    ['%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}', '3.2.0.192.in-addr.strong.lp._spf.example.com'],
    ['%{d2}.trusted-domains.example.net', 'example.com.trusted-domains.example.net'],
    ['%{p}', 'mx.example.org'],
    ['%{p2}', 'example.org'],
    ['%{h}', 'mx.example.org'],
  ];
  for (const [macro, want] of v4) {
    test(`${macro} → ${want}`, async () => {
      assert.equal(await expand(parseMacroString(macro), values('192.0.2.3')), want);
    });
  }

  test('IPv6: i is dotted nibbles, v is ip6, c is the compressed address', async () => {
    const vals = values('2001:db8::cb01');
    assert.equal(
      await expand(parseMacroString('%{ir}.%{v}._spf.%{d2}'), vals),
      '1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com',
    );
    assert.equal(await expand(parseExplanation('%{c}'), values('2001:DB8:0:0::CB01')), '2001:db8::cb01');
  });

  test('explanation letters: c, r, t', async () => {
    assert.equal(await expand(parseExplanation('%{c} %{r} %{t}'), values('192.0.2.3')), '192.0.2.3 mx.example.net 1700000000');
  });

  test('IPv4-mapped IPv6 clients are IPv4', () => {
    const c = parseClientIp('::FFFF:1.2.3.4');
    assert.equal(c?.family, 4);
    assert.equal(c && macroIp(c), '1.2.3.4');
    assert.equal(parseIp6('::1.1.1.1')?.toNormalizedString(), '0:0:0:0:0:0:101:101');
  });

  test('escapes and URL-escaped letters', async () => {
    assert.equal(await expand(parseMacroString('a%%b%_c%-d'), values('192.0.2.3')), 'a%b c%20d');
    assert.equal(await expand(parseMacroString('%{L}'), values('192.0.2.3', { localPart: 'a b&c' })), 'a%20b%26c');
  });

  test('target names: trailing dot dropped, over 253 characters cut from the left', async () => {
    assert.equal(await expandDomain(parseDomainSpec('%{d}.example.net.'), values('192.0.2.3')), 'email.example.com.example.net');
    const long = 'somewhat.long.exp.example.com';
    const name = await expandDomain(parseDomainSpec('foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com'), values('192.0.2.3', { senderDomain: long }));
    assert.equal(name, `${Array(8).fill(long).join('.')}.example.com`);
    assert.ok(name.length <= 253);
  });
});
