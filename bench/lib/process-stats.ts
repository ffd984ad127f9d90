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

/**
 * CPU seconds the whole machine has been busy (every state but idle and
 * iowait, steal included: time the VM wanted and did not get), summed over
 * all CPUs, from /proc/stat.
 */
export function machineBusySeconds(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = cpu;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / 100;
  } catch {
    return NaN;
  }
}

/** Resident memory of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/** CPU seconds a process has spent in its own code (user), apart from the kernel's work for it (system). */
export function userCpuSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[11]) / 100;
  } catch {
    return NaN;
  }
}
