// The benchmarks measure the server as shipped: compiled by `npm run build`
// into dist/ and started with plain node (BENCH_RUNTIME=tsx runs it from source).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/helpers/cli.js';

export const RUNTIME: 'dist' | 'tsx' = process.env.BENCH_RUNTIME === 'tsx' ? 'tsx' : 'dist';

/** Compile the server (`tsc -p tsconfig.build.json`); returns the node arguments that start the CLI. */
export function buildServer(): string[] {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json')], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed (use BENCH_RUNTIME=tsx to run from source):\n${r.stdout}${r.stderr}`);
  return [join(REPO_ROOT, 'dist/cli/main.js')];
}

/**
 * How startServe should run the CLI: compiled (built now) or from source
 * (undefined: its default). BENCH_ENTRY=/other/tree/dist/cli/main.js runs
 * another build instead (an A/B against a `git worktree` of an older commit,
 * built there), without building this one.
 */
export function serverEntry(): string[] | undefined {
  if (process.env.BENCH_ENTRY) return [process.env.BENCH_ENTRY];
  return RUNTIME === 'dist' ? buildServer() : undefined;
}
