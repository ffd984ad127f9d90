// The rule language and the evaluator's semantics: parser, Kleene logic,
// UNKNOWN and FAULT, test mode, scores, memoisation, laziness, parallelism,
// templates and headers.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConditionError, parseCondition } from '../../src/policy/condition.js';
import { combine, not, type TV } from '../../src/policy/evaluate.js';
import { renderTemplate, templateErrors } from '../../src/policy/template.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import type { MxRecord, Resolver } from '../../src/dns/types.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { zoneFromYaml } from '../helpers/fixture-dns.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/load.js';
import { header, run, world } from '../helpers/policy-world.js';

const ENV = { clientIp: '192.0.2.77', helo: 'client.example', from: 'a@sender.example', rcpts: ['b@dest.example'] };

const ZONES = `
sender.example:
  - TXT: "v=spf1 ip4:192.0.2.0/24 -all"
  - MX: [10, mx.sender.example]
mx.sender.example:
  - A: 192.0.2.1
strict.example:
  - TXT: "v=spf1 -all"
  - A: 192.0.2.250
slow.example:
  - TIMEOUT
`;

/** Rules as YAML, over the standard test zones. */
function rules(yaml: string, extra = ''): ReturnType<typeof world> {
  return world(ZONES, `${extra}\npolicy:\n  rules:\n${yaml.replace(/^/gm, '    ')}`);
}

describe('condition parser', () => {
  test('leaves', () => {
    assert.deepEqual(parseCondition('spf=pass'), { kind: 'result', check: 'spf', negate: false, results: ['pass'], text: 'spf=pass' });
    assert.deepEqual(parseCondition('spf != fail|softfail'), { kind: 'result', check: 'spf', negate: true, results: ['fail', 'softfail'], text: 'spf != fail|softfail' });
    assert.deepEqual(parseCondition('helo.fqdn=false'), { kind: 'field', check: 'helo', field: 'fqdn', op: '=', value: false, text: 'helo.fqdn=false' });
    assert.deepEqual(parseCondition('dnsbl.score>=3'), { kind: 'field', check: 'dnsbl', field: 'score', op: '>=', value: 3, text: 'dnsbl.score>=3' });
    assert.deepEqual(parseCondition('sender_domain.reason=non-fqdn'), {
      kind: 'field',
      check: 'sender_domain',
      field: 'reason',
      op: '=',
      value: 'non-fqdn',
      text: 'sender_domain.reason=non-fqdn',
    });
    assert.deepEqual(parseCondition('score>=5'), { kind: 'score', op: '>=', value: 5, text: 'score>=5' });
    assert.deepEqual(parseCondition('list:deny=listed'), { kind: 'result', check: 'list:deny', negate: false, results: ['listed'], text: 'list:deny=listed' });
    assert.deepEqual(parseCondition('auth'), { kind: 'result', check: 'auth', negate: false, results: ['pass'], text: 'auth' });
    assert.deepEqual(parseCondition('my_networks'), { kind: 'result', check: 'my_networks', negate: false, results: ['match'], text: 'my_networks' });
    assert.deepEqual(parseCondition('true'), { kind: 'const', value: true, text: 'true' });
    assert.deepEqual(parseCondition(false), { kind: 'const', value: false, text: 'false' });
  });

  test('composition; a bare list is all', () => {
    const c = parseCondition({ not: { any: ['spf=pass', ['mx=match', 'auth']] } });
    assert.equal(c.kind, 'not');
    const any = (c as { item: { kind: string; items: Array<{ kind: string }> } }).item;
    assert.equal(any.kind, 'any');
    assert.equal(any.items[1].kind, 'all');
  });

  const bad: Array<[unknown, RegExp, Array<string | number>]> = [
    ['spff=pass', /unknown check "spff" \(did you mean "spf"\?\)/, []],
    ['spf=pas', /unknown result "pas" \(did you mean "pass"\?\)/, []],
    ['spf>=pass', /compared with = or !=/, []],
    ['spf', /cannot parse condition "spf"/, []],
    ['score>=lots', /score compares with a number/, []],
    ['helo.fqdn>yes', />= compares|> compares with a number/, []],
    ['list:a b=listed', /cannot parse|bad list name/, []],
    [{ any: ['auth', { nay: [] }] }, /unknown operator "nay"/, ['any', 1, 'nay']],
    [{ all: [] }, /non-empty list/, ['all']],
    [{ any: 'auth' }, /expected a list/, ['any']],
    [{ any: [], all: [] }, /exactly one of any, all, not/, []],
    [42, /expected a condition/, []],
    [null, /expected a condition/, []],
  ];
  for (const [input, message, path] of bad) {
    test(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseCondition(input),
        (e: unknown) => e instanceof ConditionError && message.test(e.message) && JSON.stringify(e.path) === JSON.stringify(path),
      );
    });
  }
});

describe('Kleene logic', () => {
  const T: TV = 'true';
  const F: TV = 'false';
  const U: TV = 'unknown';
  const X: TV = 'fault';
  const table: Array<['any' | 'all', TV[], TV]> = [
    ['any', [T, X], T],
    ['any', [T, U], T],
    ['any', [F, F], F],
    ['any', [F, X], X],
    ['any', [F, U], U],
    ['any', [X, U], U],
    ['all', [F, X], F],
    ['all', [F, U], F],
    ['all', [T, T], T],
    ['all', [T, X], X],
    ['all', [T, U], U],
    ['all', [X, U], U],
  ];
  for (const [kind, vals, want] of table) {
    test(`${kind}(${vals.join(', ')}) = ${want}`, () => assert.equal(combine(kind, vals), want));
  }
  test('not', () => {
    assert.deepEqual([T, F, U, X].map(not), [F, T, U, X]);
  });

  // The same table through the evaluator: TRUE/FALSE consts, UNKNOWN from a
  // recipient check at MAIL, FAULT from SPF of a domain whose DNS times out.
  const leaf: Record<string, string> = { T: 'true', F: 'false', U: 'rcpt_fqdn=pass', X: 'spf=pass' };
  const cases: Array<[string, string[], string]> = [
    ['any', ['F', 'X'], 'fault'],
    ['any', ['F', 'U'], 'unknown'],
    ['any', ['X', 'U'], 'unknown'],
    ['any', ['X', 'T'], 'true'],
    ['all', ['U', 'F'], 'false'],
    ['all', ['T', 'X'], 'fault'],
  ];
  for (const [kind, items, want] of cases) {
    test(`evaluator: ${kind}(${items.join(', ')}) at MAIL → ${want}`, async () => {
      const w = rules(`- name: r\n  if: { ${kind}: [${items.map((i) => JSON.stringify(leaf[i])).join(', ')}] }\n  action: reject`);
      const v = await run(w, { ...ENV, from: 'a@slow.example' }, { stages: ['mail'] });
      const got = v.action === 'reject' ? 'true' : v.action === 'defer' ? 'fault' : v.rule === 'r' ? 'unknown' : 'false';
      assert.equal(got, want, JSON.stringify(v));
      assert.notEqual(v.code !== undefined && v.code >= 500 && want === 'fault', true);
    });
  }
});

describe('walk semantics', () => {
  test('UNKNOWN stops the walk: continue at this stage, decided later', async () => {
    const w = rules('- name: needs-rcpt\n  if: rcpt_fqdn=fail\n  action: reject\n- name: later\n  if: "true"\n  action: reject');
    const tx = w.policy.transaction({ seesMessage: false });
    const atMail = await tx.evaluate('mail', { ...ENV, rcpts: [] });
    assert.deepEqual([atMail.action, atMail.rule], ['continue', 'needs-rcpt']);
    const atRcpt = await tx.evaluate('rcpt', ENV);
    assert.deepEqual([atRcpt.action, atRcpt.rule], ['reject', 'later']);
  });

  test('an explicit later stage holds a TRUE rule until then', async () => {
    const w = rules('- name: at-rcpt\n  stage: rcpt\n  if: spf=pass\n  action: accept');
    const tx = w.policy.transaction({ seesMessage: false });
    assert.deepEqual([(await tx.evaluate('mail', ENV)).action, (await tx.evaluate('rcpt', ENV)).action], ['continue', 'accept']);
  });

  test('FAULT on a refusing rule defers 451 4.4.3, never 5xx; on an accept rule it is skipped', async () => {
    const w = rules(
      '- name: ok\n  if: spf=pass\n  action: accept\n- name: spf-fail\n  if: spf=fail\n  action: reject\n  code: 550\n- name: never\n  if: "true"\n  action: reject',
    );
    const v = await run(w, { ...ENV, from: 'a@slow.example' });
    assert.deepEqual([v.action, v.code, v.status, v.rule], ['defer', 451, '4.4.3', 'spf-fail']);
    assert.match(v.text ?? '', /^temporary failure: spf: /);
  });

  test('a leaf that asks about temperror is answered, not a fault', async () => {
    const w = rules('- name: te\n  if: spf=temperror\n  action: tag');
    const v = await run(w, { ...ENV, from: 'a@slow.example' });
    assert.deepEqual([v.action, v.rule], ['tag', 'te']);
    assert.equal(header(v, 'X-Frontline-Tag'), 'tagged by rule te');
  });

  test('policy.on_fault: continue passes the message on instead of deferring', async () => {
    const w = world(ZONES, 'policy:\n  on_fault: continue\n  rules: [{ name: spf-fail, if: spf=fail, action: reject }]');
    const v = await run(w, { ...ENV, from: 'a@slow.example' });
    assert.deepEqual([v.action, v.rule], ['continue', 'spf-fail']);
  });

  test('mode: test records what the rule would have done and continues', async () => {
    const w = rules(
      '- name: trial\n  if: spf=fail\n  action: reject\n  mode: test\n  text: "would refuse {from_domain}"\n- name: real\n  if: "true"\n  action: defer',
    );
    const v = await run(w, { ...ENV, from: 'a@strict.example' });
    assert.deepEqual([v.action, v.code, v.rule], ['defer', 450, 'real']);
    assert.deepEqual(v.wouldHave, [{ rule: 'trial', action: 'reject', code: 554, text: 'would refuse strict.example' }]);
  });

  test('scores add up and a threshold rule fires', async () => {
    const w = rules(
      [
        '- name: no-spf-pass\n  if: spf!=pass\n  score: 3',
        '- name: helo-mismatch\n  if: helo!=pass\n  score: 2',
        '- name: has-mx\n  if: mx=match\n  score: -1',
        '- name: threshold\n  if: score>=5\n  action: reject\n  text: "score {score}"',
      ].join('\n'),
    );
    const v = await run(w, { ...ENV, from: 'a@strict.example' });
    assert.deepEqual([v.action, v.rule, v.score, v.text], ['reject', 'threshold', 5, 'score 5']);
    const ok = await run(w, ENV);
    assert.deepEqual([ok.action, ok.score], ['continue', 2]);
  });

  test('a faulted score rule makes a threshold it could change a fault (4xx), not a decision', async () => {
    const w = rules('- name: s1\n  if: helo!=pass\n  score: 3\n- name: s2\n  if: spf!=pass\n  score: 3\n- name: t\n  if: score>=5\n  action: reject');
    const v = await run(w, { ...ENV, from: 'a@slow.example' });
    assert.deepEqual([v.action, v.code, v.rule], ['defer', 451, 't']);
    // A threshold the faulted score cannot reach either way is decided.
    const w2 = rules('- name: s2\n  if: spf!=pass\n  score: 3\n- name: t\n  if: score>=5\n  action: reject');
    assert.equal((await run(w2, { ...ENV, from: 'a@slow.example' })).action, 'continue');
  });

  test('a check that throws becomes temperror evidence and a 451 4.3.0, never a crash', async () => {
    const broken: Resolver = {
      a: () => Promise.reject(new TypeError('boom')),
      aaaa: () => Promise.reject(new TypeError('boom')),
      txt: () => Promise.reject(new TypeError('boom')),
      mx: () => Promise.reject(new TypeError('boom')),
      ptr: () => Promise.reject(new TypeError('boom')),
    };
    const policy = Policy.fromConfig(parseConfig('policy: { rules: [{ name: r, if: spf=fail, action: reject }] }', 't.yaml'), { resolver: broken });
    const v = await policy.transaction({ seesMessage: false }).evaluate('rcpt', ENV);
    assert.deepEqual([v.action, v.code, v.status], ['defer', 451, '4.3.0']);
    assert.equal(v.evidence.find((e) => e.check === 'spf')?.result, 'temperror');
  });

  test('an evaluator fault (malformed envelope) becomes defer 451 4.3.0 with the error in evidence', async () => {
    const w = world(ZONES);
    const v = await w.policy.transaction({ seesMessage: false }).evaluate('rcpt', { clientIp: '192.0.2.1' } as never);
    assert.deepEqual([v.action, v.code, v.status, v.rule], ['defer', 451, '4.3.0', 'fault']);
    assert.match(v.evidence.at(-1)?.detail ?? '', /^internal error: /);
  });

  test('a rule naming an undefined list is skipped with a warning', async () => {
    const w = rules('- name: deny\n  if: list:nosuch=listed\n  action: reject');
    assert.deepEqual(w.policy.skipped, [{ rule: 'deny', reason: 'list nosuch is not defined (lists.nosuch)' }]);
    assert.match(w.policy.warnings[0], /rule deny skipped/);
    assert.equal((await run(w, ENV)).action, 'continue');
  });

  test('lists: entries from files (bad lines warned and skipped), domain lists on the sender; unreadable file is a ConfigError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'frontline-lists-'));
    writeFileSync(join(dir, 'deny.txt'), '# spammers\n.spam.example\nnot a domain\n');
    const cfg = `lists:\n  deny: { type: domain, match: sender, files: [${join(dir, 'deny.txt')}] }\n`;
    const w = world(ZONES, cfg);
    assert.match(w.policy.warnings[0], /deny.txt:3: .*skipped/);
    const v = await run(w, { ...ENV, from: 'x@mail.spam.example' });
    assert.deepEqual([v.action, v.rule, v.text], ['reject', 'denylist', 'rejected by local policy: sender mail.spam.example is on the deny list']);
    assert.equal((await run(w, ENV)).action, 'continue');
    assert.throws(
      () => world(ZONES, 'lists:\n  deny: { type: ip, files: [/nonexistent/deny.txt] }\n'),
      (e: unknown) => e instanceof ConfigError && /^lists.deny.files\[0\]: cannot read/.test(e.message),
    );
  });

  test('a test-mode rule that cannot be decided yet does not hold up the walk', async () => {
    const w = rules('- name: trial\n  if: rcpt_fqdn=fail\n  action: reject\n  mode: test\n- name: real\n  if: spf=pass\n  action: accept');
    const v = await run(w, ENV, { stages: ['mail'] });
    assert.deepEqual([v.action, v.rule], ['accept', 'real']);
  });

  test('the default policy leaves out its optional rules quietly', () => {
    const w = world(ZONES);
    assert.deepEqual(w.policy.warnings, []);
    assert.deepEqual(
      w.policy.skipped.map((s) => s.rule),
      ['ratelimit', 'sasl-spread', 'spamtrap', 'allowlist', 'banned', 'denylist', 'dnswl', 'dnsbl', 'batv-bounce', 'greylist'],
    );
  });
});

describe('evidence: lazy, memoised, cheapest first, parallel', () => {
  test('three recipients of one transaction query SPF once; recipient checks run per recipient', async () => {
    const w = rules('- name: r\n  if: { any: [rcpt_fqdn=fail, spf=fail] }\n  action: reject');
    const tx = w.policy.transaction({ seesMessage: false });
    const rcpts = ['a@dest.example', 'b@dest.example', 'postmaster'];
    const seen: string[] = [];
    for (let i = 1; i <= rcpts.length; i++) {
      const v = await tx.evaluate('rcpt', { ...ENV, rcpts: rcpts.slice(0, i) });
      assert.equal(v.action, 'continue');
      seen.push(String(v.evidence.find((e) => e.check === 'rcpt_fqdn')?.data?.rcpt));
    }
    assert.deepEqual(seen, rcpts);
    assert.equal(w.resolver.queries.filter((q) => q === 'TXT sender.example').length, 1);
  });

  test('a denylist hit makes no DNS query', async () => {
    const w = world(ZONES, 'lists:\n  deny: { type: ip, entries: [192.0.2.0/24] }\n');
    const v = await run(w, ENV);
    assert.deepEqual([v.action, v.code, v.rule], ['reject', 554, 'denylist']);
    assert.equal(v.text, 'rejected by local policy: client 192.0.2.77 is on the deny list');
    assert.deepEqual(w.resolver.queries, []);
  });

  test('an allowlist wins over a DNSBL and makes no DNS query', async () => {
    const w = world(ZONES, 'lists:\n  allow: { type: ip, entries: ["2001:db8::/32"] }\nchecks: { dnsbl: { zones: [bl.example] } }\n');
    const v = await run(w, { ...ENV, clientIp: '2001:db8::77' });
    assert.deepEqual([v.action, v.rule], ['accept', 'allowlist']);
    assert.deepEqual(w.resolver.queries, []);
  });

  test('cheap leaves of a node run before DNS leaves and short-circuit them', async () => {
    const w = rules('- name: r\n  if: { any: [spf=pass, mx=match, my_networks] }\n  action: accept');
    const v = await run(w, { ...ENV, clientIp: '127.0.0.1' });
    assert.equal(v.action, 'accept');
    assert.deepEqual(w.resolver.queries, []);
  });

  test('DNS leaves of one node start in parallel; a decisive answer does not wait for a hanging lookup', async () => {
    const zone = new ZoneResolver(zoneFromYaml(ZONES));
    let inflight = 0;
    let maxInflight = 0;
    const track = async <T>(p: () => Promise<T>): Promise<T> => {
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      await new Promise((r) => setImmediate(r));
      try {
        return await p();
      } finally {
        inflight--;
      }
    };
    const resolver: Resolver = {
      a: (n) => track(() => zone.a(n)),
      aaaa: (n) => track(() => zone.aaaa(n)),
      txt: (n) => track(() => zone.txt(n)),
      mx: () => new Promise<MxRecord[]>(() => {}), // never answers
      ptr: (ip) => track(() => zone.ptr(ip)),
    };
    const cfg = parseConfig('policy: { rules: [{ name: r, if: { any: [mx=match, spf=pass, fcrdns=pass] }, action: accept }] }', 't.yaml');
    const v = await Policy.fromConfig(cfg, { resolver }).transaction({ seesMessage: false }).evaluate('rcpt', ENV);
    assert.deepEqual([v.action, v.rule], ['accept', 'r']);
    assert.ok(maxInflight >= 2, `max in flight ${maxInflight}`);
  });
});

describe('replies, templates and headers', () => {
  test('templates: variables, evidence fields, escapes; client text made one safe line', () => {
    const values = {
      vars: { ip: '192.0.2.1', helo: 'evil\r\n250 OK', from_domain: 'example.com' },
      evidence: (c: string) => (c === 'dnsbl' ? { result: 'listed', detail: 'listed', data: { hits: [{ zone: 'a.example' }, { zone: 'b.example' }] } } : undefined),
    };
    assert.equal(renderTemplate('{ip} {helo} {{x}} {evidence.dnsbl.result} by {evidence.dnsbl.hits.zone}{evidence.spf.detail}', values), '192.0.2.1 evil 250 OK {x} listed by a.example, b.example');
    assert.deepEqual(templateErrors('{ip} {evidence.list:allow.detail} {evidence.dnsbl.hits.zone}'), []);
    assert.match(templateErrors('{fromdomain}')[0], /unknown variable \{fromdomain\} \(did you mean "from_domain"\?\)/);
    assert.match(templateErrors('{evidence.spff.detail}')[0], /unknown check "spff"/);
    assert.match(templateErrors('{evidence.spf}')[0], /expected \{evidence.CHECK.result\}/);
  });

  test('reply defaults per action; remedy appended', async () => {
    const w = rules(
      '- name: d\n  if: spf=fail\n  action: defer\n  text: "{from_domain} said no"\n  remedy: "Ask {from_domain}."\n- name: t\n  if: "true"\n  action: tarpit',
    );
    const d = await run(w, { ...ENV, from: 'a@strict.example' });
    assert.deepEqual([d.code, d.status, d.text], [450, '4.7.1', 'strict.example said no Ask strict.example.']);
    const t = await run(w, ENV);
    assert.deepEqual([t.action, t.code, t.status, t.text], ['tarpit', 450, '4.7.1', 'temporarily deferred by policy']);
  });

  test('Authentication-Results has only computed methods; per-check header names are configurable', async () => {
    const w = world(ZONES, 'headers:\n  authserv_id: gw.example\n  checks: { spf: X-Test-SPF }\npolicy:\n  rules:\n    - { name: r, if: spf=fail, action: reject }\n');
    const v = await run(w, ENV);
    assert.equal(v.action, 'continue');
    assert.deepEqual(v.headers, [
      ['Authentication-Results', 'gw.example; spf=pass smtp.mailfrom=sender.example'],
      ['X-Test-SPF', `pass (${v.evidence.find((e) => e.check === 'spf')?.detail})`],
    ]);
    const none = await run(world(ZONES, 'headers: { authserv_id: gw.example }\npolicy: { rules: [{ name: r, if: "false", action: reject }] }'), ENV);
    assert.deepEqual(none.headers, [['Authentication-Results', 'gw.example; none']]);
    const off = await run(world(ZONES, 'headers: { authentication_results: false, checks: {} }'), ENV);
    assert.deepEqual(off.headers, []);
  });

  test('a null sender SPF result is reported as smtp.helo', async () => {
    const w = rules('- name: r\n  if: spf=fail\n  action: reject');
    const v = await run(w, { ...ENV, from: '', helo: 'sender.example' });
    assert.match(header(v, 'Authentication-Results') ?? '', /spf=pass smtp\.helo=sender\.example/);
  });
});
