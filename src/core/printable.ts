// Text made safe to show: every non-printable character — C0 and C1
// controls, DEL, Unicode format characters, line and paragraph separators,
// private-use, unassigned and lone surrogate code points — written as an
// escape. Used by the command line (cli/terminal-text.ts) and by the report
// room for what it mails; see cli/terminal-text.ts for why.

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]|\p{Cs}/gu;
const UNPRINTABLE_KEEP_NEWLINE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]|\p{Cs}/gu;

function textEscape(ch: string): string {
  const cp = ch.codePointAt(0) as number;
  if (cp === 0x09) return '\\t';
  if (cp === 0x0a) return '\\n';
  if (cp === 0x0d) return '\\r';
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

function jsonEscape(ch: string): string {
  let out = '';
  for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** One table cell or value: every non-printable character escaped, newlines too. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, textEscape);
}

/** Lines of text: as printable(), but a newline stays a newline. */
export function printableLines(text: string): string {
  return text.replace(UNPRINTABLE_KEEP_NEWLINE, textEscape);
}

/** JSON text (from JSON.stringify): what it left raw (C1, format characters…) as `\uNNNN`, which only occurs inside strings. */
export function printableJson(json: string): string {
  return json.replace(UNPRINTABLE_KEEP_NEWLINE, jsonEscape);
}
