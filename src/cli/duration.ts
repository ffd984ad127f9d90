// Durations and times on the command line: `90s`, `15m`, `2h`, `7d`, `1w`,
// a bare number of seconds, or (for points in time) an ISO 8601 date.

import { InputError } from './input-error.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** Seconds in `90s`, `15m`, `2h`, `7d`, `1w`, `1h30m` or `3600`. Throws InputError. */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    if (n > 0) return n;
  } else if (/^(\d+(\.\d+)?[smhdw])+$/.test(t)) {
    let total = 0;
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) total += Number(m[1]) * UNITS[m[2]];
    if (total > 0) return total;
  }
  throw new InputError(`${what}: expected a duration like 90s, 15m, 2h, 7d, 1w or a number of seconds, got ${JSON.stringify(text)}`);
}

/** A point in time (ms): an ISO date (`2024-05-01`, `2024-05-01T12:00:00Z`) or a duration before `now`. */
export function parseSince(text: string, now: number, what = 'since'): number {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
    throw new InputError(`${what}: not a valid date: ${JSON.stringify(text)}`);
  }
  return now - parseDuration(t, what) * 1000;
}

/** A point in time (ms): an ISO date or a duration from `now` (for expiries). */
export function parseUntil(text: string, now: number, what = 'expires'): number {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
    throw new InputError(`${what}: not a valid date: ${JSON.stringify(text)}`);
  }
  return now + parseDuration(t, what) * 1000;
}

/** `2024-05-01T12:00:00Z` (no milliseconds). */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `3d 4h`, `2h 5m`, `40s`: a short human duration. */
export function humanDuration(seconds: number): string {
  let s = Math.max(0, Math.round(seconds));
  const parts: string[] = [];
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${u}`);
      s %= n;
    }
    if (parts.length === 2) return parts.join(' ');
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.slice(0, 2).join(' ');
}
