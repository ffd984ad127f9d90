// The reply a decisive rule gives: defaults per action, the rule's text
// template rendered, its remedy appended. Kept to one printable line.

import type { Action, Envelope, Evidence, Stage } from '../core/types.js';
import { displayDomainOf } from '../core/address.js';
import { renderTemplate, safe, type TemplateValues } from './template.js';
import { MAX_TEXT } from '../core/reply-text.js';

export interface Reply {
  code?: number;
  status?: string;
  text?: string;
}

export const REPLY_DEFAULTS: Readonly<Record<Action, Reply>> = {
  accept: {},
  continue: {},
  tag: { text: 'tagged by rule {rule}' },
  reject: { code: 554, status: '5.7.1', text: 'rejected by policy' },
  defer: { code: 450, status: '4.7.1', text: 'temporarily deferred by policy' },
  tarpit: { code: 450, status: '4.7.1', text: 'temporarily deferred by policy' },
};

/** A fault never becomes a 5xx (ARCHITECTURE principle 1). */
export const FAULT_REPLY = { dns: { code: 451, status: '4.4.3' }, internal: { code: 451, status: '4.3.0' } } as const;

export interface RuleReply {
  action: Action;
  code?: number;
  status?: string;
  text?: string;
  remedy?: string;
}

export function buildReply(rule: RuleReply, values: TemplateValues): Reply {
  const d = REPLY_DEFAULTS[rule.action];
  if (d.code === undefined && rule.code === undefined) {
    const text = rule.text ?? d.text;
    return text === undefined ? {} : { text: clip(renderTemplate(text, values)) };
  }
  const code = rule.code ?? d.code;
  const cls = code !== undefined ? Math.floor(code / 100) : undefined;
  const status = rule.status ?? (cls === 4 ? '4.7.1' : '5.7.1');
  const text = renderTemplate(rule.text ?? d.text ?? '', values);
  const remedy = rule.remedy !== undefined ? renderTemplate(rule.remedy, values) : '';
  return { code, status, text: clip(remedy ? `${text} ${remedy}` : text) };
}

function clip(text: string): string {
  return safe(text, MAX_TEXT, true);
}

/** The values templates see for this envelope and evidence. */
export function templateValues(
  env: Envelope,
  extra: { rule: string; stage: Stage; score: number; seesMessage?: boolean },
  evidence: (check: string) => Evidence | undefined,
): TemplateValues {
  const names = evidence('fcrdns')?.data?.names;
  const confirmed = Array.isArray(names) && typeof names[0] === 'string' ? names[0] : undefined;
  const fromDomain = displayDomainOf(env.from);
  return {
    vars: {
      ip: env.clientIp,
      helo: env.helo ?? '',
      from: env.from === '' ? '<>' : (env.from ?? ''),
      // As the sender wrote it: a U-label for an SMTPUTF8 sender, who can read one.
      from_domain: fromDomain ?? (env.from === '' ? '<>' : ''),
      rcpt: env.rcpts[env.rcpts.length - 1] ?? '',
      rule: extra.rule,
      stage: extra.stage,
      score: String(extra.score),
      client_name: env.clientPtr ?? confirmed ?? 'unknown',
      // DKIM can authorise only where the message is seen (the gate); the Postfix policy server never sees it.
      dkim_option: extra.seesMessage && fromDomain ? `, sign it with a DKIM key of ${fromDomain}` : '',
    },
    evidence,
  };
}
