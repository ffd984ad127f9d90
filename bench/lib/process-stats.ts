// Latency percentiles and CPU accounting from /proc, shared by the benches
// that drive `frontline serve` in its own process (and its workers).

import { readdirSync, readFileSync } from 'node:fs';

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

/** CPU seconds per thread of some processes, keyed "pid/tid", from /proc/<pid>/task. */
export function threadCpuSeconds(pids: number[]): Map<string, { user: number; sys: number; main: boolean; name: string }> {
  const out = new Map<string, { user: number; sys: number; main: boolean; name: string }>();
  for (const pid of pids) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        out.set(`${pid}/${tid}`, { user: Number(f[11]) / 100, sys: Number(f[12]) / 100, main: tid === String(pid), name });
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return out;
}

/**
 * Per decision, in µs, between two threadCpuSeconds readings: every main
 * thread (user and kernel apart) and the other threads of each process
 * together (the decision log's writer, GC helpers, libuv's pool).
 */
export function threadSplit(before: ReturnType<typeof threadCpuSeconds>, after: ReturnType<typeof threadCpuSeconds>, decisions: number): string[] {
  const perPid = new Map<string, { mainUser: number; mainSys: number; others: number; parts: string[] }>();
  for (const [k, a] of after) {
    const b = before.get(k) ?? { user: 0, sys: 0 };
    const pid = k.split('/')[0];
    const p = perPid.get(pid) ?? { mainUser: 0, mainSys: 0, others: 0, parts: [] };
    if (a.main) {
      p.mainUser += a.user - b.user;
      p.mainSys += a.sys - b.sys;
    } else {
      const s = a.user - b.user + (a.sys - b.sys);
      p.others += s;
      // Each busy thread by its name (the decision log's writer, V8's helpers, libuv's pool).
      if ((s / decisions) * 1e6 >= 5) p.parts.push(`${a.name} ${((s / decisions) * 1e6).toFixed(0)}`);
    }
    perPid.set(pid, p);
  }
  const µs = (s: number): string => ((s / decisions) * 1e6).toFixed(1);
  return [...perPid]
    .filter(([, p]) => p.mainUser + p.mainSys + p.others > 0.005)
    .map(([pid, p]) => `process ${pid}: main thread ${µs(p.mainUser)} µs user + ${µs(p.mainSys)} µs kernel, other threads ${µs(p.others)} µs${p.parts.length > 0 ? ` (${p.parts.join(', ')})` : ''}`);
}
