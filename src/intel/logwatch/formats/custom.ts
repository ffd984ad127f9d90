// Patterns from the config, for daemons we do not know. Each must name the
// address with a group `(?<ip>…)` (and may name `(?<key>…)` for distinct
// counting), and it only ever runs on lines already cut to max_line_bytes.
// Cut lines are skipped unless the pattern says otherwise: a cut line ends
// where the attacker chose, so a pattern anchored on `$` could be fooled.
//
// A custom pattern runs on RE2 (the `re2` package), not on V8's backtracking
// engine: its time is linear in the line whatever the pattern, so no line an
// attacker can get into a log can hold the process (and the policy answers it
// gives) on one match. V8 runs in the same event loop as the policy server; a
// worker with a deadline would still lose the lines of a batch it had to kill.
// RE2 has no lookarounds and no backreferences: such patterns are refused at
// load. The shapes that backtrack badly are refused too (regex-safety.ts), so
// a pattern accepted here would also be safe on a backtracking engine.

import { createRequire } from 'node:module';
import type RE2 from 're2';
import { backtrackingRisks } from '../../../checks/regex-safety.js';
import { strictIp } from '../ip.js';
import type { Format } from './types.js';

export interface CustomPatternSpec {
  name: string;
  regex: string;
  /** `i` only: other flags change what `^`, `$` and `.` mean and are not needed for log lines. */
  flags?: string;
  /** Only lines whose syslog program is this; the pattern then runs on the message after the header (else on the whole line). */
  program?: string;
  cut_lines?: boolean;
}

export const MAX_PATTERN_LENGTH = 2000;

// Loaded on first use: RE2 is a 20 MB native module, and most configs (and
// every CLI command that only reads the config's other keys) have no custom pattern.
let engine: typeof RE2 | undefined;

/** The pattern on the linear-time engine; throws when RE2 cannot compile it. */
function compile(spec: CustomPatternSpec): RE2 {
  engine ??= createRequire(import.meta.url)('re2') as typeof RE2;
  return new engine(spec.regex, spec.flags ?? '');
}

/** Problems with a custom pattern: [] when it can be used. */
export function customPatternProblems(spec: CustomPatternSpec): string[] {
  const flags = spec.flags ?? '';
  if (!/^i?$/.test(flags)) return [`flags: only "i" is allowed, got ${JSON.stringify(flags)}`];
  if (spec.regex.length > MAX_PATTERN_LENGTH) return [`regex: longer than ${MAX_PATTERN_LENGTH} characters`];
  try {
    new RegExp(spec.regex, flags);
  } catch (e) {
    return [`regex: does not compile: ${(e as Error).message}`];
  }
  try {
    compile(spec);
  } catch (e) {
    return [`regex: not supported by RE2, the linear-time engine custom patterns run on (no lookarounds, no backreferences): ${(e as Error).message}`];
  }
  const problems: string[] = [];
  if (!/\(\?<ip>/.test(spec.regex)) problems.push('regex: needs a named group (?<ip>…) for the address to ban');
  if (!spec.regex.startsWith('^')) problems.push('regex: must be anchored with ^ on text the daemon writes (an unanchored pattern can match inside client text)');
  for (const risk of backtrackingRisks(spec.regex, flags)) problems.push(`regex: ${risk}; rewrite it without nested or overlapping repetition`);
  return problems;
}

export function customFormat(spec: CustomPatternSpec): Format {
  const problems = customPatternProblems(spec);
  if (problems.length > 0) throw new Error(`pattern ${spec.name}: ${problems.join('; ')}`);
  const re = compile(spec);
  const kind = `custom.${spec.name}`;
  return {
    name: spec.name,
    accepts: (program) => spec.program === undefined || program === spec.program,
    parse(entry, out) {
      if (entry.cut && !spec.cut_lines) return;
      const m = re.exec(spec.program === undefined ? entry.line : entry.message);
      const ipText = m?.groups?.ip;
      if (ipText === undefined) return;
      const ip = strictIp(ipText);
      if (!ip) return;
      const key = m?.groups?.key;
      out.push(key === undefined ? { kind, ip, times: entry.times } : { kind, ip, key: key.slice(0, 256), times: entry.times });
    },
  };
}
