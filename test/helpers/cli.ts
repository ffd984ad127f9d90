// Run the frontline CLI from source as a child process (node --import tsx),
// the way the tests and benchmark use it.

import { Writable } from 'node:stream';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/**
 * The web listener's default address (127.0.0.1:8025) is one port: serves run
 * side by side would fight for it. Tests get it off unless they pass
 * --web-listen (or FRONTLINE_WEB_LISTEN in opts.env).
 */
const WEB_LISTEN_DEFAULT = 'off';
/**
 * How long a command may take to finish, or a serve to say it is ready. A
 * limit on start-up, not on any behaviour: node with tsx compiling the CLI,
 * and a serve's workers one after another, can take tens of seconds on a
 * loaded 2-vCPU machine (load 12–26: 30 s was not always enough). The wait
 * ends at the exit or the ready line, so a longer limit costs a passing test
 * nothing.
 */
export const START_TIMEOUT_MS = 60_000;
// A serve with N workers starts them one after another: a test gives it N times as long.

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `frontline <args>` to completion, optionally feeding stdin. */
export function runCli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, FRONTLINE_DNS: '', FRONTLINE_POLICY_LISTEN: '', FRONTLINE_WEB_LISTEN: WEB_LISTEN_DEFAULT, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? START_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface ServingCli {
  child: ChildProcess;
  /** The policy server's TCP port, read from the ready line. */
  port: number;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Start `frontline serve <args>` and wait for its ready line (use --policy-listen 127.0.0.1:0). */
export function startServe(
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    nodeArgs?: string[];
    /** How node runs the CLI; default from source: ['--import', 'tsx', CLI_MAIN]. */
    entry?: string[];
    /** Called with the process as soon as it is spawned, for a test that acts on it before it is ready. */
    onSpawn?: (child: ChildProcess) => void;
  } = {},
): Promise<ServingCli> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...(opts.entry ?? ['--import', 'tsx', CLI_MAIN]), 'serve', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, FRONTLINE_DNS: '', FRONTLINE_POLICY_LISTEN: '', FRONTLINE_WEB_LISTEN: WEB_LISTEN_DEFAULT, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    opts.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`frontline serve not ready in time:\n${stderr}\n${stdout}`));
    }, opts.timeoutMs ?? START_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /frontline ready: policy server on \S+:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          port: Number(m[1]),
          stdout: () => stdout,
          stderr: () => stderr,
          stop: async () => {
            if (child.exitCode === null) child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`frontline serve exited (${code}) before it was ready:\n${stderr}\n${stdout}`));
    });
  });
}

/** Captures an in-process command's stdout and stderr (the CommandIo the store commands take). */
export function captureIo(): { stdout: Writable; stderr: Writable; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        add(chunk.toString());
        cb();
      },
    });
  return { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)), out: () => out, err: () => err };
}
