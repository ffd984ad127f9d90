#!/usr/bin/env node
// The `frontline` command: parses flags and hands over to one file per command.
// A command's modules are loaded only when that command runs: loading all of
// them (the policy, mailauth, fastify) cost ~1.5 s of CPU before `frontline
// stats` or `ban add` could start.

import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError } from '../config/load.js';
import { defaultDataDir } from '../config/schema.js';
import { STAGES } from '../core/types.js';
import { InputError } from './input-error.js';

function version(): string {
  try {
    // src/cli/main.ts and dist/cli/main.js are both two levels below package.json.
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Report an error the user can fix (no stack trace) and exit 1; anything else is a bug: show it. */
function fail(e: unknown): never {
  if (e instanceof ConfigError) process.stderr.write(`frontline: configuration error:\n${e.problems.map((p) => `  ${p}`).join('\n')}\n`);
  else if (e instanceof InputError) process.stderr.write(`frontline: ${e.message}\n`);
  else if (e instanceof Error && /^(DNS|listen|EADDRINUSE|gate|store|zone|web|milter|batv|enforce)/.test(e.message)) process.stderr.write(`frontline: ${e.message}\n`);
  else process.stderr.write(`frontline: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}

const collect = (value: string, previous: string[]) => [...previous, value];

const program = new Command('frontline')
  .description('Stops spam at the front line: a policy engine and Postfix policy server that refuse mail during the SMTP dialogue.')
  .version(version());

program
  .command('serve')
  .description(`run the Postfix policy server (defaults: 127.0.0.1:10040, data in ${defaultDataDir()}${process.getuid?.() === 0 ? '' : ', /var/lib/frontline as root'})`)
  .option('-c, --config <file>', 'YAML config file (default: embedded defaults)')
  .option('--policy-listen <host:port>', 'policy server TCP address (env FRONTLINE_POLICY_LISTEN)')
  .option('--policy-socket <path>', 'also listen on this unix socket')
  .option('--dns <servers>', 'DNS servers, comma-separated host[:port] (env FRONTLINE_DNS)')
  .option('--data-dir <dir>', `state directory, created if missing (default: data_dir, else ${defaultDataDir()})`)
  .option('--gate-listen <host:port>', 'run the SMTP gate on this address (overrides gate.listen)')
  .option('--gate-backend <host:port>', "the gate's backend MTA (overrides gate.backend)")
  .option('--milter-listen <inet:host:port|unix:path>', 'run the milter frontend on this address (overrides milter.listen)')
  .option('--workers <n>', 'worker processes sharing the listening sockets: a number or auto (one per CPU); overrides workers')
  .option('--web-listen <host:port|off>', 'dashboard and /metrics address, or off (env FRONTLINE_WEB_LISTEN; overrides web.listen)')
  .action(async (opts) => {
    let running;
    try {
      const { clusterSay, serveClustered } = await import('./cluster.js');
      if (await serveClustered(opts)) return;
      const { serve } = await import('./serve.js');
      running = await serve(opts, clusterSay());
    } catch (e) {
      fail(e);
    }
    const stop = (signal: string) => {
      process.stderr.write(`frontline: ${signal}, closing\n`);
      running.close().then(
        () => process.exit(0),
        (e) => fail(e),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

program
  .command('check')
  .description('judge one envelope (or one JSON envelope per stdin line) and show the verdict, rule and evidence')
  .option('--ip <ip>', 'client IP address')
  .option('--helo <name>', 'HELO/EHLO name')
  .option('--from <address>', "MAIL FROM address ('' or '<>' for the null sender)")
  .option('--rcpt <address>', 'RCPT TO address (repeatable)', collect, [])
  .option('--auth <user>', 'SASL login name (the client authenticated)')
  .option('-c, --config <file>', 'YAML config file')
  .option('--dns <servers>', 'DNS servers, comma-separated host[:port]')
  .option('--dns-timeout <ms>', 'DNS timeout per query in milliseconds')
  .addOption(new Option('--stage <stage>', 'SMTP stage to judge at').choices([...STAGES]).default('rcpt'))
  .option('--json', 'print one JSON object')
  .option('--stdin', 'read one JSON envelope per line {"ip","helo","from","rcpt"}; print one JSON result per line')
  .action(async (opts) => {
    try {
      const { check } = await import('./check.js');
      process.exitCode = await check(opts, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
    } catch (e) {
      fail(e);
    }
  });

const config = program.command('config').description('configuration tools');
config
  .command('check')
  .argument('<file>', 'YAML config file')
  .description('validate a config file: prints OK, or file:line:col: key: problem (exit 1)')
  .action(async (file: string) => {
    try {
      const { configCheck } = await import('./config-check.js');
      process.exitCode = configCheck(file, process.stdout, process.stderr);
    } catch (e) {
      fail(e);
    }
  });

config
  .command('init')
  .description("write a commented config for your domains (stdout without --out; an existing file is kept unless --force)")
  .option('--domain <domain>', 'a mail domain you receive mail for (repeatable; at least one)', collect, [])
  .option('--hostname <name>', "this MX's name, for Authentication-Results (default: the host's name at run time)")
  .option('--out <file>', 'write here instead of standard output (mode 0640)')
  .option('--force', 'replace an existing --out file')
  .action(async (opts: { domain: string[]; hostname?: string; out?: string; force?: boolean }) => {
    try {
      const { configInit } = await import('./config-init.js');
      process.exitCode = configInit(opts, process.stdout, process.stderr);
    } catch (e) {
      fail(e);
    }
  });

type Registrar = () => Promise<void>;
const commands: Record<string, Registrar> = {
  ban: async () => void (await import('./ban.js')).registerBanCommand(program, fail),
  list: async () => void (await import('./list.js')).registerListCommand(program, fail),
  grey: async () => void (await import('./grey.js')).registerGreyCommand(program, fail),
  user: async () => void (await import('./user.js')).registerUserCommand(program, fail),
  log: async () => void (await import('./log.js')).registerLogCommand(program, fail),
  stats: async () => void (await import('./stats.js')).registerStatsCommand(program, fail),
  report: async () => void (await import('./report.js')).registerReportCommand(program, fail),
  replay: async () => void (await import('./replay.js')).registerReplayCommand(program, fail),
  logwatch: async () =>
    void (await import('./logwatch.js')).registerLogwatchCommand(program, {
      openSink: async (configFile) => (await import('./intel-jobs.js')).openBanSink(configFile),
    }),
  spfwalk: async () => void (await import('./spfwalk.js')).registerSpfwalkCommand(program),
  web: async () => void (await import('./web.js')).registerWebCommand(program, fail),
  firewall: async () => void (await import('./firewall.js')).registerFirewallCommand(program, fail),
  zone: async () => void (await import('./zone.js')).registerZoneCommand(program, fail),
};

// The first word that is not an option names the command; help, an unknown
// word or none at all registers every command so the listing is whole. Help
// keeps the order the commands are listed in above.
const named = process.argv.slice(2).find((a) => !a.startsWith('-'));
const chosen = named !== undefined && Object.hasOwn(commands, named) ? [commands[named]!] : Object.values(commands);
for (const register of chosen) await register();

program.parseAsync(process.argv).catch(fail);
