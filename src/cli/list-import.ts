// `frontline list import accept NAME`: apply a configured import's current
// copy now, past the shrink/grow guard that held it back. It fetches the
// source again (the held copy lives in the serving process's memory) and
// writes the list in the store, where every running frontline follows it;
// the serving process re-reads a held list's size at its next run, so it
// compares later fetches with the accepted copy.

import type { Command } from 'commander';
import { systemClock } from '../core/types.js';
import { importSources } from '../intel/config.js';
import { runImportOnce } from '../intel/lists-import/import.js';
import { storeListSink } from '../intel/store-sink.js';
import { InputError } from './input-error.js';
import { printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export function listImportAccept(name: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, config, io) => {
    const sources = importSources(config.intel);
    const src = sources.find((s) => s.name === name);
    if (!src) {
      const known = sources.map((s) => s.name).join(', ');
      throw new InputError(`no list import named "${name}" in intel.imports${known ? ` (configured: ${known})` : ' (none configured)'}`);
    }
    const r = await runImportOnce(src, { sink: storeListSink(store), clock: systemClock }, {}, { force: true });
    if (opts.json) printJson(io, r);
    else if (r.status === 'updated') io.stdout.write(`list import ${name}: ${r.count} entries applied (the last good copy had ${r.previous})\n`);
    else io.stderr.write(`frontline: list import ${name} ${r.status}: ${r.reason ?? ''}\n`);
    return r.status === 'updated' ? 0 : 1;
  });
}

export function registerListImportCommand(list: Command, fail: (e: unknown) => never): void {
  const imp = list.command('import').description('configured list imports (intel.imports)');
  storeOptions(
    imp
      .command('accept')
      .argument('<name>', 'the import (intel.imports[].name)')
      .description('fetch the source now and apply it even beyond max_shrink/max_grow (a copy the guard held back)'),
  ).action((name: string, opts: StoreCommandOptions) => runCommand(listImportAccept(name, opts), fail));
}
