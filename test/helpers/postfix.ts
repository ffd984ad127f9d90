// A private Postfix instance for end-to-end tests: its own config, queue and
// data directories in a temp dir, smtpd on a loopback port, no DNS of its
// own, mail relayed to a sink. Needs root (the master process) and the
// Debian postfix package; mail_owner postfix, setgid_group postdrop.

import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { requireBinary } from './binaries.js';
import type { Zone } from '../../src/dns/zone.js';
import { startServe, type ServingCli } from './cli.js';
import { startFixtureDns, type FixtureDns } from './fixture-dns.js';
import { startSink, type Sink } from './smtp-sink.js';
import { freePort } from './ports.js';
import { waitFor, type SwaksResult } from './swaks.js';

const run = promisify(execFile);

export interface PostfixOptions {
  postfixBin: string;
  /** smtpd listens on 127.0.0.1:smtpPort. */
  smtpPort: number;
  /** Domains relayed to the sink; the policy applies to mail for them. */
  relayDomains: string[];
  /** Where accepted mail goes: smtp to 127.0.0.1:sinkPort. */
  sinkPort: number;
  /** Extra main.cf lines (`name = value`), e.g. the restriction lists; null leaves a setting at Postfix's default. */
  mainCf: Record<string, string | null>;
  /** main.cf text appended as it is (a shipped fragment); its settings win over `mainCf`. */
  mainCfText?: string;
  /** master.cf text appended as it is (a shipped fragment). */
  masterCfText?: string;
  /** false: no smtpd of the helper's own on smtpPort (masterCfText provides it). Default true. */
  smtpService?: boolean;
}

export interface PostfixInstance {
  dir: string;
  maillog(): string;
  /** `postfix -c <its conf> <cmd>`: reload, abort, … */
  control(cmd: string): Promise<unknown>;
  stop(): Promise<void>;
}

/** Unix users/groups Postfix needs; undefined when missing (not installed as a package). */
export function postfixAccounts(): { uid: number; gid: number } | undefined {
  try {
    const passwd = readFileSync('/etc/passwd', 'utf8');
    const m = /^postfix:[^:]*:(\d+):(\d+):/m.exec(passwd);
    const group = readFileSync('/etc/group', 'utf8');
    if (!m || !/^postdrop:/m.test(group)) return undefined;
    return { uid: Number(m[1]), gid: Number(m[2]) };
  } catch {
    return undefined;
  }
}

const MASTER_CF = `# service type  private unpriv  chroot  wakeup  maxproc command
{SMTP}      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  const accounts = postfixAccounts();
  if (!accounts) throw new Error('the postfix user or postdrop group is missing');
  const dir = mkdtempSync(join(tmpdir(), 'frontline-postfix-'));
  // Postfix daemons run as the postfix user and must traverse the path.
  chmodSync(dir, 0o755);
  const conf = join(dir, 'conf');
  const data = join(dir, 'data');
  for (const d of [conf, join(dir, 'queue'), data]) mkdirSync(d);
  chownSync(data, accounts.uid, accounts.gid);
  const maillog = join(dir, 'maillog');
  const main: Record<string, string | null> = {
    compatibility_level: '3.6',
    config_directory: conf,
    queue_directory: join(dir, 'queue'),
    data_directory: data,
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    myhostname: 'mx.dest.test',
    mydomain: 'dest.test',
    myorigin: '$mydomain',
    mydestination: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    // Not 127.0.0.1: the policy must apply to the test's (XCLIENT) clients.
    mynetworks: '10.255.255.0/24',
    maillog_file: maillog,
    maillog_file_prefixes: dir,
    // No DNS of Postfix's own: client names come from XCLIENT, the relay is an IP.
    smtpd_peername_lookup: 'no',
    smtp_dns_support_level: 'disabled',
    smtp_host_lookup: 'native',
    smtpd_authorized_xclient_hosts: '127.0.0.0/8',
    relay_domains: opts.relayDomains.join(', '),
    relay_transport: `smtp:[127.0.0.1]:${opts.sinkPort}`,
    alias_maps: '',
    alias_database: '',
    biff: 'no',
    smtpd_client_restrictions: '',
    smtpd_helo_restrictions: '',
    smtpd_sender_restrictions: '',
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    ...opts.mainCf,
  };
  const mainText = Object.entries(main).filter(([, v]) => v !== null).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
  writeFileSync(join(conf, 'main.cf'), opts.mainCfText === undefined ? mainText : `${mainText}\n${opts.mainCfText}`);
  const master = opts.smtpService === false ? MASTER_CF.replace(/^\{SMTP\}.*\n/m, '') : MASTER_CF.replace('{SMTP}', `127.0.0.1:${opts.smtpPort}`);
  writeFileSync(join(conf, 'master.cf'), opts.masterCfText === undefined ? master : `${master}\n${opts.masterCfText}`);

  const readLog = () => (existsSync(maillog) ? readFileSync(maillog, 'utf8') : '');
  const postfix = (cmd: string) => run(opts.postfixBin, ['-c', conf, cmd], { timeout: 30000 });
  try {
    await postfix('start');
    await waitForBanner(opts.smtpPort, 15000);
  } catch (e) {
    await postfix('abort').catch(() => undefined);
    const log = readLog();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`postfix did not start: ${(e as Error).message}\n${log}`);
  }
  return {
    dir,
    maillog: readLog,
    control: postfix,
    async stop() {
      await postfix('stop').catch(() => postfix('abort').catch(() => undefined));
      // `postfix stop` returns at once; wait for the master to let go of its pid file.
      const pidFile = join(dir, 'queue', 'pid', 'master.pid');
      for (let i = 0; i < 50 && masterAlive(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function masterAlive(pidFile: string): boolean {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once something on 127.0.0.1:port greets with 220. */
async function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.setEncoding('utf8');
      s.setTimeout(2000, () => {
        s.destroy();
        resolve(false);
      });
      s.once('data', (d: string) => {
        s.end('QUIT\r\n');
        resolve(d.startsWith('220'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no SMTP banner on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The binaries and privileges a Postfix end-to-end test needs: postfix and swaks
 * on PATH, root, and the Debian package's postfix user and postdrop group.
 * Missing → a loud skip (undefined), or a failure under CI=true.
 */
export function requirePostfixPeers(t: TestContext): { postfix: string; swaks: string } | undefined {
  const postfix = requireBinary('postfix', t);
  if (!postfix) return undefined;
  const swaks = requireBinary('swaks', t);
  if (!swaks) return undefined;
  if (process.getuid?.() !== 0 || !postfixAccounts()) {
    const msg = 'the Postfix end-to-end test needs root and the postfix user/postdrop group (Debian postfix package)';
    if (process.env.CI === 'true') throw new Error(`${msg} (CI=true: failing instead of skipping)`);
    console.warn(`\n*** SKIPPED "${t.name}": ${msg} ***\n`);
    t.skip(msg);
    return undefined;
  }
  return { postfix, swaks };
}

/** Cleanups run in reverse order after the test; each failure is logged, none stops the others. */
export function cleanupStack(t: TestContext): Array<() => Promise<unknown>> {
  const cleanup: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch((e) => console.error('cleanup:', e));
  });
  return cleanup;
}

/** A temp dir removed after the test. */
export function tempDirFor(cleanup: Array<() => Promise<unknown>>, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** startPostfix on a free loopback port, stopped after the test; `smtpPort` is where its smtpd listens. */
export async function startTestPostfix(
  cleanup: Array<() => Promise<unknown>>,
  opts: Omit<PostfixOptions, 'smtpPort'> & { smtpPort?: number },
): Promise<PostfixInstance & { smtpPort: number }> {
  const smtpPort = opts.smtpPort ?? (await freePort());
  const postfix = await startPostfix({ ...opts, smtpPort });
  cleanup.push(() => postfix.stop());
  return { ...postfix, smtpPort };
}

/** main.cf lines that make smtpd ask frontline's policy server at RCPT; frontline down → 451, never an accept. */
export function policyServiceMainCf(policyPort: number): Record<string, string> {
  return {
    smtpd_recipient_restrictions: `reject_unauth_destination, check_policy_service inet:127.0.0.1:${policyPort}`,
    smtpd_policy_service_timeout: '30s',
    smtpd_policy_service_default_action: '451 4.3.5 policy service unavailable',
  };
}

/**
 * Virtual mailboxes `user@dest.test` in `dir`/mail, written by Postfix's
 * virtual agent as the postfix user: the main.cf lines, and each mailbox read
 * back. `dir` is made traversable for the postfix user.
 */
export function virtualMailboxes(dir: string, users: string[]) {
  const accounts = postfixAccounts();
  if (!accounts) throw new Error('the postfix user or postdrop group is missing');
  const mailDir = join(dir, 'mail');
  mkdirSync(mailDir, { recursive: true });
  chmodSync(dir, 0o755);
  chownSync(mailDir, accounts.uid, accounts.gid);
  const mailbox = (user: string) => {
    const p = join(mailDir, user);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  };
  return {
    mainCf: {
      virtual_mailbox_domains: 'dest.test',
      virtual_mailbox_base: mailDir,
      virtual_mailbox_maps: `inline:{ ${users.map((u) => `${u}@dest.test=${u}`).join(', ')} }`,
      virtual_uid_maps: `static:${accounts.uid}`,
      virtual_gid_maps: `static:${accounts.gid}`,
    },
    /** The mbox text of `user` ('' before the first message). */
    mailbox,
    /** The mbox entry (raw message) whose Subject is `subject`, once it is there. */
    delivered: (user: string, subject: string) =>
      waitFor(`"${subject}" in ${user}'s mailbox`, () =>
        mailbox(user)
          .split(/^From /m)
          .find((m) => m.includes(`Subject: ${subject}\n`)),
      ),
  };
}

/** What a failed assertion should show: swaks's transcript, the maillog, and the tail of frontline's output. */
export function failureReport(postfix: PostfixInstance, frontline: ServingCli, r?: SwaksResult): string {
  return `${r ? `swaks exit ${r.code}\n${r.transcript}\n` : ''}--- maillog ---\n${postfix.maillog()}\n--- frontline ---\n${frontline.stdout().slice(-6000)}${frontline.stderr()}`;
}

/** What a Postfix e2e test that relays to a sink starts from. */
export interface PostfixBed {
  peers: { postfix: string; swaks: string };
  cleanup: Array<() => Promise<unknown>>;
  /** The fixture DNS server answering from the test's world. */
  dns: FixtureDns;
  /** Where Postfix relays mail for dest.test. */
  sink: Sink;
  /** A temp dir for the test's config and data. */
  dir: string;
}

/** requirePostfixPeers (undefined: skipped), cleanups after the test, the fixture DNS world `zone`, a sink and a temp dir. */
export async function startPostfixBed(t: TestContext, zone: Zone, tmpPrefix: string): Promise<PostfixBed | undefined> {
  const peers = requirePostfixPeers(t);
  if (!peers) return undefined;
  const cleanup = cleanupStack(t);
  const dns = await startFixtureDns(zone);
  cleanup.push(() => dns.close());
  const sink = await startSink();
  cleanup.push(() => sink.close());
  return { peers, cleanup, dns, sink, dir: tempDirFor(cleanup, tmpPrefix) };
}

/**
 * `frontline serve <args>` on the bed's DNS with its policy server on a free
 * port, and a Postfix relaying dest.test to the bed's sink that asks it at
 * RCPT (policyServiceMainCf after `mainCf`); both stopped after the test.
 */
export async function servePolicyPostfix(bed: PostfixBed, serveArgs: string[], mainCf: Record<string, string> = {}) {
  const frontline = await startServe([...serveArgs, '--dns', bed.dns.server, '--policy-listen', '127.0.0.1:0']);
  bed.cleanup.push(() => frontline.stop());
  const postfix = await startTestPostfix(bed.cleanup, {
    postfixBin: bed.peers.postfix,
    relayDomains: ['dest.test'],
    sinkPort: bed.sink.port,
    mainCf: { ...mainCf, ...policyServiceMainCf(frontline.port) },
  });
  return { frontline, postfix };
}
