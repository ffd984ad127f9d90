// List files: one entry per line, "#" starts a comment, blank lines ignored.
// Bad entries are reported with file and line and skipped; the good ones
// still load, so one typo never empties a list.

import { readFile } from 'node:fs/promises';
import { listLines } from '../core/list-lines.js';
import type { BadLine } from './asn.js';
import { canonicalEntry } from './entries.js';
import { InvalidEntryError } from './errors.js';
import type { ListKind } from './types.js';

export type { BadLine } from './asn.js';

/** Canonical entries of list text, de-duplicated, plus the lines that were refused. */
export function parseListText(text: string, kind: ListKind, file = '<text>'): { entries: string[]; bad: BadLine[] } {
  const seen = new Set<string>();
  const bad: BadLine[] = [];
  for (const { line, entry } of listLines(text, /(^|\s)#.*$/)) {
    try {
      seen.add(canonicalEntry(kind, entry, false));
    } catch (e) {
      if (!(e instanceof InvalidEntryError)) throw e;
      bad.push({ file, line, text: entry.slice(0, 200), why: e.message });
    }
  }
  return { entries: [...seen], bad };
}

export async function loadListFile(path: string, kind: ListKind): Promise<{ entries: string[]; bad: BadLine[] }> {
  return parseListText(await readFile(path, 'utf8'), kind, path);
}
