// One message header as it goes on the wire: `Name: value`, cleaned to one
// logical line and folded at whitespace (RFC 5322 §2.2.3). Used by the gate,
// which writes the headers itself, and the milter, which hands them to the MTA.

const FOLD_AT = 78;
/** What formatHeader's cleaning would change: line breaks, runs of spaces, whitespace at either end. */
const NEEDS_CLEANING = /[\r\n]| {2}|^\s|\s$/;

/** `Name: value` folded at whitespace so no line exceeds ~78 characters, CRLF-ended. */
export function formatHeader(name: string, value: string): string {
  const dirty = NEEDS_CLEANING.test(value);
  // Short and already clean (one line, single spaces, nothing to trim): as it is.
  if (!dirty && name.length + 2 + value.length <= FOLD_AT) return `${name}: ${value}\r\n`;
  const clean = dirty ? value.replace(/\r?\n[ \t]*/g, ' ').trim() : value;
  // The words are the runs between spaces (split(/ +/) without the array), each added to the line or starting a new one.
  const head = `${name}:`;
  let out = '';
  let line = head;
  let i = 0;
  for (;;) {
    const sp = clean.indexOf(' ', i);
    const w = sp < 0 ? clean.slice(i) : clean.slice(i, sp);
    if (line.length + 1 + w.length > FOLD_AT && line.trim() !== head) {
      out += `${line}\r\n`;
      line = `\t${w}`;
    } else {
      line += ` ${w}`;
    }
    if (sp < 0) break;
    i = sp + 1;
    while (clean.charCodeAt(i) === 32) i++;
  }
  return `${out}${line}\r\n`;
}
