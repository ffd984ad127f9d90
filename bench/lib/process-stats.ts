// Latency percentiles and CPU accounting from /proc, shared by the benches
// that drive `frontline serve` in its own process (and its workers).

import { readFileSync } from 'node:fs';

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The process and its children (the workers, with --workers N). */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file: just the process
  }
  return [pid, ...children.flatMap(processTree)];
}

export function treeCpuSeconds(pids: number[]): number {
  return pids.reduce((sum, p) => sum + cpuSeconds(p), 0);
}
