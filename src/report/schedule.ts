// `report.schedule`: when `frontline serve` mails the daily report. A mail
// admin writes what they would say: `daily 06:00`, `weekly mon 07:30`, in the
// host's local time as cron reads its crontab, or with `UTC` at the end.
// Seconds are allowed (`daily 06:00:30`). Anything else (every N minutes,
// the 1st of the month) is cron's job: `frontline report --mail`.
//
// Our own parser rather than a cron library: two forms, a dozen lines, and
// a cron line pasted here is answered with the form to write instead.

export interface ReportSchedule {
  /** The schedule as written, for log lines. */
  text: string;
  /** The first time (epoch ms) strictly after `after` that the report is due. */
  next(after: number): number;
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
/** Longest text read: a schedule is a few words. */
const MAX_TEXT = 64;

/** Parse a schedule; throws an Error whose message says what to write. */
export function parseSchedule(text: string): ReportSchedule {
  if (text.length > MAX_TEXT) throw new Error(`expected "daily HH:MM" or "weekly DAY HH:MM" (at most ${MAX_TEXT} characters)`);
  const words = text.trim().toLowerCase().split(/\s+/);
  const cron = cronHint(words);
  if (cron !== undefined) throw new Error(`cron syntax is not read here: ${cron}`);
  const utc = words[words.length - 1] === 'utc';
  if (utc) words.pop();
  let day: number | undefined;
  if (words[0] === 'weekly' && words.length === 3) {
    day = dayOf(words[1]);
    if (day === undefined) throw new Error(`unknown day ${JSON.stringify(words[1])}: expected mon, tue, wed, thu, fri, sat or sun`);
  } else if (words[0] !== 'daily' || words.length !== 2) {
    throw new Error(`expected "daily HH:MM" or "weekly DAY HH:MM", optionally followed by UTC (e.g. "daily 06:00"), got ${JSON.stringify(text)}`);
  }
  const time = timeOf(words[words.length - 1]);
  if (!time) throw new Error(`expected a time of day HH:MM or HH:MM:SS (00:00 to 23:59:59), got ${JSON.stringify(words[words.length - 1])}`);
  const [h, m, s] = time;
  return { text: text.trim(), next: (after) => nextAt(after, day, h, m, s, utc) };
}

function dayOf(word: string): number | undefined {
  const i = DAYS.indexOf(word.slice(0, 3));
  return i >= 0 && (word.length === 3 || DAY_NAMES[i] === word) ? i : undefined;
}

function timeOf(word: string): [number, number, number] | undefined {
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(word);
  if (!m) return undefined;
  const [h, min, s] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  return h < 24 && min < 60 && s < 60 ? [h, min, s] : undefined;
}

/**
 * The next day (of the week, when given) at h:m:s after `after`. In local
 * time a time the clocks skip (spring forward) comes an hour later that day,
 * and a time they pass twice (fall back) counts once, the first time: Date
 * resolves both so.
 */
function nextAt(after: number, day: number | undefined, h: number, m: number, s: number, utc: boolean): number {
  const d = new Date(after);
  for (let i = 0; i <= 8; i++) {
    const at = utc
      ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + i, h, m, s))
      : new Date(d.getFullYear(), d.getMonth(), d.getDate() + i, h, m, s);
    const weekday = utc ? at.getUTCDay() : at.getDay();
    if (at.getTime() > after && (day === undefined || weekday === day)) return at.getTime();
  }
  throw new Error('unreachable: a week always has the day');
}

/** A five-field cron line: what to write instead (for the simple ones). */
function cronHint(words: string[]): string | undefined {
  if (words.length !== 5 || !words.every((w) => /^[\d*/,-]+$/.test(w))) return undefined;
  const [min, hour, dom, month, dow] = words;
  const simple = /^\d{1,2}$/.test(min) && /^\d{1,2}$/.test(hour) && dom === '*' && month === '*';
  const hhmm = `${hour.padStart(2, '0')}:${min.padStart(2, '0')}`;
  if (simple && dow === '*') return `write "daily ${hhmm}"`;
  if (simple && /^[0-7]$/.test(dow)) return `write "weekly ${DAYS[Number(dow) % 7]} ${hhmm}"`;
  return 'write "daily HH:MM" or "weekly DAY HH:MM", or run `frontline report --mail` from cron';
}
