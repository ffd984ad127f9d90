// `frontline list add|del|show`: named lists in the store. A rule's
// `list:NAME` matches the config's list NAME and the store's list NAME, so
// `frontline list add allow 192.0.2.10` makes the default policy's allowlist
// rule accept that client at once (and it is never banned). The address
// list `spamtraps` adds spamtrap addresses.

import type { Command } from 'commander';
import { LIST_KINDS, type ListEntry, type ListKind } from '../store/index.js';
import { inferKind } from '../store/entries.js';
import { InputError } from './input-error.js';
import { isoTime, parseUntil } from './duration.js';
import { registerListImportCommand } from './list-import.js';
import { columns, printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface ListAddOptions extends StoreCommandOptions {
  /** `7d`, `2h`, or an ISO date; default never. */
  expires?: string;
  kind?: string;
  source?: string;
}

function kindOf(text: string | undefined): ListKind | undefined {
  if (text === undefined) return undefined;
  if (!(LIST_KINDS as readonly string[]).includes(text)) throw new InputError(`--kind: expected one of ${LIST_KINDS.join(', ')}, got ${JSON.stringify(text)}`);
  return text as ListKind;
}

function entryRow(e: ListEntry): string[] {
  return [e.entry, e.source, isoTime(e.addedAt), e.expiresAt !== undefined ? isoTime(e.expiresAt) : 'never'];
}

export function listAdd(name: string, entry: string, opts: ListAddOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, config, io) => {
    const expiresAt = opts.expires !== undefined ? parseUntil(opts.expires, Date.now(), '--expires') : undefined;
    const kind = kindOf(opts.kind) ?? store.lookup.listKind(name) ?? inferKind(entry);
    if (kind === 'asn' && config.asn.table === null) {
      throw new InputError(`list ${name} holds AS numbers, and AS lists match only with an IP-to-AS table: set asn.table in the config (an iptoasn.com ip2asn-combined.tsv) first`);
    }
    const user = process.env.SUDO_USER ?? process.env.USER ?? 'unknown';
    const e = await store.listAdd(name, entry, { source: opts.source ?? `cli:${user}`, expiresAt, kind: kindOf(opts.kind) });
    if (opts.json) printJson(io, e);
    else io.stdout.write(`added ${e.entry} to ${e.kind} list ${e.list}${e.expiresAt !== undefined ? ` until ${isoTime(e.expiresAt)}` : ''}\n`);
    return 0;
  });
}

export function listDel(name: string, entry: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const done = await store.listDel(name, entry);
    if (opts.json) printJson(io, { list: name, entry, deleted: done });
    else if (done) io.stdout.write(`deleted ${entry} from list ${name}\n`);
    else io.stderr.write(`frontline: ${entry} is not in list ${name}\n`);
    return done ? 0 : 1;
  });
}

/** The entries of one list, or (no name) every list with its kind and size. */
export function listShow(name: string | undefined, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    if (name === undefined) {
      const lists = await store.listNames();
      if (opts.json) printJson(io, lists);
      else if (lists.length === 0) io.stdout.write('no lists in the store\n');
      else io.stdout.write(columns(['list', 'kind', 'entries'], lists.map((l) => [l.name, l.kind, String(l.entries)])));
      return 0;
    }
    const entries = await store.listShow(name);
    if (opts.json) printJson(io, entries);
    else if (entries.length === 0) io.stdout.write(`list ${name} is empty\n`);
    else io.stdout.write(columns(['entry', 'source', 'added', 'expires'], entries.map(entryRow)));
    return 0;
  });
}

export function registerListCommand(program: Command, fail: (e: unknown) => never): Command {
  const run = (p: Promise<number>) => runCommand(p, fail);
  const list = program.command('list').description('named lists in the store (ip, domain, asn, address): add, del, show; rules match them as list:NAME');
  storeOptions(
    list
      .command('add')
      .argument('<name>', 'list name (allow and deny are used by the default policy; spamtraps holds trap addresses)')
      .argument('<entry>', 'IP/CIDR, domain, AS number (AS64496) or e-mail address')
      .description('add an entry (kind of a new list: from --kind, else from the entry)')
      .option('--expires <time>', 'remove it after 90s, 2h, 7d … or at an ISO date (default never)')
      .option('--kind <kind>', `kind of a new list: ${LIST_KINDS.join(', ')}`)
      .option('--source <text>', 'where the entry comes from (default cli:USER)'),
  ).action((name: string, entry: string, opts: ListAddOptions) => run(listAdd(name, entry, opts)));
  storeOptions(list.command('del').argument('<name>', 'list name').argument('<entry>', 'the entry').description('remove an entry')).action(
    (name: string, entry: string, opts: StoreCommandOptions) => run(listDel(name, entry, opts)),
  );
  storeOptions(list.command('show').argument('[name]', 'list name; none = every list').description('the entries of a list, or every list')).action(
    (name: string | undefined, opts: StoreCommandOptions) => run(listShow(name, opts)),
  );
  registerListImportCommand(list, fail);
  return list;
}
