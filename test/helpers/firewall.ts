// What the firewall tests share: a logger that keeps its lines.

import type { StoreLogger } from '../../src/store/types.js';

export function memoryLogger(): StoreLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (obj: object, msg: string) => lines.push(`${level} ${msg} ${JSON.stringify(obj)}`);
  return { lines, info: keep('info'), warn: keep('warn'), error: keep('error') };
}
