// Result headers: Authentication-Results (RFC 8601) for the methods whose
// evidence was computed, and the admin's per-check headers
// (`X-Frontline-SPF: pass (detail)`). Values are one line; frontends fold.

import type { Envelope, Evidence } from '../core/types.js';
import { domainOf } from '../checks/evidence.js';
import { safe } from './template.js';

export interface HeaderOptions {
  authservId: string;
  authenticationResults: boolean;
  /** check name → header name. */
  checkHeaders: Record<string, string>;
  /** Header a `tag` verdict adds, with the rule's text. */
  tagHeader?: string;
}

/** Marks evidence the policy made up because the frontend cannot see the message. */
export const NOT_VISIBLE = 'notVisible';

const SPF_RESULTS = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror']);
const IPREV: Record<string, string> = { pass: 'pass', fail: 'fail', none: 'permerror', temperror: 'temperror', permerror: 'permerror' };
const DKIM_RESULTS = new Set(['pass', 'fail', 'neutral', 'none', 'temperror', 'permerror', 'policy']);
const DMARC_RESULTS = new Set(['pass', 'fail', 'none', 'temperror', 'permerror']);

export function resultHeaders(opts: HeaderOptions, env: Envelope, evidence: Evidence[]): Array<[string, string]> {
  const byCheck = new Map(evidence.map((e) => [e.check, e]));
  const out: Array<[string, string]> = [];
  if (opts.authenticationResults) out.push(['Authentication-Results', authenticationResults(opts.authservId, env, byCheck)]);
  for (const [check, header] of Object.entries(opts.checkHeaders)) {
    const e = byCheck.get(check);
    if (e) out.push([header, `${e.result} (${safe(e.detail, 300)})`]);
  }
  return out;
}

export function authenticationResults(authservId: string, env: Envelope, byCheck: Map<string, Evidence>): string {
  const methods: string[] = [];
  const spf = byCheck.get('spf');
  if (spf && SPF_RESULTS.has(spf.result)) {
    const domain = typeof spf.data?.domain === 'string' ? spf.data.domain : domainOf(env.from);
    // With a null sender SPF checked postmaster@HELO (RFC 7208 §2.4): say so with smtp.helo.
    const prop = env.from === '' ? 'smtp.helo' : 'smtp.mailfrom';
    methods.push(domain ? `spf=${spf.result} ${prop}=${pvalue(domain)}` : `spf=${spf.result}`);
  }
  const spfHelo = byCheck.get('spf_helo');
  if (spfHelo && SPF_RESULTS.has(spfHelo.result) && env.helo) {
    methods.push(`spf=${spfHelo.result} smtp.helo=${pvalue(env.helo)}`);
  }
  const fcrdns = byCheck.get('fcrdns');
  if (fcrdns && IPREV[fcrdns.result]) {
    const names = Array.isArray(fcrdns.data?.names) ? fcrdns.data.names : Array.isArray(fcrdns.data?.ptr) ? fcrdns.data.ptr : [];
    const name = typeof names[0] === 'string' ? ` (${comment(names[0])})` : '';
    methods.push(`iprev=${IPREV[fcrdns.result]} policy.iprev=${pvalue(env.clientIp)}${name}`);
  }
  const dkim = byCheck.get('dkim');
  if (dkim && !dkim.data?.[NOT_VISIBLE]) {
    const sigs = Array.isArray(dkim.data?.signatures) ? (dkim.data.signatures as Array<{ info?: unknown }>) : [];
    const infos = sigs.map((s) => s.info).filter((i): i is string => typeof i === 'string');
    if (infos.length > 0) methods.push(...infos.map((i) => safe(i, 300)));
    else if (DKIM_RESULTS.has(dkim.result)) methods.push(`dkim=${dkim.result}`);
  }
  const dmarc = byCheck.get('dmarc');
  if (dmarc && !dmarc.data?.[NOT_VISIBLE] && DMARC_RESULTS.has(dmarc.result)) {
    const d = dmarc.data?.domain;
    methods.push(typeof d === 'string' ? `dmarc=${dmarc.result} header.from=${pvalue(d)}` : `dmarc=${dmarc.result}`);
  }
  const id = pvalue(authservId);
  return methods.length > 0 ? `${id}; ${methods.join('; ')}` : `${id}; none`;
}

/** A property value: as is when it is a plain token, else a quoted string (RFC 8601 §2.2). */
function pvalue(v: string): string {
  const s = safe(v, 255);
  return /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~@:[\]-]+$/.test(s) ? s : `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** Text inside a comment: no unbalanced parentheses or backslashes. */
function comment(s: string): string {
  return safe(s, 300).replace(/[()\\]/g, (c) => (c === '(' ? '[' : c === ')' ? ']' : '/'));
}
