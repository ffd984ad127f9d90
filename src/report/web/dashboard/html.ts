// HTML made safe by construction: every value interpolated into `html`…``
// is escaped unless it is itself Html (made by `html` or `raw`). HELO names,
// addresses, reply texts and evidence come from whoever connected to the
// mail server; one missed escape is a script in the admin's browser, so
// there is no way to print a plain string without escaping it.

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text for an element's content or a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

/** Tagged template: `html\`<td>${value}</td>\`` escapes `value` (arrays are joined, null/undefined/false print nothing). */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Markup this program wrote itself (never a value from outside). */
export function raw(text: string): Html {
  return new Html(text);
}

/** `?a=1&b=2` from the parts that are set. */
export function query(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s === '' ? '' : `?${s}`;
}

/** ISO time to the second, UTC. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** "in 3 h", "2 d ago" — a rough duration for tables. */
export function relative(ms: number, now: number): string {
  const d = Math.abs(ms - now) / 1000;
  const t = d < 90 ? `${Math.round(d)} s` : d < 5400 ? `${Math.round(d / 60)} min` : d < 172800 ? `${Math.round(d / 3600)} h` : `${Math.round(d / 86400)} d`;
  return ms >= now ? `in ${t}` : `${t} ago`;
}
