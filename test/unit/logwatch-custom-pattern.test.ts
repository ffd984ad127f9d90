// Issue 16 item 10: a custom log pattern must not be able to freeze `serve`.
// The shapes from the report — `(\d*){12}` and `(.*a){12}` — are refused at
// config load (for log patterns and content rules alike), with the key and
// the reason named. A pattern that passes the check but backtracks
// polynomially on V8 (`a*a*a*a*a*b`) runs on RE2: a hostile 4 KiB line in
// the watched log does not delay a concurrent policy decision, and the lines
// after it are still read and still ban.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { compileContentRules } from '../../src/checks/content.js';
import { customFormat, customPatternProblems } from '../../src/intel/logwatch/formats/custom.js';
import type { LogEvent } from '../../src/intel/logwatch/formats/types.js';
import { startServe } from '../helpers/cli.js';
import { loadZoneYaml, startFixtureDns, type FixtureDns } from '../helpers/fixture-dns.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;

/** The report's patterns, as an admin would write them for a daemon's "login failed" line. */
const ATTACKS = ['^myapp: (\\d*){12}login failed from (?<ip>\\S+)', '^myapp: (.*a){12} from (?<ip>\\S+)', '^myapp: (?<ip>\\S+) (\\w+\\s?){3}$', '^myapp: (a?){20}(?<ip>\\S+)'];

/** Accepted by the load-time check (adjacent repetitions, no nesting), polynomial on a backtracking engine: n^5 steps on a line of n `a`s. */
const POLYNOMIAL = '^myapp: (?<ip>[0-9.]+) a*a*a*a*a*b';

describe('custom log patterns: the attack shapes are refused at load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frontline-custom-pattern-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [i, regex] of ATTACKS.entries()) {
    test(`logwatch.patterns: ${regex}`, () => {
      const file = join(dir, `attack-${i}.yaml`);
      writeFileSync(file, `logwatch:\n  patterns:\n    - name: myapp\n      regex: ${JSON.stringify(regex)}\n`);
      assert.throws(
        () => loadConfig(file, {}, {}),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          const text = e.problems.join('\n');
          assert.match(text, /attack-\d\.yaml:4:\d+: logwatch\.patterns\[0\]\.regex: a repetition .*exponential time; rewrite it/);
          return true;
        },
      );
      assert.throws(() => customFormat({ name: 'myapp', regex }), /pattern myapp: regex: a repetition/);
    });
  }

  test('content rules refuse the same shapes', () => {
    for (const pattern of ['(\\d*){12}x', '(.*a){12}', '(a+){2,5}$', '(a?){20}b']) {
      const r = compileContentRules([{ name: 'bad', body: true, pattern, action: 'reject' }]);
      assert.equal(r.rules.length, 0, pattern);
      assert.match(r.errors[0], /refused: .*exponential time/, pattern);
    }
  });

  test('lookarounds and backreferences are refused: RE2 runs custom patterns', () => {
    assert.match(customPatternProblems({ name: 'p', regex: '^x (?<ip>\\S+)(?= port)' }).join('\n'), /not supported by RE2.*lookarounds/);
    assert.match(customPatternProblems({ name: 'p', regex: '^(x) \\1 (?<ip>\\S+)' }).join('\n'), /not supported by RE2/);
  });

  test('the polynomial pattern passes the check, and matches as a RegExp would', () => {
    assert.deepEqual(customPatternProblems({ name: 'myapp', regex: POLYNOMIAL }), []);
    const f = customFormat({ name: 'myapp', regex: POLYNOMIAL, flags: 'i' });
    const out: LogEvent[] = [];
    const entry = (line: string) => ({ line, message: line, cut: false, times: 1 });
    f.parse(entry('MyApp: 203.0.113.9 aaab'), out);
    f.parse(entry(`myapp: 203.0.113.10 ${'a'.repeat(4000)}`), out);
    assert.deepEqual(
      out.map((e) => [e.kind, e.ip]),
      [['custom.myapp', '203.0.113.9']],
    );
  });
});

describe('custom log patterns: a hostile line does not stall serve', () => {
  let dns: FixtureDns;
  const dir = mkdtempSync(join(tmpdir(), 'frontline-custom-serve-'));
  before(async () => {
    dns = await startFixtureDns(loadZoneYaml(WORLD));
  });
  after(async () => {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('while the pattern reads a 4 KiB hostile line, a policy request is answered, and later lines still ban', async (t) => {
    const log = join(dir, 'myapp.log');
    writeFileSync(log, '');
    const config = join(dir, 'frontline.yaml');
    writeFileSync(
      config,
      [
        'logwatch:',
        '  enabled: true',
        '  poll_interval_ms: 50',
        '  start_at: start',
        `  sources: [{ type: file, paths: [${JSON.stringify(log)}], format: myapp }]`,
        `  patterns: [{ name: myapp, regex: ${JSON.stringify(POLYNOMIAL)} }]`,
        '  scenarios: { myapp-fail: { match: [custom.myapp], count: 2, window_s: 600, category: app-auth } }',
        '',
      ].join('\n'),
    );
    const s = await startServe(['--config', config, '--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', join(dir, 'data')], { timeoutMs: 120_000 });
    // A frozen server does not answer SIGTERM: make sure the test never leaves it behind.
    t.after(async () => {
      const exited = s.stop();
      const kill = setTimeout(() => s.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    });
    const c = await PolicyClient.connect({ host: '127.0.0.1', port: s.port });
    t.after(() => c.close());
    const forger = rcptRequest({ client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test', recipient: 'u@dest.test' });
    assert.match(await c.ask(forger), /^554 5\.7\.1 /, 'answers before the hostile line');

    const hostile = `myapp: 198.51.100.1 ${'a'.repeat(4000)}\n`;
    appendFileSync(log, hostile.repeat(3) + 'myapp: 198.51.100.66 ab\n'.repeat(2));
    // The watcher polls every 50 ms: the next requests race the hostile lines, as Postfix's would.
    for (let i = 0; i < 10; i++) {
      const answer = await withTimeout(c.ask({ ...forger, instance: `i${i}` }), 20_000, 'policy answer while the hostile line is read');
      assert.match(answer, /^554 5\.7\.1 /);
      await new Promise((r) => setTimeout(r, 30));
    }
    await until('the lines after the hostile ones are read and ban', () => /"msg":"logwatch ban"[^\n]*198\.51\.100\.66|198\.51\.100\.66[^\n]*"msg":"logwatch ban"/.test(s.stdout()), 30_000);
    assert.doesNotMatch(s.stdout(), /198\.51\.100\.1\b[^\n]*logwatch ban/);
  });
});

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: none within ${ms} ms`)), ms);
    }),
  ]);
}

async function until(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
