#!/usr/bin/env node
// The `frontline` command: parses flags and hands over to one file per command.

import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError } from '../config/load.js';
import { defaultDataDir } from '../config/schema.js';
import { STAGES } from '../core/types.js';
import { check, InputError } from './check.js';
import { configCheck } from './config-check.js';
import { configInit } from './config-init.js';
import { serve } from './serve.js';
import { clusterSay, serveClustered } from './cluster.js';
import { registerWebCommand } from './web.js';
import { registerBanCommand } from './ban.js';
import { registerListCommand } from './list.js';
import { registerGreyCommand } from './grey.js';
import { registerUserCommand } from './user.js';
import { registerLogCommand } from './log.js';
import { registerStatsCommand } from './stats.js';
import { registerReportCommand } from './report.js';
import { registerLogwatchCommand } from './logwatch.js';
import { registerSpfwalkCommand } from './spfwalk.js';
import { registerFirewallCommand } from './firewall.js';
import { registerReplayCommand } from './replay.js';
import { registerZoneCommand } from './zone.js';
import { openBanSink } from './intel-jobs.js';

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
  else if (e instanceof Error && /^(DNS|listen|EADDRINUSE|gate|store|zone)/.test(e.message)) process.stderr.write(`frontline: ${e.message}\n`);
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
      if (await serveClustered(opts)) return;
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
  .action((file: string) => {
    try {
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
  .action((opts: { domain: string[]; hostname?: string; out?: string; force?: boolean }) => {
    try {
      process.exitCode = configInit(opts, process.stdout, process.stderr);
    } catch (e) {
      fail(e);
    }
  });

registerBanCommand(program, fail);
registerListCommand(program, fail);
registerGreyCommand(program, fail);
registerUserCommand(program, fail);
registerLogCommand(program, fail);
registerStatsCommand(program, fail);
registerReportCommand(program, fail);
registerReplayCommand(program, fail);
registerLogwatchCommand(program, { openSink: openBanSink });
registerSpfwalkCommand(program);
registerWebCommand(program, fail);
registerFirewallCommand(program, fail);
registerZoneCommand(program, fail);

program.parseAsync(process.argv).catch(fail);
