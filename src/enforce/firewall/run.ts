// Running the firewall's own command-line tools (nft, ipset, iptables-restore,
// pfctl) with a script on standard input. One function, so tests can run the
// same commands inside a network namespace (`ip netns exec NAME …`) and
// `--dry-run` can print them instead.

import { spawn } from 'node:child_process';
import type { FirewallCommand } from './types.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CommandRunner = (argv: string[], stdin?: string) => Promise<CommandResult>;

/** A command's failure, with a message an admin can act on (missing binary, no CAP_NET_ADMIN, the tool's own words). */
export class FirewallCommandError extends Error {}

const MAX_OUTPUT = 256 * 1024 * 1024;

export const spawnRunner: CommandRunner = (argv, stdin) =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PATH: withSbin(process.env.PATH), LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= MAX_OUTPUT) out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => err.length < 64 && err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    // A tool that exits early (bad syntax) closes its stdin: EPIPE is its exit code's business.
    child.stdin.on('error', () => {});
    child.stdin.end(stdin ?? '');
  });

/** The firewall tools live in sbin, often not on a service's PATH. */
function withSbin(path = ''): string {
  const have = new Set(path.split(':'));
  return [path, ...['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => !have.has(d))].filter(Boolean).join(':');
}

/** First lines of a tool's complaint, for one log line. */
function firstLines(text: string): string {
  return text.trim().split('\n').slice(0, 3).join(' | ').slice(0, 400);
}

/**
 * Run one command (after its `unless` probe); resolves its stdout, rejects
 * with FirewallCommandError naming the tool and why.
 */
export async function runFirewallCommand(run: CommandRunner, cmd: FirewallCommand): Promise<string> {
  const tool = cmd.argv[0];
  let r: CommandResult;
  try {
    if (cmd.unless) {
      const probe = await run(cmd.unless);
      if (probe.code === 0) return '';
    }
    r = await run(cmd.argv, cmd.stdin);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FirewallCommandError(`${tool}: command not found (install it, or set enforce.firewall.backend to the firewall this host runs)`);
    throw new FirewallCommandError(`${tool}: ${(e as Error).message}`);
  }
  if (r.code === 0) return r.stdout;
  if (cmd.absentOk?.test(r.stderr)) return '';
  const why = firstLines(r.stderr || r.stdout) || `exit code ${r.code}`;
  if (/Operation not permitted|Permission denied|must be root|EPERM/i.test(why)) {
    throw new FirewallCommandError(`${tool}: not permitted (frontline needs CAP_NET_ADMIN to change the firewall): ${why}`);
  }
  throw new FirewallCommandError(`${tool} failed: ${why}`);
}

/** The commands as `--dry-run` prints them: each command line, then its standard input. */
export function formatCommands(cmds: FirewallCommand[]): string {
  const out: string[] = [];
  for (const c of cmds) {
    if (c.unless) out.push(`# unless \`${c.unless.join(' ')}\` succeeds:`);
    out.push(`$ ${c.argv.join(' ')}${c.stdin !== undefined ? ' <<EOF' : ''}`);
    if (c.stdin !== undefined) out.push(`${c.stdin}EOF`);
  }
  return `${out.join('\n')}\n`;
}
