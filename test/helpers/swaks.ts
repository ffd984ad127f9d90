// swaks as a test's SMTP client: its transcript, its exit code, and the
// server replies it flagged as errors.

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export interface SwaksResult {
  code: number;
  transcript: string;
  /** Server replies swaks flagged as errors (`<**` lines), without the marker. */
  errors: string[];
}

export function swaks(bin: string, args: string[]): Promise<SwaksResult> {
  return new Promise((resolve) => {
    execFile(bin, [...args, '--timeout', '60'], { timeout: 90_000 }, (err, stdout, stderr) => {
      const transcript = `${stdout}${stderr}`;
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const errors = transcript
        .split('\n')
        .filter((l) => l.startsWith('<**'))
        .map((l) => l.replace(/^<\*\*\s*/, ''));
      resolve({ code, transcript, errors });
    });
  });
}

/** Unfolded values of a header field in a raw message. */
export function headerValuesOf(raw: string, name: string): string[] {
  const head = raw.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  return head
    .split(/\r?\n/)
    .filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((l) => l.slice(name.length + 1).trim());
}

/** `f()`'s first value that is not undefined, asked every 100 ms; throws after timeoutMs. */
export async function waitFor<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A sender of the fixture world as swaks plays it to a test's Postfix. */
export interface SwaksSender {
  /** The client address Postfix sees (XCLIENT ADDR; the helper's Postfix lets 127.0.0.0/8 use XCLIENT). */
  ip: string;
  /** Its verified name (XCLIENT NAME); default [UNAVAILABLE]. */
  name?: string;
  /** Its PTR name (XCLIENT REVERSE_NAME); default: none sent. */
  reverseName?: string;
  helo: string;
  from: string;
  /** One recipient or several, comma-separated. */
  to: string;
  subject?: string;
  /** XCLIENT LOGIN: the client authenticated as this user. */
  login?: string;
  /** The message body; default swaks's own. */
  body?: string;
}

/** One message from `s` through the Postfix on 127.0.0.1:port; exit 0 sent, 23/24/25 refused at MAIL/RCPT/DATA. */
export function sendWithSwaks(bin: string, port: number, s: SwaksSender): Promise<SwaksResult> {
  const args = ['--server', `127.0.0.1:${port}`, '--ehlo', s.helo, '--from', s.from, '--to', s.to];
  args.push('--xclient-addr', s.ip, '--xclient-name', s.name ?? '[UNAVAILABLE]', '--xclient-helo', s.helo);
  if (s.reverseName) args.push('--xclient-reverse-name', s.reverseName);
  if (s.login) args.push('--xclient-login', s.login);
  if (s.subject) args.push('--header', `Subject: ${s.subject}`);
  if (s.body) args.push('--body', s.body);
  return swaks(bin, args);
}

/** A client without XCLIENT (Postfix sees 127.0.0.1) through 127.0.0.1:port, EHLO client.example.com; `extra` more swaks arguments. */
export function sendAsLocalClient(bin: string, port: number, from: string, to: string, extra: string[] = []): Promise<SwaksResult> {
  return swaks(bin, ['--server', `127.0.0.1:${port}`, '--ehlo', 'client.example.com', '--from', from, '--to', to, ...extra]);
}

/** Writes `msg` to `path` for `--data @path --no-data-fixup`; returns the path. */
export function writeDataFile(path: string, msg: Buffer | string): string {
  // With --no-data-fixup swaks sends the file as the whole DATA section plus a CRLF: end it with the dot.
  writeFileSync(path, Buffer.concat([Buffer.from(msg), Buffer.from('.')]));
  return path;
}
