// The milter frontend's cost: messages per second accepted by a real Postfix
// (Debian package, a private instance) with frontline as its smtpd_milters,
// beside the same Postfix with no milter and with OpenDKIM (Debian package
// `opendkim`, verify mode) as its milter — three smtpd listeners of one
// Postfix, measured in turn, round after round, in the same run.
//
// Postfix relays to a fast sink (bench/lib/smtp-load.ts); the figure counts
// the 250 after end of DATA (the message is in Postfix's queue). frontline
// runs as `frontline serve --milter-listen` from source (tsx), with the
// shipped default policy over a fixture DNS world in which the sender's domain
// authorises 127.0.0.1 by SPF; the messages are unsigned (OpenDKIM then has no
// key to fetch; frontline runs its SPF, MX, FCrDNS, DKIM and DMARC checks).
// Needs root, postfix and opendkim.
//
//   node --import tsx bench/milter.ts     (or npm run bench -- milter)
//   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_CLIENTS=16 BENCH_README=0 …

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, chownSync, mkdirSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { Zone } from '../src/dns/zone.js';
import { startFixtureDns } from '../test/helpers/fixture-dns.js';
import { startServe } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/ports.js';
import { postfixAccounts, startPostfix } from '../test/helpers/postfix.js';
import { findBinary } from '../test/helpers/binaries.js';
import { runLoad, startFastSink } from './lib/smtp-load.js';
import { updateReadme } from './lib/readme.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const WRITE_README = process.env.BENCH_README !== '0';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const postfixBin = findBinary('postfix');
  const opendkimBin = findBinary('opendkim');
  const accounts = postfixAccounts();
  if (!postfixBin || !opendkimBin || !accounts || process.getuid?.() !== 0) {
    console.error('bench milter needs root, postfix and opendkim (Debian packages postfix, opendkim)');
    process.exit(1);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'frontline-bench-milter-'));
  chmodSync(tmp, 0o755);
  const cleanup: Array<() => Promise<unknown>> = [async () => rmSync(tmp, { recursive: true, force: true })];
  try {
    const dns = await startFixtureDns(
      new Zone({
        'bench.test': [{ TXT: 'v=spf1 ip4:127.0.0.1 -all' }, { MX: [10, 'mx.bench.test'] }],
        'mx.bench.test': [{ A: '203.0.113.20' }],
      }),
    );
    cleanup.push(() => dns.close());
    const sink = await startFastSink();
    cleanup.push(() => sink.close());

    // frontline as a milter.
    const frontlinePort = await freePort();
    const cfg = join(tmp, 'frontline.yaml');
    writeFileSync(cfg, 'my_networks: []\nlog: { level: warn }\nweb: { listen: off }\nheaders: { authserv_id: bench.milter }\n');
    const serving = await startServe(['--config', cfg, '--dns', dns.server, '--policy-listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data'), '--milter-listen', `inet:127.0.0.1:${frontlinePort}`], { timeoutMs: 120_000 });
    cleanup.push(() => serving.stop());

    // OpenDKIM in verify mode.
    const opendkimPort = await freePort();
    const odDir = join(tmp, 'opendkim');
    mkdirSync(odDir);
    chownSync(odDir, Number(process.env.SUDO_UID ?? 0), 0);
    const odConf = join(odDir, 'opendkim.conf');
    writeFileSync(odConf, `Syslog no\nMode v\nSocket inet:${opendkimPort}@127.0.0.1\nPidFile ${join(odDir, 'pid')}\nAuthservID bench.opendkim\nAlwaysAddARHeader yes\n`);
    const od = spawn(opendkimBin, ['-f', '-x', odConf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let odErr = '';
    od.stderr!.on('data', (d: Buffer) => (odErr += d.toString()));
    cleanup.push(async () => {
      od.kill('SIGTERM');
      await new Promise((r) => od.once('exit', r));
    });
    await new Promise((r) => setTimeout(r, 1000));
    if (od.exitCode !== null) throw new Error(`opendkim exited: ${odErr}`);

    // One Postfix, three smtpd listeners.
    const plain = await freePort();
    const withFrontline = await freePort();
    const withOpendkim = await freePort();
    const smtpd = (port: number, milter: string) =>
      `127.0.0.1:${port} inet n - n - - smtpd\n  -o smtpd_milters=${milter}\n  -o milter_default_action=tempfail\n  -o syslog_name=postfix/${port}\n`;
    const postfix = await startPostfix({
      postfixBin,
      smtpPort: plain,
      relayDomains: ['dest.test'],
      sinkPort: sink.port,
      mainCf: { default_process_limit: '200', smtpd_client_connection_count_limit: '0', smtpd_client_connection_rate_limit: '0', smtpd_client_message_rate_limit: '0', smtpd_client_recipient_rate_limit: '0' },
      masterCfText: smtpd(withFrontline, `inet:127.0.0.1:${frontlinePort}`) + smtpd(withOpendkim, `inet:127.0.0.1:${opendkimPort}`),
    });
    cleanup.push(() => postfix.stop());

    const arrangements = [
      { name: 'no milter', port: plain },
      { name: 'frontline milter', port: withFrontline },
      { name: 'OpenDKIM milter', port: withOpendkim },
    ];
    const rates = new Map<string, number[]>(arrangements.map((a) => [a.name, []]));
    const loads: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const a of arrangements) {
        const r = await runLoad({ port: a.port, clients: CLIENTS, seconds: SECONDS, warmupS: 2, messageSize: 2048, from: 'sender@bench.test', helo: 'client.bench.test' });
        const rate = r.accepted / r.seconds;
        rates.get(a.name)!.push(rate);
        loads.push(loadavg()[0]);
        console.log(`round ${round} ${a.name}: ${rate.toFixed(1)} messages/s (${r.accepted} in ${r.seconds.toFixed(1)} s, errors ${r.errors}${r.errorExamples.length ? `: ${r.errorExamples.join(' | ')}` : ''}), load ${loadavg()[0].toFixed(1)}`);
      }
    }
    const base = median(rates.get('no milter')!);
    const rows = arrangements.map((a) => {
      const xs = rates.get(a.name)!;
      const m = median(xs);
      return `| ${a.name} | ${m.toFixed(1)} | ${xs.map((x) => x.toFixed(1)).join(' / ')} | ${((m / base) * 100).toFixed(0)} % |`;
    });
    const table = [
      `Postfix ${CLIENTS} clients, 2 KB unsigned messages, ${SECONDS} s per run, ${ROUNDS} rounds (arrangements in turn), load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (2 cores, shared machine):`,
      '',
      '| arrangement | messages/s (median) | each round | of no milter |',
      '| --- | --- | --- | --- |',
      ...rows,
      '',
      '`npm run bench -- milter` (`bench/milter.ts`).',
    ].join('\n');
    console.log(`\n${table}`);
    if (WRITE_README) updateReadme('milter', table);
  } finally {
    for (const f of cleanup.reverse()) await f().catch((e) => console.error('cleanup:', e));
  }
}

void main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
