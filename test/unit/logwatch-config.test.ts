// The logwatch: config section: defaults, overrides, and the checks that
// refuse dangerous or mistaken settings (catastrophic patterns, patterns
// without an address group, scenarios that match nothing).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logwatchSchema, resolveScenarios } from '../../src/intel/logwatch/config.js';
import { DEFAULT_SCENARIOS } from '../../src/intel/logwatch/defaults.js';
import { customFormat } from '../../src/intel/logwatch/formats/custom.js';
import { createLineParser } from '../../src/intel/logwatch/formats/index.js';
import type { LogEvent } from '../../src/intel/logwatch/formats/types.js';
import { replay } from '../../src/intel/logwatch/index.js';
import { loadLogwatchConfig } from '../../src/cli/logwatch.js';
import { ConfigError } from '../../src/config/load.js';

function problems(input: unknown): string[] {
  const r = logwatchSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('defaults', () => {
  test('an empty section is valid and means the documented defaults', () => {
    const cfg = logwatchSchema.parse({});
    assert.equal(cfg.max_line_bytes, 4096);
    assert.equal(cfg.poll_interval_ms, 1000);
    assert.equal(cfg.start_at, 'end');
    assert.deepEqual(cfg.ignore, ['127.0.0.0/8', '::1/128']);
    const scenarios = resolveScenarios(cfg.scenarios);
    const enabled = Object.entries(DEFAULT_SCENARIOS).filter(([, d]) => d.enabled).map(([name]) => name);
    assert.deepEqual(scenarios.map((s) => s.name), enabled);
    // Off by default (documented): every other 5xx refusal by smtpd, frontline's own among them.
    assert.ok(!enabled.includes('smtp-rejects') && 'smtp-rejects' in DEFAULT_SCENARIOS);
    const ssh = scenarios.find((s) => s.name === 'ssh-bruteforce')!;
    assert.deepEqual([ssh.count, ssh.windowMs, ssh.category], [6, 600_000, 'brute-force']);
    assert.deepEqual(logwatchSchema.parse({ scenarios: null, sources: null, patterns: null }).sources, []);
  });

  test('a default is changed key by key, or switched off; new scenarios are added', () => {
    const cfg = logwatchSchema.parse({
      scenarios: {
        'ssh-bruteforce': { count: 3 },
        'http-errors': { enabled: false },
        'http-wordpress-login': { count: 1 },
        'my-app': { match: ['custom.myapp'], count: 2, window_s: 60, category: 'brute-force' },
        'web-bucket': { match: ['http.probe.*'], count: 10, leak_s: 5, category: 'probe' },
      },
      patterns: [{ name: 'myapp', regex: '^myapp: login failed from (?<ip>\\S+)$' }],
    });
    const byName = new Map(resolveScenarios(cfg.scenarios).map((s) => [s.name, s]));
    assert.equal(byName.get('ssh-bruteforce')!.count, 3);
    assert.equal(byName.get('ssh-bruteforce')!.windowMs, 600_000);
    assert.equal(byName.has('http-errors'), false);
    assert.equal(byName.get('http-wordpress-login')!.count, 1);
    assert.deepEqual(byName.get('my-app')!.match, ['custom.myapp']);
    assert.equal(byName.get('web-bucket')!.leakMs, 5000);
  });
});

describe('refused', () => {
  const pattern = (regex: string, more: object = {}) => ({ patterns: [{ name: 'p', regex, ...more }] });

  for (const bad of ['^(a+)+$', '^x (.*)* (?<ip>\\S+)$', '^(a|a)*(?<ip>\\S+)', '^(?<ip>(\\d+\\.?)+)$', '^login: (\\w+\\s?)*from (?<ip>\\S+)']) {
    test(`catastrophic backtracking: ${bad}`, () => {
      const p = problems(pattern(bad));
      assert.ok(p.some((x) => /^patterns\.0\.regex: .*exponential time/.test(x)), p.join('\n'));
    });
  }

  test('a pattern without (?<ip>…), unanchored, not compiling, or with other flags', () => {
    assert.match(problems(pattern('^login failed from (\\S+)$')).join('\n'), /named group \(\?<ip>…\)/);
    assert.match(problems(pattern('login failed from (?<ip>\\S+)$')).join('\n'), /anchored with \^/);
    assert.match(problems(pattern('^login (?<ip>[')).join('\n'), /does not compile/);
    assert.match(problems(pattern('^x (?<ip>\\S+)', { flags: 'ims' })).join('\n'), /patterns\.0\.flags: only "i"/);
    assert.throws(() => customFormat({ name: 'p', regex: '^(a+)+(?<ip>x)' }), /exponential/);
  });

  test('scenarios that match no event kind, or new ones with missing keys', () => {
    const p = problems({ scenarios: { 'ssh-bruteforce': { match: ['sshd.auth-failed'] }, mine: { count: 2 } } });
    assert.ok(p.some((x) => x.startsWith('scenarios.ssh-bruteforce.match.0: matches no event kind')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('scenarios.mine.match: required')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('scenarios.mine.category: required')), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith('scenarios.mine.window_s: required')), p.join('\n'));
  });

  test('unknown keys, unknown formats, bad networks', () => {
    assert.ok(problems({ max_line_byte: 10 }).length > 0);
    assert.match(problems({ sources: [{ type: 'file', paths: ['/x'], format: 'exim' }] }).join('\n'), /sources\.0\.format: unknown format "exim"/);
    assert.deepEqual(problems({ sources: [{ type: 'file', paths: ['/x'], format: 'myapp' }], patterns: [{ name: 'myapp', regex: '^a (?<ip>\\S+)' }] }), []);
    assert.match(problems({ ignore: ['10.0.0.0/33'] }).join('\n'), /ignore\.0: expected an IP address or CIDR/);
    assert.match(problems({ sources: [{ type: 'pipe' }] }).join('\n'), /sources\.0/);
  });
});

describe('custom patterns at work', () => {
  const spec = { name: 'myapp', regex: '^myapp\\[\\d+\\]: login failed for .* from (?<ip>\\S+)$' };

  test('the address comes from the ip group, strictly validated; key from the key group', () => {
    const parse = createLineParser('auto', [spec, { name: 'guess', regex: '^unknown mailbox (?<key>\\S+) asked by (?<ip>\\S+)$', program: 'mymail' }]);
    const out: LogEvent[] = [];
    parse({ text: 'myapp[12]: login failed for x from 203.0.113.5', cut: false, lineNo: 1 }, out);
    parse({ text: 'myapp[12]: login failed for x from host.example.net', cut: false, lineNo: 2 }, out);
    parse({ text: 'Nov 22 05:00:00 mx1 mymail[3]: unknown mailbox Bob@x asked by 203.0.113.6', cut: false, lineNo: 3 }, out);
    parse({ text: 'Nov 22 05:00:00 mx1 other[3]: unknown mailbox bob@x asked by 6.6.6.6', cut: false, lineNo: 4 }, out);
    assert.deepEqual(out.map((e) => [e.kind, e.ip, e.key]), [['custom.myapp', '203.0.113.5', undefined], ['custom.guess', '203.0.113.6', 'Bob@x']]);
  });

  test('cut lines are skipped unless cut_lines is set, and a pattern only ever sees max_line_bytes', async () => {
    const forged = `myapp[12]: login failed for ${'a'.repeat(5000)} from 6.6.6.6 port 22 from 203.0.113.5`;
    const cutAfter = 'myapp[12]: login failed for x from 6.6.6.6'.length;
    const scenario = [{ name: 's', match: ['custom.*'], count: 1, windowMs: 1000, distinct: false, cooldownMs: 0, category: 'brute-force' }];
    // A line cut exactly after a forged address: never read by default.
    const line = { text: 'myapp[12]: login failed for x from 6.6.6.6', cut: true, lineNo: 1 };
    assert.deepEqual(await replay([line], { patterns: [spec], scenarios: scenario }), []);
    const seen: string[] = [];
    const probe = { name: 'probe', regex: '^(?<ip>[0-9.]+) (?<key>.*)$', cut_lines: true };
    const parse = createLineParser('probe', [probe]);
    const out: LogEvent[] = [];
    parse({ text: `203.0.113.9 ${'b'.repeat(300)}`, cut: true, lineNo: 1 }, out);
    for (const e of out) seen.push(e.ip);
    assert.deepEqual(seen, ['203.0.113.9']);
    // Through replay, a 5 KB line arrives cut to max_line_bytes (and flagged): the pattern never matches it.
    assert.deepEqual(await replay([forged], { patterns: [spec], scenarios: scenario, maxLineBytes: cutAfter + 100 }), []);
  });
});

describe('config file for the CLI', () => {
  test('reads the logwatch: section; reports problems with their key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frontline-lwcfg-'));
    try {
      const good = join(dir, 'good.yaml');
      writeFileSync(good, 'data_dir: /tmp/x\nlogwatch:\n  max_line_bytes: 1024\n  sources:\n    - type: file\n      paths: [/var/log/auth.log]\n');
      const { logwatch, dataDir } = loadLogwatchConfig(good);
      assert.equal(logwatch.max_line_bytes, 1024);
      assert.equal(dataDir, '/tmp/x');
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, "logwatch:\n  patterns:\n    - name: x\n      regex: '^(a+)+ (?<ip>\\S+)'\n");
      assert.throws(
        () => loadLogwatchConfig(bad),
        (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.includes('patterns') && p.includes('regex') && /exponential/.test(p)),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
