// Reply and header text templates: `{from_domain} did not authorise {ip}`.
// Variables are validated at load (a typo is a config error, not a reply with
// a hole in it); substituted values come from the client, so they are made
// safe for a single SMTP reply line.

import { CHECKS, isListCheck, LIST_NAME_RE, LIST_PREFIX } from './catalog.js';
import { suggest } from './condition.js';

export const TEMPLATE_VARS = ['ip', 'helo', 'from', 'from_domain', 'rcpt', 'rule', 'stage', 'score', 'client_name', 'dkim_option'] as const;
export type TemplateVar = (typeof TEMPLATE_VARS)[number];

export interface TemplateValues {
  vars: Partial<Record<TemplateVar, string>>;
  /** Evidence by check name: `{evidence.spf.detail}`, `{evidence.dnsbl.hits.zone}` (a data field). */
  evidence: (check: string) => { result: string; detail: string; data?: Record<string, unknown> } | undefined;
}

/** Values that may hold an SMTPUTF8 sender's U-labels (RFC 6531 addresses); the HELO name and the rest stay ASCII. */
const UNICODE_VARS: ReadonlySet<string> = new Set(['from', 'from_domain', 'rcpt', 'dkim_option']);

const VAR_RE = /\{\{|\}\}|\{([^{}]*)\}/g;
/** Longest value substituted for one variable; SMTP reply lines are short. */
const MAX_VALUE = 200;

/** Problems with a template's variables (empty when it is fine). */
export function templateErrors(template: string): string[] {
  const errors: string[] = [];
  for (const m of template.matchAll(VAR_RE)) {
    const name = m[1];
    if (name === undefined) continue;
    if ((TEMPLATE_VARS as readonly string[]).includes(name)) continue;
    if (name.startsWith('evidence.')) {
      const [check, ...path] = name.slice('evidence.'.length).split('.');
      if (path.length === 0 || !path.every((p) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(p))) {
        errors.push(`{${name}}: expected {evidence.CHECK.result}, {evidence.CHECK.detail} or {evidence.CHECK.FIELD[.FIELD]}`);
      } else if (!(check in CHECKS) && !(isListCheck(check) && LIST_NAME_RE.test(check.slice(LIST_PREFIX.length)))) {
        errors.push(`{${name}}: unknown check "${check}"${suggest(check, Object.keys(CHECKS))}`);
      }
      continue;
    }
    errors.push(`unknown variable {${name}}${suggest(name, TEMPLATE_VARS)} (known: ${TEMPLATE_VARS.map((v) => `{${v}}`).join(' ')} {evidence.CHECK.result|detail|FIELD[.FIELD]})`);
  }
  return errors;
}

export function renderTemplate(template: string, values: TemplateValues): string {
  return template.replace(VAR_RE, (whole, name: string | undefined) => {
    if (name === undefined) return whole === '{{' ? '{' : '}';
    if (name.startsWith('evidence.')) {
      const [check, ...path] = name.slice('evidence.'.length).split('.');
      const ev = values.evidence(check);
      if (!ev) return '';
      if (path.length === 1 && path[0] === 'result') return safe(ev.result);
      if (path.length === 1 && path[0] === 'detail') return safe(ev.detail, MAX_VALUE, true);
      return safe(formatValue(dig(ev.data, path)));
    }
    return safe(values.vars[name as TemplateVar] ?? '', MAX_VALUE, UNICODE_VARS.has(name));
  });
}

/** A data field by path; through a list, the field of each element (`hits.zone`). */
function dig(v: unknown, path: string[]): unknown {
  if (path.length === 0) return v;
  if (Array.isArray(v)) return v.map((x) => dig(x, path));
  if (v === null || typeof v !== 'object') return undefined;
  return dig((v as Record<string, unknown>)[path[0]], path.slice(1));
}

function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(formatValue).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const PRINTABLE = /^[\x20-\x7e]*$/;
const ASCII: Record<string, string> = { '≥': '>=', '≤': '<=', '…': '...', '–': '-', '—': '-' };

/**
 * One line of printable ASCII, bounded: client-chosen text cannot break the
 * reply. With `letters`, non-ASCII letters, marks and digits are kept (the
 * U-label of an SMTPUTF8 sender's domain in a reply text, RFC 6531 §3.7.4.2);
 * controls, format characters (bidi overrides) and the rest still become `?`.
 */
export function safe(s: string, max = MAX_VALUE, letters = false): string {
  // Nearly every value is already one short line of printable ASCII.
  if (s.length <= max && PRINTABLE.test(s)) return s;
  const oneLine = s
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/[≥≤…–—]/g, (c) => ASCII[c])
    .replace(letters ? /[^\x20-\x7e\p{L}\p{M}\p{N}]/gu : /[^\x20-\x7e]/g, '?');
  return oneLine.length > max ? `${oneLine.slice(0, max - 3)}...` : oneLine;
}
