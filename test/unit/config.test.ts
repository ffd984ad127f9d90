// Config loading: defaults, overrides, and errors that name file:line:col and the key.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, parseConfig, systemDnsServers } from '../../src/config/load.js';
import { defaultRules, Policy } from '../../src/policy/policy.js';
import { ZoneResolver, Zone } from '../../src/dns/zone.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

/** The problems a config text gives, or [] when it loads. */
function problems(text: string, file = 'frontline.yaml'): string[] {
  try {
    parseConfig(text, file);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-config-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('defaults and overrides', () => {
  test('no file: the embedded defaults, DNS servers from resolv.conf', () => {
    const cfg = loadConfig(undefined, {}, {});
    assert.equal(cfg.listen.policy, '127.0.0.1:10040');
    assert.equal(cfg.listen.policy_socket, null);
    assert.equal(cfg.dns.timeout_ms, 2000);
    assert.equal(cfg.dns.retries, 2);
    assert.deepEqual(cfg.dns.cache, { min_ttl: 5, max_ttl: 3600, negative_ttl: 60, max_entries: 100000 });
    assert.deepEqual(cfg.my_networks, ['127.0.0.0/8', '::1/128']);
    assert.deepEqual(cfg.checks.dnsbl, { zones: [], threshold: 1, timeout_ms: 1500, probe_interval_s: 600 });
    assert.equal(cfg.postfix.accept_reply, 'DUNNO');
    assert.equal(cfg.policy.on_fault, 'defer');
    assert.equal(cfg.policy.rules, undefined);
    assert.ok(cfg.dns.servers.length > 0);
  });

  test('empty sections mean their defaults', () => {
    const cfg = parseConfig('listen:\nchecks:\n  dnsbl:\nlists:\n', 'f.yaml');
    assert.equal(cfg.listen.policy, '127.0.0.1:10040');
    assert.equal(cfg.checks.dnsbl.threshold, 1);
    assert.deepEqual(cfg.lists, {});
  });

  test('flags beat environment beat file', () => {
    const path = tempFile('f.yaml', 'listen: { policy: "127.0.0.1:1001" }\ndns: { servers: [192.0.2.1] }\n');
    assert.equal(loadConfig(path, {}, {}).listen.policy, '127.0.0.1:1001');
    assert.deepEqual(loadConfig(path, {}, {}).dns.servers, ['192.0.2.1']);
    const env = { FRONTLINE_POLICY_LISTEN: '[::1]:1002', FRONTLINE_DNS: '192.0.2.2, [2001:db8::53]:5353' };
    assert.equal(loadConfig(path, {}, env).listen.policy, '[::1]:1002');
    assert.deepEqual(loadConfig(path, {}, env).dns.servers, ['192.0.2.2', '[2001:db8::53]:5353']);
    const flags = { policyListen: '127.0.0.1:1003', dns: ['192.0.2.3:53'] };
    assert.equal(loadConfig(path, flags, env).listen.policy, '127.0.0.1:1003');
    assert.deepEqual(loadConfig(path, flags, env).dns.servers, ['192.0.2.3:53']);
  });

  test('bad overrides name the flag or variable', () => {
    assert.throws(() => loadConfig(undefined, { policyListen: 'nope' }, {}), (e: unknown) => e instanceof ConfigError && /^--policy-listen: expected host:port/.test(e.problems[0]));
    assert.throws(() => loadConfig(undefined, {}, { FRONTLINE_DNS: 'dns.example' }), (e: unknown) => e instanceof ConfigError && /^FRONTLINE_DNS: DNS server "dns.example"/.test(e.problems[0]));
  });

  test('resolv.conf nameservers; 127.0.0.1 when there are none', () => {
    const path = tempFile('resolv.conf', '# comment\nsearch example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:1\n');
    assert.deepEqual(systemDnsServers(path), ['192.0.2.53', '2001:db8::53']);
    assert.deepEqual(systemDnsServers(tempFile('resolv.conf', 'search example\n')), ['127.0.0.1']);
    assert.deepEqual(systemDnsServers('/nonexistent/resolv.conf'), ['127.0.0.1']);
  });

  test('a missing file is a ConfigError naming it', () => {
    assert.throws(() => loadConfig('/nonexistent/frontline.yaml', {}, {}), (e: unknown) => e instanceof ConfigError && /^\/nonexistent\/frontline.yaml: cannot read/.test(e.message));
  });
});

describe('errors name file:line:col and the key', () => {
  test('a bad enum', () => {
    const text = ['policy:', '  rules:', '    - name: a', '      if: auth', '      action: rejct', ''].join('\n');
    assert.deepEqual(problems(text), ['frontline.yaml:5:15: policy.rules[0].action: expected one of accept|reject|defer|tag|tarpit|continue, got "rejct"']);
  });

  test('an unknown key, with a suggestion', () => {
    const text = 'dns:\n  servers: []\n  timout_ms: 5\n';
    assert.deepEqual(problems(text), [
      'frontline.yaml:3:3: dns.timout_ms: unknown key (did you mean "timeout_ms"?) (expected one of: servers, timeout_ms, retries, cache)',
    ]);
    assert.match(problems('lisen: {}\n')[0], /^frontline.yaml:1:1: lisen: unknown key \(did you mean "listen"\?\)/);
  });

  test('a bad CIDR', () => {
    assert.deepEqual(problems('my_networks:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n'), [
      'frontline.yaml:3:5: my_networks[1]: expected an IP address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32): prefix length /33 is longer than 32 (IPv4), got "10.0.0.0/33"',
    ]);
    assert.match(problems('lists:\n  deny:\n    type: ip\n    entries: [192.0.2.300]\n')[0], /^frontline.yaml:4:15: lists.deny.entries\[0\]: expected an IP address or CIDR/);
  });

  test('a bad condition names the leaf inside the rule', () => {
    const text = ['policy:', '  rules:', '    - name: r', '      if:', '        any:', '          - spf=pass', '          - spff=pass', '      action: reject', ''].join('\n');
    const p = problems(text);
    assert.equal(p.length, 1);
    assert.match(p[0], /^frontline.yaml:7:13: policy.rules\[0\].if.any\[1\]: "spff=pass": unknown check "spff" \(did you mean "spf"\?\)/);
    assert.match(problems('policy: { rules: [{ name: r, if: "spf=pas", action: reject }] }')[0], /policy.rules\[0\].if: "spf=pas": unknown result "pas" \(did you mean "pass"\?\)/);
    assert.match(problems('policy: { rules: [{ name: r, if: { nor: [] }, action: reject }] }')[0], /^frontline.yaml:1:41: policy.rules\[0\].if.nor: unknown operator "nor"/);
    assert.match(problems('policy: { rules: [{ name: r, action: reject }] }')[0], /policy.rules\[0\].if: required/);
  });

  test('every problem is reported, in file order, not just the first', () => {
    const text = [
      'listen:',
      '  policy: localhost',
      'dns:',
      '  retries: -1',
      'policy:',
      '  rules:',
      '    - name: a',
      '      if: spf=pas',
      '      action: rejct',
      '      text: "hi {fromdomain}"',
      '    - name: a',
      '      if: auth',
      '      action: accept',
      '',
    ].join('\n');
    const p = problems(text);
    assert.deepEqual(
      p.map((l) => l.split(': ')[0] + ': ' + l.split(': ')[1]),
      [
        'frontline.yaml:2:11: listen.policy',
        'frontline.yaml:4:12: dns.retries',
        'frontline.yaml:8:11: policy.rules[0].if',
        'frontline.yaml:9:15: policy.rules[0].action',
        'frontline.yaml:10:13: policy.rules[0].text',
      ],
    );
    assert.match(p[1], /expected a number >= 0, got number -1/);
    assert.match(p[4], /unknown variable \{fromdomain\} \(did you mean "from_domain"\?\)/);
    // Duplicate names are reported once the rules themselves are valid.
    assert.match(problems('policy:\n  rules:\n    - { name: a, if: auth, action: accept }\n    - { name: a, if: auth, action: accept }\n')[0], /^frontline.yaml:4:15: policy.rules\[1\].name: duplicate rule name/);
  });

  test('type errors, reply codes that contradict the action, bad zones and header names', () => {
    assert.match(problems('dns: { timeout_ms: soon }')[0], /dns.timeout_ms: expected a number, got "soon"/);
    assert.match(problems('checks: { mx: [] }')[0], /checks.mx: expected a mapping of keys, got a list/);
    assert.match(problems('policy: { rules: [{ name: r, if: auth, action: reject, code: 450 }] }')[0], /policy.rules\[0\].code: a reject needs a 5xx code/);
    assert.match(problems('policy: { rules: [{ name: r, if: auth, action: defer, status: 5.7.1 }] }')[0], /policy.rules\[0\].status: status class must match/);
    assert.match(problems('policy: { rules: [{ name: r, if: auth }] }')[0], /policy.rules\[0\].action: required/);
    assert.match(problems('checks: { dnsbl: { zones: ["bl.example=127.0.0"] } }')[0], /checks.dnsbl.zones\[0\]: bad DNSBL zone spec/);
    assert.match(problems('headers: { checks: { spf: "X Bad" } }')[0], /headers.checks.spf: expected a header field name/);
    assert.match(problems('dns: { servers: ["[::1]:99999"] }')[0], /dns.servers\[0\]: DNS server/);
  });

  test('YAML syntax errors and duplicate keys name file:line', () => {
    assert.match(problems('listen:\n  policy: "127.0.0.1:1\n')[0], /^frontline.yaml:\d+:\d+: YAML syntax: /);
    assert.match(problems('log:\n  level: info\n  level: debug\n')[0], /^frontline.yaml:3:3: YAML syntax: Map keys must be unique/);
    assert.deepEqual(problems('- a\n- b\n'), ['frontline.yaml:1:1: expected a mapping of keys (listen:, dns:, policy:, …) at the top level']);
  });
});

describe('frontline.example.yaml', () => {
  test('loads, and its rules are exactly the shipped default policy', () => {
    const cfg = loadConfig(join(ROOT, 'frontline.example.yaml'), {}, {});
    assert.deepEqual(cfg.policy.rules, defaultRules());
    const policy = Policy.fromConfig(cfg, { resolver: new ZoneResolver(new Zone()) });
    // The optional rules are skipped with a warning when written out in a file.
    assert.deepEqual(
      policy.skipped.map((s) => s.rule),
      ['ratelimit', 'sasl-spread', 'spamtrap', 'allowlist', 'banned', 'denylist', 'dnswl', 'dnsbl', 'batv-bounce', 'greylist'],
    );
    assert.deepEqual(
      policy.rules.map((r) => r.name),
      ['authenticated', 'my-networks', 'sender-domain-fault', 'sender-fqdn', 'unknown-sender-domain', 'multi-recipient-bounce', 'sender-authorised'],
    );
  });

  test('names every key the schema has', () => {
    const defaults = loadConfig(undefined, {}, {});
    const keys = (o: unknown, prefix = ''): string[] =>
      o !== null && typeof o === 'object' && !Array.isArray(o)
        ? Object.entries(o).flatMap(([k, v]) => [`${prefix}${k}`, ...keys(v, `${prefix}${k}.`)])
        : [];
    const text = readFileSync(join(ROOT, 'frontline.example.yaml'), 'utf8');
    for (const k of keys(defaults)) {
      const last = k.split('.').at(-1) as string;
      assert.match(text, new RegExp(`^\\s*#?\\s*${last}:`, 'm'), `key ${k} is not in frontline.example.yaml`);
    }
  });
});

