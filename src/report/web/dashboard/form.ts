// Reading the dashboard's forms: every field has a length limit and a
// parser that says in plain words what is wrong, so a bad form changes
// nothing and tells the admin why.

import { InvalidEntryError } from '../../../store/errors.js';

/** A form field that is missing, too long or malformed; shown to the admin, nothing is changed. */
export class FormError extends Error {}

const MAX_FIELD = 1000;

/** The named field as text (trimmed); '' when absent. Throws FormError when longer than `max`. */
export function field(body: unknown, name: string, max = MAX_FIELD): string {
  const v = body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new FormError(`${name}: expected one value`);
  if (v.length > max) throw new FormError(`${name}: longer than ${max} characters`);
  return v.trim();
}

export function required(body: unknown, name: string, label: string, max = MAX_FIELD): string {
  const v = field(body, name, max);
  if (v === '') throw new FormError(`${label}: required`);
  return v;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** Seconds in `90s`, `15m`, `2h`, `7d`, `1w`; '' = undefined. Throws FormError. */
export function duration(text: string, label: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === '') return undefined;
  const m = /^(\d{1,6})([smhdw])$/.exec(t);
  if (!m || Number(m[1]) === 0) throw new FormError(`${label}: expected a duration like 90s, 15m, 2h, 7d or 1w, got ${JSON.stringify(text)}`);
  const s = Number(m[1]) * UNITS[m[2]];
  if (s > 10 * 365 * 86400) throw new FormError(`${label}: at most ten years`);
  return s;
}

/** Run a store call that may refuse its input; its InvalidEntryError becomes a FormError. */
export async function storeInput<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof InvalidEntryError) throw new FormError(e.message);
    throw e;
  }
}
