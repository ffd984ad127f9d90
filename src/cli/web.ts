// `frontline web hash-password`: read a password from standard input (one
// line; typed at a terminal or piped) and print the scrypt hash to put in
// web.auth.password_hash. The password never appears on a command line.

import type { Command } from 'commander';
import { hashPassword } from '../report/web/auth.js';

export interface WebIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Longest password read (a line past this is refused, not cut). */
const MAX_PASSWORD = 1024;

export async function webHashPassword(io: WebIo): Promise<number> {
  let text = '';
  for await (const chunk of io.stdin) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.length > MAX_PASSWORD + 2) break;
  }
  const password = text.split(/\r?\n/)[0];
  if (password.length > MAX_PASSWORD) {
    io.stderr.write(`frontline web hash-password: the password is longer than ${MAX_PASSWORD} characters\n`);
    return 1;
  }
  if (password.length < 8) {
    io.stderr.write('frontline web hash-password: expected a password of at least 8 characters on standard input\n');
    return 1;
  }
  io.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

export function registerWebCommand(program: Command, fail: (e: unknown) => never): void {
  const web = program.command('web').description('the web listener (dashboard, /metrics)');
  web
    .command('hash-password')
    .description('read a password (one line) from standard input; print the hash for web.auth.password_hash')
    .action(async () => {
      try {
        if (process.stdin.isTTY) process.stderr.write('password (echoed; end with Enter): ');
        process.exitCode = await webHashPassword({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
      } catch (e) {
        fail(e);
      }
    });
}
