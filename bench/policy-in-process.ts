// The policy server's own work per decision, without sockets: the compiled
// PolicyServer.answer() (envelope, policy walk, reply, decision line) called
// in a loop with the policy-server bench's five envelopes, warm caches. Set
// beside bench/policy-server.ts, the difference is what a decision costs in
// the socket, the request parser and the sharing of two vCPUs.
//
//   npm run bench -- policy-in-process
//   BENCH_DECISIONS=50000 BENCH_ROUNDS=3 …
//   BENCH_SETTING='store and decision log' …   one setting only (to profile it: node --cpu-prof --import tsx bench/policy-in-process.ts)
//
// Three settings: no store (the store checks are absent); the SQLite store
// without the decision log; the store with the decision log (as `serve`).
// Printed only; bench/README.md is not rewritten.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadZoneYaml, startFixtureDns } from '../test/helpers/fixture-dns.js';
import { rcptRequest } from '../test/helpers/policy-client.js';
import { REPO_ROOT } from '../test/helpers/cli.js';
import { buildServer } from './lib/build.js';
import { CASES } from './lib/policy-cases.js';

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORLD = fileURLToPath(new URL('../test/fixtures/world.yaml', import.meta.url));

buildServer();
/** A module of the compiled server (what ships), typed by its source. */
const product = <T>(path: string): Promise<T> => import(pathToFileURL(join(REPO_ROOT, 'dist', path)).href) as Promise<T>;
const { parseConfig } = await product<typeof import('../src/config/load.js')>('config/load.js');
const { buildRuntime } = await product<typeof import('../src/cli/runtime.js')>('cli/runtime.js');
const { createLogger } = await product<typeof import('../src/log.js')>('log.js');
const { PolicyServer } = await product<typeof import('../src/postfix/policy-server.js')>('postfix/policy-server.js');
const { SqliteStore } = await product<typeof import('../src/store/sqlite/store.js')>('store/sqlite/store.js');
const { DecisionLog } = await product<typeof import('../src/store/decision-log.js')>('store/decision-log.js');

type Setting = 'no store' | 'store, no decision log' | 'store and decision log';

async function measure(dnsServer: string, setting: Setting): Promise<number[]> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-inproc-'));
  const cfg = parseConfig(`dns: { servers: ["${dnsServer}"] }\nheaders: { authserv_id: mx.bench.test }\n`, 'bench.yaml');
  const logger = createLogger({ level: 'info', file: '/dev/null' });
  const store = setting === 'no store' ? undefined : await SqliteStore.open({ backend: 'sqlite', path: join(tmp, 'frontline.db') });
  const log = store && setting === 'store and decision log' ? new DecisionLog(store, logger) : undefined;
  const runtime = buildRuntime(cfg, logger, store);
  const server = new PolicyServer({
    policy: runtime.policy,
    logger,
    acceptReply: cfg.postfix.accept_reply,
    onFault: cfg.postfix.on_fault,
    onDecision: log ? (v, e, s) => log.record(v, e, s) : undefined,
  });
  // answer() wants the connection only for its peer name and the last transaction key.
  const conn = { peer: 'bench', lastKey: undefined } as unknown as Parameters<typeof server.answer>[1];
  const round = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const attrs = rcptRequest({ ...CASES[i % CASES.length].attrs, recipient: `user${i % 1000}@dest.example`, instance: `${i}.bench` });
      const a = server.answer(attrs, conn);
      if (typeof a !== 'string') await a;
      // Let timers and the writer thread's acknowledgements in, as a server's event loop would.
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
  };
  await round(5000);
  const out: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await round(DECISIONS);
    out.push(((performance.now() - t0) * 1000) / DECISIONS);
  }
  await log?.flush();
  await server.close();
  runtime.close();
  await store?.close();
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

const dns = await startFixtureDns(loadZoneYaml(WORLD));
console.log(`policy in process: compiled, ${DECISIONS.toLocaleString('en-US')} decisions × ${ROUNDS} rounds after 5,000 to warm up; load average ${os.loadavg()[0].toFixed(2)}`);
const SETTINGS: Setting[] = ['no store', 'store, no decision log', 'store and decision log'];
const only = process.env.BENCH_SETTING;
if (only !== undefined && !SETTINGS.includes(only as Setting)) throw new Error(`BENCH_SETTING: one of ${SETTINGS.map((x) => `"${x}"`).join(', ')}`);
for (const setting of only !== undefined ? [only as Setting] : SETTINGS) {
  const us = await measure(dns.server, setting);
  const sorted = [...us].sort((a, b) => a - b);
  console.log(`  ${setting.padEnd(24)} ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} µs per decision (median; rounds ${us.map((u) => u.toFixed(1)).join(', ')})`);
}
await dns.close();
