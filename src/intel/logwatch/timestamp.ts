// Log timestamps, for replays: windows are computed in log time, not in the
// time of the replay. Syslog's `Nov 22 05:01:02` has no year: it is the year
// that puts the stamp at or before the reference time (a December line read
// in January belongs to last year). Stamps without a zone are local time, as
// the daemons write them.

const MONTHS: Record<string, number> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};

/** `Nov 22 05:01:02` (syslog), optionally preceded by a weekday and followed by `.frac YYYY` (Apache error log). */
const BSD = /^(?:[A-Z][a-z]{2} )?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: (\d{4}))?$/;
/** ISO 8601 / RFC 3339: `2026-11-22T05:01:02.123+00:00`, `2026-11-22 05:01:02Z`. */
const ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?$/i;
/** nginx/Apache access log: `22/Nov/2026:05:01:02 +0000`. */
const CLF = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;
/** nginx error log: `2026/11/22 05:01:02` (local time). */
const SLASHED = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

const DAY = 86_400_000;

/** Milliseconds since the epoch of a log stamp, or undefined when it is none of the known shapes. */
export function parseLogTime(stamp: string, reference: number): number | undefined {
  let m = BSD.exec(stamp);
  if (m) {
    const month = MONTHS[m[1]];
    if (month === undefined) return undefined;
    const ms = m[6] ? Number(m[6].padEnd(3, '0').slice(0, 3)) : 0;
    const at = (year: number) => new Date(year, month, Number(m![2]), Number(m![3]), Number(m![4]), Number(m![5]), ms).getTime();
    if (m[7]) return at(Number(m[7]));
    const year = new Date(reference).getFullYear();
    const t = at(year);
    // A little slack for clocks and for lines written while we read.
    return t > reference + DAY ? at(year - 1) : t;
  }
  if (ISO.test(stamp)) {
    const t = Date.parse(stamp.replace(' ', 'T').replace(',', '.'));
    return Number.isNaN(t) ? undefined : t;
  }
  m = CLF.exec(stamp);
  if (m) {
    const month = MONTHS[m[2]];
    if (month === undefined) return undefined;
    const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
    const offset = (Number(m[8]) * 60 + Number(m[9])) * 60_000;
    return m[7] === '+' ? utc - offset : utc + offset;
  }
  m = SLASHED.exec(stamp);
  if (m) return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])).getTime();
  return undefined;
}

/** Remembers recent stamps: consecutive lines share one, and interleaved logs alternate between a few. */
export class LogTimeParser {
  private readonly cache = new Map<string, number | undefined>();
  constructor(private readonly reference: () => number) {}
  parse(stamp: string): number | undefined {
    let t = this.cache.get(stamp);
    if (t === undefined && !this.cache.has(stamp)) {
      if (this.cache.size >= 64) this.cache.clear();
      t = parseLogTime(stamp, this.reference());
      this.cache.set(stamp, t);
    }
    return t;
  }
}
