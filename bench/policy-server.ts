// Decisions per second over the Postfix policy protocol.
//
// `frontline serve` runs as its own process with the shipped default policy
// and decision logging on (to /dev/null), resolving against the fixture DNS
// world of the end-to-end test. This process plays Postfix: 16 connections,
// each sending one RCPT request and waiting for the answer before the next,
// every request a new message (a new `instance`, so no evidence is reused
// between requests); the DNS cache is warm after the warm-up.
//
//   npm run bench -- policy-server
//   BENCH_SECONDS=20 BENCH_CONNECTIONS=16 npm run bench -- policy-server
//   BENCH_PROFILE=1 …   also writes a CPU profile of the server (node --cpu-prof) to $TMPDIR/frontline-profiles/

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadZoneYaml, startFixtureDns } from '../test/helpers/fixture-dns.js';
import { startServe } from '../test/helpers/cli.js';
import { PolicyClient, rcptRequest } from '../test/helpers/policy-client.js';
import { updateReadme } from './lib/readme.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PROFILE = process.env.BENCH_PROFILE === '1';
const WORLD = fileURLToPath(new URL('../test/fixtures/world.yaml', import.meta.url));
const COMMAND = 'npm run bench -- policy-server';

/** The envelopes the clients cycle through, with the answer each must get. */
const CASES: Array<{ name: string; attrs: Record<string, string>; expect: RegExp }> = [
  {
    name: 'provider, bad HELO, SPF pass',
    attrs: { client_address: '198.51.100.10', reverse_client_name: 'mta10.outbound.bigprovider-mail.test', helo_name: 'out-of-sync.bigprovider.test', sender: 'alice@bigprovider.test' },
    expect: /^PREPEND Authentication-Results:/,
  },
  {
    name: 'home PC forging an ISP',
    attrs: { client_address: '192.0.2.77', reverse_client_name: 'cpe-192-0-2-77.cable.homenet.test', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test' },
    expect: /^554 5\.7\.1 /,
  },
  {
    name: 'small server, MX match',
    attrs: { client_address: '203.0.113.5', reverse_client_name: 'mail.small.test', helo_name: 'mail.small.test', sender: 'info@small.test' },
    expect: /^PREPEND Authentication-Results:/,
  },
  {
    name: 'IPv6 provider host',
    attrs: { client_address: '2001:db8:25::25', reverse_client_name: 'unknown', helo_name: 'mx6.bigprovider.test', sender: 'alice@bigprovider.test' },
    expect: /^PREPEND Authentication-Results:/,
  },
  {
    name: 'authenticated user',
    attrs: { client_address: '192.0.2.99', helo_name: 'laptop', sender: 'joe@bigisp.test', sasl_method: 'PLAIN', sasl_username: 'joe' },
    expect: /^(DUNNO|PREPEND )/,
  },
];

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const dns = await startFixtureDns(loadZoneYaml(WORLD));
  const tmp = mkdtempSync(join(os.tmpdir(), 'frontline-bench-'));
  const config = join(tmp, 'bench.yaml');
  writeFileSync(config, `log:\n  level: info\n  file: /dev/null\nheaders:\n  authserv_id: mx.bench.test\n`);
  const profDir = join(os.tmpdir(), 'frontline-profiles');
  if (PROFILE) mkdirSync(profDir, { recursive: true });
  const server = await startServe(['--config', config, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data')], {
    nodeArgs: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  });
  const pid = server.child.pid!;
  const target = { host: '127.0.0.1', port: server.port };

  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => PolicyClient.connect(target)));
  let seq = 0;
  let measuring = false;
  let stop = false;
  const latencies: number[] = [];
  let wrong = 0;
  const wrongExamples: string[] = [];
  const byKind = new Map<string, number>();

  async function loop(c: PolicyClient, id: number): Promise<void> {
    while (!stop) {
      const n = seq++;
      const k = CASES[n % CASES.length];
      const req = rcptRequest({ ...k.attrs, recipient: `user${n % 1000}@dest.example`, instance: `${id}.${n}.bench`, client_port: String(10000 + (n % 50000)) });
      const t0 = performance.now();
      const action = await c.ask(req);
      const ms = performance.now() - t0;
      if (!measuring) continue;
      latencies.push(ms);
      const kind = action.split(/[ :]/)[0];
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      if (!k.expect.test(action)) {
        wrong++;
        if (wrongExamples.length < 5) wrongExamples.push(`${k.name}: ${action}`);
      }
    }
  }

  const loops = clients.map((c, i) => loop(c, i));
  await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
  measuring = true;
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(pid);
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.close()));
  await server.stop();
  await dns.close();
  rmSync(tmp, { recursive: true, force: true });

  const sorted = Float64Array.from(latencies).sort();
  const rate = latencies.length / elapsed;
  const serverCpu = (cpu1 - cpu0) / elapsed;
  const rows: Array<[string, string]> = [
    ['decisions', String(latencies.length)],
    ['seconds', elapsed.toFixed(1)],
    ['decisions/s', Math.round(rate).toLocaleString('en-US')],
    ['p50 latency', `${percentile(sorted, 50).toFixed(2)} ms`],
    ['p90 latency', `${percentile(sorted, 90).toFixed(2)} ms`],
    ['p99 latency', `${percentile(sorted, 99).toFixed(2)} ms`],
    ['max latency', `${sorted[sorted.length - 1]?.toFixed(2)} ms`],
    ['server CPU', `${(serverCpu * 100).toFixed(0)}% of one core (${((serverCpu / rate) * 1e6).toFixed(0)} µs per decision)`],
    ['answers', [...byKind].map(([k, v]) => `${k} ${v}`).join(', ')],
    ['wrong answers', String(wrong)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\npolicy-server: ${CONNECTIONS} connections, ${SECONDS} s after ${WARMUP_SECONDS} s warm-up, default policy, warm DNS cache`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  for (const e of wrongExamples) console.log(`  wrong: ${e}`);
  const pass = rate >= 20000 && percentile(sorted, 99) < 5 && wrong === 0;
  console.log(`  target (>= 20,000/s, p99 < 5 ms, no wrong answers): ${pass ? 'met' : 'NOT met'}`);
  if (PROFILE) console.log(`  CPU profile of the server written to ${profDir}`);

  const table = ['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
  updateReadme(
    'policy-server',
    [
      `Command: \`${COMMAND}\` (${CONNECTIONS} connections, ${SECONDS} s measured after ${WARMUP_SECONDS} s warm-up).`,
      `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; target ${pass ? 'met' : 'NOT met'}.`,
      '',
      table,
    ].join('\n'),
  );
  if (wrong > 0) process.exitCode = 1;
}

await main();
