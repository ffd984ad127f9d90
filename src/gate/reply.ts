// SMTP replies: a code and one or more text lines, formatted as
// `250-first` … `250 last`. Replies relayed from the backend keep their lines.

export interface Reply {
  code: number;
  /** Text lines without the code; the enhanced status, when any, is part of the text. */
  lines: string[];
}

export function reply(code: number, ...lines: string[]): Reply {
  return { code, lines: lines.length > 0 ? lines : [''] };
}

/** The reply's lines as they go on the wire (each with CRLF). */
export function replyLines(r: Reply): string[] {
  const n = r.lines.length;
  return r.lines.map((l, i) => `${r.code}${i < n - 1 ? '-' : ' '}${l}\r\n`);
}

export function formatReply(r: Reply): string {
  // One line is nearly every reply the gate writes.
  return r.lines.length === 1 ? `${r.code} ${r.lines[0]}\r\n` : replyLines(r).join('');
}

/** Text of a reply in one line (for logs and reasons). */
export function replyText(r: Reply): string {
  return `${r.code} ${r.lines.join(' / ')}`;
}

/** A reply built from a verdict's code, enhanced status and text; text may hold several lines. */
export function verdictReply(code: number, status: string | undefined, text: string | undefined): Reply {
  const lines = (text ?? '').split(/\r?\n/).map((l) => l.replace(/[\r\n]/g, ' '));
  const prefix = status ? `${status} ` : '';
  return { code, lines: lines.map((l) => `${prefix}${l}`.trimEnd()) };
}

export const isPositive = (r: Reply): boolean => r.code >= 200 && r.code < 400;
export const isTransient = (r: Reply): boolean => r.code >= 400 && r.code < 500;
