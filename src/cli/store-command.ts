// What the store commands (ban, list, grey, log) share: options, opening the
// configured store, output as text or JSON, errors the user can fix.

import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/load.js';
import { InvalidEntryError, StoreUnavailableError, type Store } from '../store/index.js';
import { InputError } from './input-error.js';
import { openConfiguredStore } from './store.js';
import { printable, printableStream } from './terminal-text.js';

export interface StoreCommandOptions {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

export interface CommandIo {
  stdout: Writable;
  stderr: Writable;
}

export const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

/** Settle a command's promise: its exit code, or main's error handler. */
export function runCommand(p: Promise<number>, fail: (e: unknown) => never): Promise<void> {
  return p.then(
    (code) => void (process.exitCode = code),
    (e: unknown) => fail(e),
  );
}

/** The options every store command takes. */
export function storeOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'YAML config file (the same as serve uses: its store section)')
    .option('--data-dir <dir>', 'state directory (as serve --data-dir)')
    .option('--json', 'print JSON');
}

/**
 * Open the store the config names, run `body`, close. Bad input and an
 * unreachable store print one line on stderr and give exit code 1; a config
 * error is thrown (main prints it with file:line).
 */
export async function withStore(
  opts: StoreCommandOptions,
  io: CommandIo,
  body: (store: Store, config: Config, io: CommandIo) => Promise<number>,
): Promise<number> {
  const config = loadConfig(opts.config);
  if (opts.dataDir !== undefined) config.data_dir = opts.dataDir;
  // Everything shown comes from the store, where clients and log lines put it: never raw on a terminal.
  const safe: CommandIo = { stdout: printableStream(io.stdout, opts.json === true), stderr: printableStream(io.stderr) };
  let store: Store | undefined;
  try {
    store = await openConfiguredStore(config);
    return await body(store, config, safe);
  } catch (e) {
    if (e instanceof InputError || e instanceof InvalidEntryError || e instanceof StoreUnavailableError) {
      safe.stderr.write(`frontline: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await store?.close();
  }
}

/** Aligned columns; the last column is not padded. Every cell is escaped (printable()), so a newline or an escape sequence in the data cannot break a row. */
export function columns(head: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map(printable));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

export function printJson(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A positive whole number option (`--limit`). */
export function positiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new InputError(`${what}: expected a positive whole number, got ${JSON.stringify(text)}`);
  return n;
}
