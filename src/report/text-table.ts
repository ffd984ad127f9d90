// Aligned text tables for `frontline stats` and the text report. Every cell
// is made printable (core/printable.ts): senders, domains and rule texts
// come from clients, and a newline or an escape sequence in one must not
// break a row or reach a terminal.

import { printable } from '../core/printable.js';

/** Columns aligned; numbers (cells of digits) right-aligned; the last column not padded. */
export function textTable(head: string[], rawRows: Array<Array<string | number>>): string {
  const rows = rawRows.map((r) => r.map((c) => printable(String(c))));
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => /^-?[\d.,%]*$/.test(r[i] ?? '')));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]) : i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** `12.3%` of a total (`-` when the total is 0). */
export function percent(n: number, total: number): string {
  return total > 0 ? `${((100 * n) / total).toFixed(1)}%` : '-';
}
