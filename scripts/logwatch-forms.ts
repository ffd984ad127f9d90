// How many of the log line forms in test/fixtures/logs/forms/ a parser
// recognises, per daemon: attack forms that give exactly the expected events
// (kind, address, count), and no-count forms (server faults, honest traffic)
// that wrongly give one. `node --import tsx scripts/logwatch-forms.ts [SRC]`
// measures the parser under SRC (default: this checkout's src/), e.g. an older
// checkout's, for a before/after comparison.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FORM_DAEMONS, describeEvents, loadForms } from '../test/helpers/log-forms.js';

interface Parser {
  (line: { text: string; cut: boolean; lineNo: number }, out: Array<{ kind: string; ip: string; key?: string; times: number }>): unknown;
}

const src = resolve(process.argv[2] ?? new URL('../src', import.meta.url).pathname);
const mod = (await import(pathToFileURL(`${src}/intel/logwatch/formats/index.ts`).href)) as { createLineParser(format: string): Parser };
const parse = mod.createLineParser('auto');

let totalForms = 0;
let totalOk = 0;
console.log(`parser: ${src}`);
console.log('daemon   attack forms recognised   no-count forms wrongly counted');
for (const daemon of FORM_DAEMONS) {
  let forms = 0, ok = 0, quiet = 0, wrong = 0;
  const missed: string[] = [];
  for (const f of loadForms(daemon)) {
    const out: Parameters<Parser>[1] = [];
    parse({ text: f.line, cut: false, lineNo: f.lineNo }, out);
    const got = describeEvents(out).join(' ');
    if (f.expected.length === 0) {
      quiet++;
      if (out.length > 0) {
        wrong++;
        missed.push(`  wrongly counted (line ${f.lineNo}): ${got}`);
      }
      continue;
    }
    forms++;
    if (got === describeEvents(f.expected).join(' ')) ok++;
    else missed.push(`  missed (line ${f.lineNo}): ${f.line.slice(0, 110)}`);
  }
  totalForms += forms;
  totalOk += ok;
  console.log(`${daemon.padEnd(8)} ${`${ok}/${forms}`.padStart(7)} (${Math.round((100 * ok) / forms)
    .toString()
    .padStart(3)}%)           ${wrong}/${quiet}`);
  if (process.env.VERBOSE) for (const m of missed) console.log(m);
}
console.log(`all      ${`${totalOk}/${totalForms}`.padStart(7)} (${Math.round((100 * totalOk) / totalForms)}%)`);
