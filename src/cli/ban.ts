// `frontline ban add|del|list|show`: bans in the configured store (the one
// serve uses), like spamdb for spamd. A ban made here is enforced by every
// running frontline on the same store (SQLite within 0.5 s; Redis at once).

import type { Command } from 'commander';
import type { Ban } from '../store/index.js';
import { InputError } from './input-error.js';
import { humanDuration, isoTime, parseDuration } from './duration.js';
import { columns, positiveInt, printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface BanAddOptions extends StoreCommandOptions {
  reason?: string;
  category?: string;
  /** `2h`, `7d`, seconds; default: the reoffender policy (store.bans). */
  duration?: string;
}

export interface BanListOptions extends StoreCommandOptions {
  category?: string;
  limit?: string;
}

function describe(b: Ban, now: number): string {
  return `${b.cidr} banned until ${isoTime(b.expiresAt)} (${humanDuration((b.expiresAt - now) / 1000)} left), ${b.category}, offence ${b.offences}, by ${b.source}${b.reason ? `: ${b.reason}` : ''}`;
}

function banRows(bans: Ban[], now: number): string[][] {
  return bans.map((b) => [b.cidr, b.category, isoTime(b.expiresAt), humanDuration((b.expiresAt - now) / 1000), String(b.offences), b.source, b.reason]);
}

export function banAdd(cidr: string, opts: BanAddOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const durationSeconds = opts.duration !== undefined ? parseDuration(opts.duration, '--duration') : undefined;
    const user = process.env.SUDO_USER ?? process.env.USER ?? 'unknown';
    const r = await store.ban({ cidr, reason: opts.reason ?? '', category: opts.category ?? 'manual', source: `cli:${user}`, durationSeconds });
    if (r.refused) {
      if (opts.json) printJson(io, { refused: true, cidr: r.cidr, why: r.why });
      io.stderr.write(`frontline: ${r.cidr} not banned: ${r.why}\n`);
      return 1;
    }
    if (opts.json) printJson(io, { refused: false, created: r.created, ban: r.ban });
    else io.stdout.write(`${r.created ? '' : 'already banned, kept: '}${describe(r.ban, Date.now())}\n`);
    return 0;
  });
}

export function banDel(cidr: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const done = await store.unban(cidr);
    if (opts.json) printJson(io, { cidr, deleted: done });
    else if (done) io.stdout.write(`${cidr}: ban lifted\n`);
    else io.stderr.write(`frontline: ${cidr}: no such ban (give the CIDR exactly as \`frontline ban list\` shows it)\n`);
    return done ? 0 : 1;
  });
}

export function banList(opts: BanListOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    const limit = positiveInt(opts.limit, '--limit') ?? 1000;
    const bans = await store.listBans({ category: opts.category, limit });
    if (opts.json) printJson(io, bans);
    else if (bans.length === 0) io.stdout.write('no bans\n');
    else io.stdout.write(columns(['cidr', 'category', 'expires', 'left', 'offence', 'source', 'reason'], banRows(bans, Date.now())));
    return 0;
  });
}

/** The ban on exactly this CIDR; for a bare IP, the ban that covers it. */
export function banShow(cidr: string, opts: StoreCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, _config, io) => {
    if (cidr.trim() === '') throw new InputError('ban show: expected an IP or CIDR');
    const ban = (await store.showBan(cidr)) ?? (cidr.includes('/') ? undefined : await store.getBan(cidr));
    if (opts.json) printJson(io, ban ?? null);
    else if (ban) io.stdout.write(`${describe(ban, Date.now())}\nfirst seen ${isoTime(ban.firstSeen)}, banned at ${isoTime(ban.createdAt)}\n`);
    else io.stderr.write(`frontline: ${cidr} is not banned\n`);
    return ban ? 0 : 1;
  });
}

export function registerBanCommand(program: Command, fail: (e: unknown) => never): Command {
  const run = (p: Promise<number>) => runCommand(p, fail);
  const ban = program.command('ban').description('bans in the store: add, del, list, show (every frontline on the same store enforces them)');
  storeOptions(
    ban
      .command('add')
      .argument('<cidr>', 'IP address or CIDR')
      .description('ban an address or network (refused for never-ban addresses: loopback, my_networks, store.never_ban, allow lists)')
      .option('--reason <text>', 'why (shown in the reply to the client)')
      .option('--category <name>', 'spamtrap, dnsbl, brute-force, probe, policy, manual… (default manual)')
      .option('--duration <time>', 'how long: 90s, 15m, 2h, 7d, 1w (default: the reoffender policy, store.bans)'),
  ).action((cidr: string, opts: BanAddOptions) => run(banAdd(cidr, opts)));
  storeOptions(ban.command('del').argument('<cidr>', 'the banned CIDR, as listed').description('lift a ban now')).action((cidr: string, opts: StoreCommandOptions) =>
    run(banDel(cidr, opts)),
  );
  storeOptions(
    ban
      .command('list')
      .description('unexpired bans, latest expiry first')
      .option('--category <name>', 'only this category')
      .option('--limit <n>', 'at most this many (default 1000)'),
  ).action((opts: BanListOptions) => run(banList(opts)));
  storeOptions(ban.command('show').argument('<cidr>', 'a banned CIDR, or an IP to find the ban covering it').description('one ban in detail')).action(
    (cidr: string, opts: StoreCommandOptions) => run(banShow(cidr, opts)),
  );
  return ban;
}
