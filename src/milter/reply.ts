// From a Verdict to the milter reply the MTA turns into its SMTP answer:
// SMFIR_REPLYCODE with the rule's own code, enhanced status and text. A
// defer (and a tarpit: a milter cannot slow the client) stays 4xx whatever
// the rule said; a fault is 451 4.3.0, never 5xx.

import type { Verdict } from '../core/types.js';
import { sanitizeText } from '../core/reply-text.js';

export interface SmtpAnswer {
  code: number;
  status: string;
  text: string;
}

const DEFAULT_REJECT: SmtpAnswer = { code: 554, status: '5.7.1', text: 'Rejected by policy' };
const DEFAULT_DEFER: SmtpAnswer = { code: 450, status: '4.7.1', text: 'Try again later' };
export const FAULT_ANSWER: SmtpAnswer = { code: 451, status: '4.3.0', text: 'Temporary policy service failure, try again later' };

/** The SMTP answer that refuses for this verdict, or undefined when the dialogue goes on. */
export function refusalOf(v: Verdict): SmtpAnswer | undefined {
  if (v.action === 'reject') return answer(v, DEFAULT_REJECT, false);
  if (v.action === 'defer' || v.action === 'tarpit') return answer(v, DEFAULT_DEFER, true);
  return undefined;
}

function answer(v: Verdict, fallback: SmtpAnswer, temporary: boolean): SmtpAnswer {
  let code = v.code !== undefined && Number.isInteger(v.code) && v.code >= 400 && v.code <= 599 ? v.code : fallback.code;
  if (temporary && code >= 500) code -= 100;
  let status = v.status !== undefined && /^[45]\.\d{1,3}\.\d{1,3}$/.test(v.status) ? v.status : fallback.status;
  if (Number(status[0]) !== Math.floor(code / 100)) status = `${Math.floor(code / 100)}${status.slice(1)}`;
  const text = sanitizeText(v.text ?? fallback.text) || fallback.text;
  return { code, status, text };
}

/** A verdict standing for a fault (a bug, a decision past its deadline): 451 4.3.0. */
export function faultVerdict(stage: Verdict['stage'], why: string): Verdict {
  return { action: 'defer', ...FAULT_ANSWER, text: FAULT_ANSWER.text, headers: [], rule: 'milter:fault', stage, evidence: [{ check: 'policy', result: 'temperror', detail: why, ms: 0 }] };
}
