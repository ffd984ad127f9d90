// The line walk every list-file parser shares: one entry per line, comments
// cut away, blank lines skipped, line numbers kept for the bad-line reports.
// Each parser keeps its own comment rule and its own validation.

export interface ListLine {
  /** 1-based. */
  line: number;
  /** The line as read (without its line ending). */
  raw: string;
  /** The line with its comment removed and trimmed; never empty. */
  entry: string;
}

/** The lines of `text` that hold something once `comment` is replaced away. */
export function* listLines(text: string, comment: RegExp): Generator<ListLine> {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const entry = lines[i].replace(comment, '').trim();
    if (entry !== '') yield { line: i + 1, raw: lines[i], entry };
  }
}
