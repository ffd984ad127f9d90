// The corpus of log line forms (test/fixtures/logs/forms/<daemon>.log): each
// line with the events it must give. Read by the format tests and by
// `scripts/logwatch-forms.ts`, which counts how many forms a parser recognises.

import { readFileSync } from 'node:fs';

export const FORM_DAEMONS = ['sshd', 'postfix', 'dovecot', 'apache', 'nginx'] as const;
export type FormDaemon = (typeof FORM_DAEMONS)[number];

export interface ExpectedEvent {
  kind: string;
  ip: string;
  key?: string;
  times: number;
}

export interface FormLine {
  daemon: FormDaemon;
  /** 1-based line number in the corpus file. */
  lineNo: number;
  line: string;
  /** Empty: the line must give no event. */
  expected: ExpectedEvent[];
}

/** `kind@ip[*N][#key]` */
const EXPECTED = /^([a-z0-9.-]+)@([0-9A-Fa-f:.]+)(?:\*(\d+))?(?:#(.+))?$/;

export function loadForms(daemon: FormDaemon): FormLine[] {
  const text = readFileSync(new URL(`../fixtures/logs/forms/${daemon}.log`, import.meta.url), 'utf8');
  const out: FormLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw === '' || raw.startsWith('#')) return;
    const tab = raw.indexOf('\t');
    if (tab < 0) throw new Error(`${daemon}.log:${i + 1}: no tab between expectation and line`);
    const spec = raw.slice(0, tab);
    const expected: ExpectedEvent[] = [];
    if (spec !== '-') {
      for (const one of spec.split(' ')) {
        const m = EXPECTED.exec(one);
        if (!m) throw new Error(`${daemon}.log:${i + 1}: bad expectation ${JSON.stringify(one)}`);
        expected.push({ kind: m[1], ip: m[2], times: m[3] ? Number(m[3]) : 1, ...(m[4] ? { key: m[4] } : {}) });
      }
    }
    out.push({ daemon, lineNo: i + 1, line: raw.slice(tab + 1), expected });
  });
  return out;
}

/** Events as comparable text, in order: `kind@ip*times#key`. */
export function describeEvents(events: ReadonlyArray<{ kind: string; ip: string; key?: string; times: number }>): string[] {
  return events.map((e) => `${e.kind}@${e.ip}*${e.times}${e.key === undefined ? '' : `#${e.key}`}`);
}
