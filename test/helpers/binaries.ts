// External programs the e2e tests drive (postfix, swaks, redis-server, …).
// Missing on a developer's machine: the test is skipped with a loud notice.
// Missing under CI (CI=true): the test fails, so a broken CI image cannot
// pass by skipping everything.

import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Searched after $PATH: daemons such as postfix live in sbin, often not on a user's PATH. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of an executable (a name looked up in $PATH then the sbin/bin dirs, or an absolute path), or undefined. */
export function findBinary(name: string): string | undefined {
  if (isAbsolute(name)) return executable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/**
 * The path of `name`, or — when it is missing — skip the test `t` with a loud
 * console.warn and return undefined (the caller returns at once). Under
 * `CI=true` a missing binary throws instead, failing the test.
 *
 *   test('postfix asks frontline', async (t) => {
 *     const postfix = requireBinary('postfix', t);
 *     if (!postfix) return;
 *     …
 *   });
 */
export function requireBinary(name: string, t?: TestContext): string | undefined {
  const path = findBinary(name);
  if (path) return path;
  const msg = `required binary "${name}" not found in PATH or ${EXTRA_DIRS.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`${msg} (CI=true: failing instead of skipping)`);
  console.warn(`\n*** SKIPPED${t ? ` "${t.name}"` : ''}: ${msg} — install it to run this test ***\n`);
  t?.skip(msg);
  return undefined;
}
