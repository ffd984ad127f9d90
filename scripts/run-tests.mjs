#!/usr/bin/env node
// Runs node's test runner over test/<suite>/**/*.test.ts through tsx.
// Node 20's `--test` takes no globs, so we expand them here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const suites = process.argv.slice(2);
if (suites.length === 0) suites.push('unit');
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
}
for (const s of suites) walk(join('test', s));
const filter = process.env.TEST_FILTER;
const chosen = filter ? files.filter((f) => f.includes(filter)) : files;
if (chosen.length === 0) {
  console.error(`no test files found for ${suites.join(', ')}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? (suites.includes('e2e') ? '1' : '2');
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...chosen],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
