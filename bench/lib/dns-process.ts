// The fixture DNS server (test/helpers/fixture-dns.ts) in a process of its
// own, as a mail server's resolver is: the cold workload asks it a few
// questions per decision, and answering them from the load generator's
// event loop would make each answer wait for the load generator's turn.
//
// Child side (run by `startDnsProcess`): build the zone from the YAML files
// named on the command line (plus bench/lib/traffic.ts's clients with
// `--traffic`), start the server, print `ready <port>`; answer `count`
// messages with the number of questions received so far.

import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadZoneYaml, startFixtureDns } from '../../test/helpers/fixture-dns.js';
import { trafficZone } from './traffic.js';

export interface DnsProcess {
  /** "127.0.0.1:PORT", for --dns. */
  server: string;
  child: ChildProcess;
  /** Questions received so far. */
  questions(): Promise<number>;
  close(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

export async function startDnsProcess(yaml: string, opts: { traffic: boolean }): Promise<DnsProcess> {
  const child = fork(SELF, [yaml, ...(opts.traffic ? ['--traffic'] : [])], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const m = /^ready (\d+)$/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`fixture DNS process exited (${code})`)));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    server: `127.0.0.1:${port}`,
    child,
    questions: () =>
      new Promise<number>((resolve) => {
        child.once('message', (m) => resolve(Number(m)));
        child.send('count');
      }),
    close: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function serve(): Promise<void> {
  const [yaml, flag] = process.argv.slice(2);
  const zone = loadZoneYaml(yaml);
  if (flag === '--traffic') zone.load(trafficZone());
  const dns = await startFixtureDns(zone);
  let total = 0;
  process.on('message', () => {
    // Only the count is wanted: the questions themselves need not pile up.
    total += dns.queries.length;
    dns.queries.length = 0;
    dns.tcpQueries.length = 0;
    process.send?.(total);
  });
  process.on('SIGTERM', () => void dns.close().then(() => process.exit(0)));
  console.log(`ready ${dns.port}`);
}

if (process.argv[1] === SELF) await serve();
