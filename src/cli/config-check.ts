// `frontline config check FILE`: validate a config file without starting anything.

import type { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../config/load.js';

/** Prints OK (exit 0) or one `file:line:col: key: problem` line per problem (exit 1). */
export function configCheck(file: string, out: Writable, err: Writable): number {
  try {
    // Environment overrides are not part of the file: check the file alone.
    loadConfig(file, {}, {});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) err.write(`${p}\n`);
    return 1;
  }
  out.write(`${file}: OK\n`);
  return 0;
}
