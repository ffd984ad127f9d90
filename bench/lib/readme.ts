// Keeps bench/README.md's figures current: each benchmark owns one section
// between markers and rewrites only that.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const README = fileURLToPath(new URL('../README.md', import.meta.url));

export function updateReadme(bench: string, markdown: string): void {
  const begin = `<!-- bench:${bench}:begin -->`;
  const end = `<!-- bench:${bench}:end -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  let text = existsSync(README) ? readFileSync(README, 'utf8') : '# Benchmarks\n\nRun all: `npm run bench`; one: `npm run bench -- <name>`.\n';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + end.length);
  else text = `${text.trimEnd()}\n\n## ${bench}\n\n${block}\n`;
  writeFileSync(README, text.endsWith('\n') ? text : `${text}\n`);
}
