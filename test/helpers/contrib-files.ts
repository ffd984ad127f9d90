// What the e2e tests of contrib/postfix/ share: the shipped files with their
// ports and paths replaced, a program's exit code and output, and waiting for
// a message at the sink.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';
import type { Sink, SinkMessage } from './smtp-sink.js';

const CONTRIB = join(REPO_ROOT, 'contrib/postfix');

/** A shipped file with strings replaced; each `from` must be in it, so a changed file fails the test instead of passing untested. */
export function shipped(path: string, replace: Record<string, string> = {}): string {
  let text = readFileSync(join(CONTRIB, path), 'utf8');
  for (const [from, to] of Object.entries(replace)) {
    assert.ok(text.includes(from), `${path} no longer contains ${from}`);
    text = text.replaceAll(from, to);
  }
  return text;
}

export interface Run {
  code: number;
  out: string;
}

/** Runs a program to its end: its exit code (-1 when killed) and stdout + stderr. */
export function exec(bin: string, args: string[], timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out: out + err }));
  });
}

/** The sink's message with this Subject, once it arrives. */
export async function delivered(sink: Sink, subject: string, timeoutMs = 30_000): Promise<SinkMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = sink.messages.find((x) => x.data.toString().includes(`Subject: ${subject}\r\n`));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`"${subject}" not delivered within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
