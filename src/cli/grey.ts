// `frontline grey list|del`: the greylist's triplets in the store. A key is
// `origin|sender|recipient`, origin `net:<subnet>` or `spf:<domain>`.

import type { Command } from 'commander';
import type { GreyEntry } from '../store/index.js';
import { InputError } from './input-error.js';
import { isoTime } from './duration.js';
import { columns, positiveInt, printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface GreyListOptions extends StoreCommandOptions {
  limit?: string;
}

function state(e: GreyEntry): string {
  return e.passedAt !== undefined ? `passed ${isoTime(e.passedAt)}` : 'waiting';
}

export function greyList(opts: GreyListOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const limit = positiveInt(opts.limit, '--limit') ?? 1000;
    const entries = await store.greyList({ limit });
    if (opts.json) printJson(io, entries);
    else if (entries.length === 0) io.stdout.write('no greylist entries\n');
    else {
      const rows = entries.map(({ key, entry: e }) => [isoTime(e.firstSeen), isoTime(e.lastSeen), state(e), String(e.attempts), String(e.passes), e.clientIp, key]);
      io.stdout.write(columns(['first seen', 'last seen', 'state', 'tries', 'passes', 'last client', 'key'], rows));
    }
    return 0;
  });
}

/** Delete one triplet (its key as `grey list` shows it), or every triplet last seen from an IP or inside a CIDR. */
export function greyDel(key: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    if (key.trim() === '') throw new InputError('grey del: expected a key (origin|sender|recipient) or an IP/CIDR');
    const n = key.includes('|') ? ((await store.greyDelete(key)) ? 1 : 0) : await store.greyDeleteByClient(key);
    if (opts.json) printJson(io, { key, deleted: n });
    else if (n > 0) io.stdout.write(`deleted ${n} greylist entr${n === 1 ? 'y' : 'ies'}\n`);
    else io.stderr.write(`frontline: no greylist entry for ${key}\n`);
    return n > 0 ? 0 : 1;
  });
}

export function registerGreyCommand(program: Command, fail: (e: unknown) => never): Command {
  const run = (p: Promise<number>) => runCommand(p, fail);
  const grey = program.command('grey').description('greylist entries in the store: list, del');
  storeOptions(grey.command('list').description('greylist triplets, most recently seen first').option('--limit <n>', 'at most this many (default 1000)')).action(
    (opts: GreyListOptions) => run(greyList(opts)),
  );
  storeOptions(
    grey
      .command('del')
      .argument('<key>', 'a key as `grey list` shows it (origin|sender|recipient), or an IP/CIDR: every triplet last seen from it')
      .description('forget greylist entries (the next attempt is deferred again)'),
  ).action((key: string, opts: StoreCommandOptions) => run(greyDel(key, opts)));
  return grey;
}
