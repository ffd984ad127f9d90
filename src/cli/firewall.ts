// `frontline firewall show|sync|flush [--dry-run]`: the firewall sets that
// `frontline serve` keeps in step with the store (docs/enforce.md), by hand:
// what the kernel holds against what the store says, one full reconcile now,
// or frontline's table/sets removed. `--dry-run` prints the exact commands
// and scripts instead of running them. Also what serve uses to start it.

import { Command, Option } from 'commander';
import type { Config } from '../config/load.js';
import { banElements, createReconciler, firewallBackend, formatCommands, runFirewallCommand, spawnRunner, startFirewall, type FirewallBackendName, type RunningFirewall } from '../enforce/firewall/index.js';
import type { Store, StoreLogger } from '../store/index.js';
import { LOOPBACK, localInterfaceAddresses } from '../store/own-addresses.js';
import { InputError } from './input-error.js';
import { printJson, processIo, runCommand, storeOptions, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';
import { neverBanOf } from './store.js';

export interface FirewallCommandOptions extends StoreCommandOptions {
  dryRun?: boolean;
  /** Another backend than enforce.firewall.backend (e.g. to see the pf script on Linux). */
  backend?: FirewallBackendName;
}

/** The allow entries the configuration gives: loopback, my_networks, store.never_ban, the config's allow list, this host's addresses. */
export function firewallStaticAllow(config: Config): string[] {
  return [...LOOPBACK, ...neverBanOf(config), ...localInterfaceAddresses().map((a) => a.address)];
}

function minPrefixOf(config: Config) {
  return { v4: config.store.bans.min_prefix.ipv4, v6: config.store.bans.min_prefix.ipv6 };
}

/** serve: follow the store into the firewall when enforce.firewall.backend is set. */
export function startConfiguredFirewall(config: Config, store: Store, logger: StoreLogger): RunningFirewall | undefined {
  const fw = config.enforce.firewall;
  if (fw.backend === 'none') return undefined;
  return startFirewall(fw, { store, logger, staticAllow: firewallStaticAllow(config), minPrefix: minPrefixOf(config) });
}

function reconcilerFor(opts: FirewallCommandOptions, config: Config, store: Store, io: CommandIo) {
  const name = opts.backend ?? config.enforce.firewall.backend;
  if (name === 'none') throw new InputError('enforce.firewall.backend is none: set it in the config (nft, ipset or pf), or give --backend');
  const logger: StoreLogger = { info() {}, warn: (_o, msg) => io.stderr.write(`frontline: ${msg}\n`), error: (_o, msg) => io.stderr.write(`frontline: ${msg}\n`) };
  const backend = firewallBackend(name);
  const reconciler = createReconciler(config.enforce.firewall, { store, logger, backend, staticAllow: firewallStaticAllow(config), minPrefix: minPrefixOf(config) });
  return { backend, reconciler };
}

const LIST_MAX = 20;

export function firewallShow(opts: FirewallCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, config, io) => {
    const { backend, reconciler } = reconcilerFor(opts, config, store, io);
    if (opts.dryRun) {
      io.stdout.write(formatCommands(backend.list()));
      return 0;
    }
    const { state } = await reconciler.plan();
    const outputs: string[] = [];
    for (const cmd of backend.list()) outputs.push(await runFirewallCommand(spawnRunner, cmd));
    const kernel = backend.parse(outputs);
    const want = new Set(banElements(state).map((b) => b.cidr));
    const missing = [...want].filter((c) => !kernel.bans.has(c)).sort();
    const extra = [...kernel.bans.keys()].filter((c) => !want.has(c)).sort();
    const allowMissing = state.allow.filter((c) => !kernel.allow.has(c));
    const allowExtra = [...kernel.allow].filter((c) => !state.allow.includes(c));
    const inStep = kernel.present && missing.length === 0 && extra.length === 0 && allowMissing.length === 0 && allowExtra.length === 0;
    if (opts.json) {
      printJson(io, { backend: backend.name, inStep, present: kernel.present, store: { bans: want.size, allow: state.allow.length, skipped: state.skipped }, kernel: { bans: kernel.bans.size, allow: kernel.allow.size }, missing, extra, allowMissing, allowExtra });
      return inStep ? 0 : 1;
    }
    const s = state.skipped;
    const out: string[] = [
      `backend ${backend.name}${kernel.present ? '' : ' (nothing of frontline in the firewall)'}`,
      `store:  ${want.size} bans to drop, ${state.allow.length} allowed networks; left out: ${s.malformed} malformed, ${s.tooWide} too wide, ${s.neverBan} never-ban, ${s.allowMalformed} bad allow entries`,
      `kernel: ${kernel.bans.size} bans, ${kernel.allow.size} allowed networks`,
    ];
    const section = (title: string, items: string[]) => {
      if (items.length === 0) return;
      out.push(`${title}: ${items.length}`);
      for (const c of items.slice(0, LIST_MAX)) out.push(`  ${c}`);
      if (items.length > LIST_MAX) out.push(`  … and ${items.length - LIST_MAX} more (--json lists all)`);
    };
    section('bans missing from the kernel', missing);
    section('in the kernel, not from the store', extra);
    section('allowed networks missing from the kernel', allowMissing);
    section('allowed in the kernel, not from the config or store', allowExtra);
    out.push(inStep ? 'in step' : 'out of step: `frontline firewall sync` rebuilds it (a running serve does at its next reconcile)');
    io.stdout.write(`${out.join('\n')}\n`);
    return inStep ? 0 : 1;
  });
}

export function firewallSync(opts: FirewallCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (store, config, io) => {
    const { reconciler } = reconcilerFor(opts, config, store, io);
    if (opts.dryRun) {
      io.stdout.write(formatCommands((await reconciler.plan()).commands));
      return 0;
    }
    const r = await reconciler.reconcile();
    await reconciler.stop();
    if (opts.json) printJson(io, r);
    else if (r.ok) io.stdout.write(`firewall synced: ${r.bans} bans, ${r.allow} allowed networks (${r.ms} ms)\n`);
    return r.ok ? 0 : 1;
  });
}

export function firewallFlush(opts: FirewallCommandOptions, io: CommandIo = processIo): Promise<number> {
  return withStore(opts, io, async (_store, config, io) => {
    const name = opts.backend ?? config.enforce.firewall.backend;
    if (name === 'none') throw new InputError('enforce.firewall.backend is none: set it in the config (nft, ipset or pf), or give --backend');
    const cmds = firewallBackend(name).flush();
    if (opts.dryRun) {
      io.stdout.write(formatCommands(cmds));
      return 0;
    }
    try {
      for (const cmd of cmds) await runFirewallCommand(spawnRunner, cmd);
    } catch (e) {
      io.stderr.write(`frontline: ${(e as Error).message}\n`);
      return 1;
    }
    io.stdout.write(`firewall: frontline's ${name} sets and rules removed${config.enforce.firewall.backend !== 'none' ? ' (a running serve puts them back at its next reconcile: set enforce.firewall.backend: none first)' : ''}\n`);
    return 0;
  });
}

export function registerFirewallCommand(program: Command, fail: (e: unknown) => never): Command {
  const run = (p: Promise<number>) => runCommand(p, fail);
  const fw = program.command('firewall').description("the firewall sets serve keeps in step with the store's bans (enforce.firewall): show, sync, flush");
  const common = (cmd: Command) =>
    storeOptions(cmd)
      .option('--dry-run', 'print the exact commands and scripts, run nothing')
      .addOption(new Option('--backend <name>', 'instead of enforce.firewall.backend').choices(['nft', 'ipset', 'pf']));
  common(fw.command('show').description('what the kernel holds against what the store says (exit 1 when out of step)')).action((opts: FirewallCommandOptions) => run(firewallShow(opts)));
  common(fw.command('sync').description('one full reconcile now: rebuild frontline\'s sets from the store in one transaction')).action((opts: FirewallCommandOptions) =>
    run(firewallSync(opts)),
  );
  common(fw.command('flush').description("remove frontline's table, sets and rules from the firewall")).action((opts: FirewallCommandOptions) => run(firewallFlush(opts)));
  return fw;
}
