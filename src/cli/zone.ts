// `frontline zone export`: the DNSBL (or DNSWL) zone frontline serves, as a
// file for rbldnsd, BIND or a plain blocklist reader (docs/enforce.md).

import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { exportZone, EXPORT_FORMATS, zoneContext, type ExportFormat } from '../enforce/zone/index.js';
import { InputError } from './input-error.js';
import { processIo, runCommand, withStore, type CommandIo, type StoreCommandOptions } from './store-command.js';

export interface ZoneExportOptions extends StoreCommandOptions {
  format?: string;
  zone?: string;
  out?: string;
}

export function zoneExport(opts: ZoneExportOptions, io: CommandIo = processIo): Promise<number> {
  const format = (opts.format ?? 'rbldnsd') as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) return Promise.reject(new InputError(`zone export: --format must be one of ${EXPORT_FORMATS.join(', ')}`));
  const id = opts.zone ?? 'bl';
  if (id !== 'bl' && id !== 'wl') return Promise.reject(new InputError('zone export: --zone must be bl or wl'));
  return withStore({ ...opts, json: false }, io, async (store, config, safe) => {
    const ctx = await zoneContext(config, { store, refreshMs: 0 });
    try {
      const text = exportZone(ctx, id, format, Date.now(), { neverBlock: config.my_networks });
      // The file as it is (texts are printable ASCII already); standard output goes through the terminal filter.
      if (opts.out) writeFileSync(opts.out, text, { mode: 0o644 });
      else safe.stdout.write(text);
    } finally {
      ctx.data.stop();
    }
    return 0;
  });
}

export function registerZoneCommand(program: Command, fail: (e: unknown) => never): Command {
  const zone = program.command('zone').description("frontline's own DNSBL/DNSWL zone (zone: in the config)");
  zone
    .command('export')
    .description('print the zone for rbldnsd (combined dataset), BIND (zone file) or as plain CIDRs')
    .option('--format <format>', `${EXPORT_FORMATS.join(' | ')} (default rbldnsd)`)
    .option('--zone <bl|wl>', 'the block zone (default) or the allow zone')
    .option('--out <file>', 'write here instead of standard output')
    .option('-c, --config <file>', 'YAML config file (the same as serve uses)')
    .option('--data-dir <dir>', 'state directory (as serve --data-dir)')
    .action((opts: ZoneExportOptions) => runCommand(zoneExport(opts), fail));
  return zone;
}
