// End to end: the package an admin installs. `npm pack` in the repository
// (prepack builds dist/), then `npm install -g --offline` of the tarball into
// a temporary prefix with an empty npm cache — the runtime dependencies are
// bundled, so nothing may come from a registry — and the installed
// `frontline` is run: --version, config init + config check, check against
// the fixture DNS, and serve answering a policy request with its SQLite store.
//
// The native modules, better-sqlite3 and re2, are compiled from source here
// (npm_config_build_from_source and RE2_DOWNLOAD_SKIP_*: their installers
// would download binaries from GitHub): many minutes on a busy machine, so
// this test allows 60. Node's headers come from the local Node installation
// when it has them (npm_config_nodedir), so node-gyp downloads nothing.
//
// Run: TEST_FILTER=package-install npm run test:e2e (needs npm, and python3,
// make and g++ for the compile; skipped loudly without them, failed under
// CI=true).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { requireBinary } from '../helpers/binaries.js';
import { loadZoneYaml, startFixtureDns } from '../helpers/fixture-dns.js';
import { REPO_ROOT, startServe } from '../helpers/cli.js';
import { PolicyClient, rcptRequest } from '../helpers/policy-client.js';
import { cleanupStack } from '../helpers/postfix.js';

const WORLD = new URL('../fixtures/world.yaml', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function exec(bin: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr, ms: Date.now() - started }),
    );
  });
}

/** The top-level entries the package may hold besides node_modules/ (package.json `files`). */
const ALLOWED = [/^package\.json$/, /^README\.md$/, /^LICENSE$/, /^frontline\.example\.yaml$/, /^dist\/.+\.js$/, /^contrib\/.+/];

test('npm pack, then npm install -g of the tarball offline gives a working frontline', { timeout: 60 * 60_000 }, async (t) => {
  const npm = requireBinary('npm', t);
  if (!npm) return;
  for (const tool of ['python3', 'make', 'g++']) if (!requireBinary(tool, t)) return;
  if (lstatSync(join(REPO_ROOT, 'node_modules')).isSymbolicLink()) {
    // npm pack bundles a symlinked node_modules under "../" paths that install drops.
    const msg = 'node_modules is a symlink (a git worktree sharing another checkout\'s): npm pack cannot bundle it; run from a checkout with its own node_modules';
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n*** SKIPPED "${t.name}": ${msg} ***\n`);
    return t.skip(msg);
  }
  const cleanup = cleanupStack(t);
  const tmp = mkdtempSync(join(tmpdir(), 'frontline-package-'));
  cleanup.push(async () => rmSync(tmp, { recursive: true, force: true }));

  // --- npm pack (prepack: rm -rf dist && tsc)
  const pack = await exec(npm, ['pack', '--pack-destination', tmp, '--json'], { cwd: REPO_ROOT, timeoutMs: 10 * 60_000 });
  assert.equal(pack.code, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; size: number; files: Array<{ path: string }>; bundled: string[] }>;
  const tarball = join(tmp, info.filename);
  console.log(`# npm pack: ${info.filename}, ${(info.size / 1e6).toFixed(1)} MB, ${info.files.length} files, ${(pack.ms / 1000).toFixed(0)} s`);

  // --- only what runs: dist's JavaScript, docs for the admin, contrib, the runtime dependencies
  const own = info.files.map((f) => f.path).filter((p) => !p.startsWith('node_modules/'));
  for (const p of own) assert.ok(ALLOWED.some((r) => r.test(p)), `the package should not hold ${p}`);
  assert.ok(own.includes('dist/cli/main.js'));
  for (const p of ['contrib/systemd/frontline.service', 'contrib/systemd/frontline.sysusers.conf', 'contrib/postfix/policy-server/main.cf', 'contrib/postfix/gate/master.cf', 'contrib/postfix/proxy-filter/master.cf', 'contrib/postfix/batv/master.cf', 'LICENSE', 'frontline.example.yaml']) {
    assert.ok(own.includes(p), `the package should hold ${p}`);
  }
  for (const dep of Object.keys(PKG.dependencies)) assert.ok(info.bundled.includes(dep), `${dep} bundled`);
  const bundledTop = new Set(info.files.map((f) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f.path)?.[1]).filter(Boolean));
  for (const dev of Object.keys(PKG.devDependencies)) assert.ok(!bundledTop.has(dev), `${dev} is not shipped`);

  // --- npm install -g, offline, empty cache: everything must come from the tarball
  const prefix = join(tmp, 'prefix');
  const cache = join(tmp, 'npm-cache');
  mkdirSync(prefix);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_build_from_source: 'true',
    RE2_DOWNLOAD_SKIP_PATH: '1',
    RE2_DOWNLOAD_SKIP_VER: '1',
    npm_config_cache: cache,
    npm_config_update_notifier: 'false',
  };
  const nodePrefix = dirname(dirname(process.execPath));
  if (existsSync(join(nodePrefix, 'include/node/common.gypi'))) env.npm_config_nodedir = nodePrefix;
  const install = await exec(npm, ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], { env, timeoutMs: 50 * 60_000 });
  assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);
  console.log(`# npm install -g --offline (native modules compiled from source): ${(install.ms / 1000).toFixed(0)} s`);
  const frontline = join(prefix, 'bin', 'frontline');
  assert.ok(existsSync(frontline), `no ${frontline}; bin: ${readdirSync(join(prefix, 'bin')).join(', ')}`);
  const installed = join(prefix, 'lib', 'node_modules', 'frontline');
  assert.ok(!existsSync(join(installed, 'src')), 'no TypeScript sources installed');

  const run = (args: string[]) => exec(frontline, args, { env: { ...process.env, FRONTLINE_DNS: '', FRONTLINE_POLICY_LISTEN: '' } });

  // --- the installed command
  const version = await run(['--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), PKG.version);

  const config = join(tmp, 'frontline.yaml');
  const init = await run(['config', 'init', '--domain', 'example.com', '--out', config]);
  assert.equal(init.code, 0, init.stderr);
  const checked = await run(['config', 'check', config]);
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /: OK$/m);
  // The example config shipped in the package is valid too.
  const example = await run(['config', 'check', join(installed, 'frontline.example.yaml')]);
  assert.equal(example.code, 0, example.stderr);

  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  cleanup.push(() => dns.close());
  const forger = await run(['check', '--json', '--dns', dns.server, '--ip', '192.0.2.77', '--helo', 'DESKTOP-4F2K9', '--from', 'bob@bigisp.test', '--rcpt', 'u@dest.test']);
  assert.equal(forger.code, 0, forger.stderr);
  const verdict = JSON.parse(forger.stdout) as { action: string; rule: string; code: number };
  assert.equal(verdict.action, 'reject');
  assert.equal(verdict.rule, 'sender-authorised');
  assert.equal(verdict.code, 554);

  // serve from the installed files: the store (SQLite, the compiled better-sqlite3) opens and a request is answered.
  const dataDir = join(tmp, 'data');
  const serving = await startServe(['--policy-listen', '127.0.0.1:0', '--dns', dns.server, '--data-dir', dataDir], { entry: [realpathSync(frontline)], timeoutMs: 120_000 });
  cleanup.push(async () => serving.stop());
  const client = await PolicyClient.connect({ host: '127.0.0.1', port: serving.port });
  const answer = await client.ask(rcptRequest({ client_address: '192.0.2.77', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test', recipient: 'u@dest.test' }));
  await client.close();
  assert.match(answer, /^554 5\.7\.1 /);
  assert.match(serving.stderr(), /frontline ready: .*store sqlite/);
  assert.equal(await serving.stop(), 0);
  assert.ok(existsSync(join(dataDir, 'frontline.db')), 'the SQLite store was created');
});
