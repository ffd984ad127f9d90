// `frontline user hold|release|show|list`: SASL users whose mail is held
// (sasl_spread, docs/outbound.md). A hold made here defers the user's mail
// on every frontline on the same store; a release lifts it and starts the
// user's spread afresh (its addresses forgotten, its known recipients kept).

import type { Command } from 'commander';
import { spreadUserKey } from '../checks/sasl-spread.js';
import type { UserHold } from '../store/index.js';
import { InputError } from './input-error.js';
import { isoTime } from './duration.js';
import { columns, printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface UserHoldOptions extends StoreCommandOptions {
  reason?: string;
}

function describe(h: UserHold): string {
  return `${h.user} held since ${isoTime(h.createdAt)} by ${h.by}${h.reason ? `: ${h.reason}` : ''}`;
}

/** The login as the store keys it; an empty one is refused. */
function userKey(login: string): string {
  if (login.trim() === '') throw new InputError('expected a SASL login name');
  return spreadUserKey(login);
}

function cliUser(): string {
  return `cli:${process.env.SUDO_USER ?? process.env.USER ?? 'unknown'}`;
}

export function userHold(login: string, opts: UserHoldOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, config, io) => {
    const user = userKey(login);
    const r = await store.userHold({ user, by: cliUser(), reason: opts.reason ?? '', createdAt: Date.now() });
    if (opts.json) printJson(io, r);
    else io.stdout.write(`${r.created ? '' : 'already held, kept: '}${describe(r.hold)}\n`);
    if (!config.sasl_spread.enabled) io.stderr.write('frontline: note: sasl_spread.enabled is false in this config, so serve does not defer held users\n');
    return 0;
  });
}

export function userRelease(login: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const user = userKey(login);
    const lifted = await store.userRelease(user);
    if (opts.json) printJson(io, { user, released: lifted ?? null, by: cliUser() });
    else if (lifted) io.stdout.write(`${user}: released (was ${describe(lifted)}); its client addresses are forgotten\n`);
    else io.stderr.write(`frontline: ${user} is not held (its client addresses are forgotten anyway)\n`);
    return lifted ? 0 : 1;
  });
}

export function userShow(login: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const user = userKey(login);
    const hold = await store.userHoldGet(user);
    if (opts.json) printJson(io, { user, hold: hold ?? null });
    else io.stdout.write(hold ? `${describe(hold)}\n` : `${user} is not held\n`);
    return 0;
  });
}

export function userList(opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const holds = await store.userHolds();
    if (opts.json) printJson(io, holds);
    else if (holds.length === 0) io.stdout.write('no held users\n');
    else io.stdout.write(columns(['user', 'held since', 'by', 'reason'], holds.map((h) => [h.user, isoTime(h.createdAt), h.by, h.reason])));
    return 0;
  });
}

export function registerUserCommand(program: Command, fail: (e: unknown) => never): Command {
  const run = (p: Promise<number>) => runCommand(p, fail);
  const user = program.command('user').description('SASL users whose mail is held (sasl_spread): hold, release, show, list');
  storeOptions(
    user
      .command('hold')
      .argument('<login>', 'the SASL login')
      .description("defer the user's mail until released (every frontline on the same store)")
      .option('--reason <text>', 'why (recorded, and shown in the 450 reply)'),
  ).action((login: string, opts: UserHoldOptions) => run(userHold(login, opts)));
  storeOptions(user.command('release').argument('<login>', 'the SASL login').description("lift the hold; the user's spread starts afresh")).action(
    (login: string, opts: StoreCommandOptions) => run(userRelease(login, opts)),
  );
  storeOptions(user.command('show').argument('<login>', 'the SASL login').description('whether the user is held, since when, by whom, why')).action(
    (login: string, opts: StoreCommandOptions) => run(userShow(login, opts)),
  );
  storeOptions(user.command('list').description('every held user, oldest hold first')).action((opts: StoreCommandOptions) => run(userList(opts)));
  return user;
}
