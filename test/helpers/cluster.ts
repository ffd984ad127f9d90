// The worker processes of a `frontline serve --workers N` a test started, as
// the kernel sees them (/proc): which they are, and which slot the primary
// gave each (src/cli/cluster.ts).

import { readFileSync } from 'node:fs';

/** The worker processes: the primary's children. */
export function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The slot a worker was forked in (FRONTLINE_WORKER_SLOT in its environment), or undefined. */
export function workerSlot(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return env.find((e) => e.startsWith('FRONTLINE_WORKER_SLOT='))?.slice('FRONTLINE_WORKER_SLOT='.length);
  } catch {
    return undefined;
  }
}
