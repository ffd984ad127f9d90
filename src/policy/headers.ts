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

/**
 * A check's evidence in a decision's list, the last if it is there twice
 * (a dozen entries: a scan costs less than building a map per decision).
 */
function find(evidence: readonly Evidence[], check: string): Evidence | undefined {
  for (let i = evidence.length - 1; i >= 0; i--) if (evidence[i].check === check) return evidence[i];
  return undefined;
}

/** Per-check header values of frozen (shared) evidence, made once. */
const headerValues = new WeakMap<Evidence, string>();

function headerValue(e: Evidence): string {
  let v = headerValues.get(e);
  if (v === undefined) {
    v = `${e.result} (${safe(e.detail, 300)})`;
    if (Object.isFrozen(e)) headerValues.set(e, v);
  }
  return v;
}

export function resultHeaders(opts: HeaderOptions, env: Envelope, evidence: Evidence[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (opts.authenticationResults) out.push(['Authentication-Results', authenticationResults(opts.authservId, env, evidence)]);
  for (const check in opts.checkHeaders) {
    const e = find(evidence, check);
    if (e) out.push([opts.checkHeaders[check], headerValue(e)]);
  }
  return out;
}

export function authenticationResults(authservId: string, env: Envelope, evidence: readonly Evidence[]): string {
  const methods: string[] = [];
  const spf = find(evidence, 'spf');
  if (spf && SPF_RESULTS.has(spf.result)) {
    const domain = typeof spf.data?.domain === 'string' ? spf.data.domain : domainOf(env.from);
    // With a null sender SPF checked postmaster@HELO (RFC 7208 §2.4): say so with smtp.helo.
    const prop = env.from === '' ? 'smtp.helo' : 'smtp.mailfrom';
    methods.push(domain ? `spf=${spf.result} ${prop}=${pvalue(domain)}` : `spf=${spf.result}`);
  }
  const spfHelo = find(evidence, 'spf_helo');
  if (spfHelo && SPF_RESULTS.has(spfHelo.result) && env.helo) {
    methods.push(`spf=${spfHelo.result} smtp.helo=${pvalue(env.helo)}`);
  }
  const fcrdns = find(evidence, 'fcrdns');
  if (fcrdns && IPREV[fcrdns.result]) {
    const names = Array.isArray(fcrdns.data?.names) ? fcrdns.data.names : Array.isArray(fcrdns.data?.ptr) ? fcrdns.data.ptr : [];
    const name = typeof names[0] === 'string' ? ` (${comment(names[0])})` : '';
    methods.push(`iprev=${IPREV[fcrdns.result]} policy.iprev=${pvalue(env.clientIp)}${name}`);
  }
  const dkim = find(evidence, 'dkim');
  if (dkim && !dkim.data?.[NOT_VISIBLE]) {
    const sigs = Array.isArray(dkim.data?.signatures) ? (dkim.data.signatures as Array<{ info?: unknown }>) : [];
    const infos = sigs.map((s) => s.info).filter((i): i is string => typeof i === 'string');
    if (infos.length > 0) methods.push(...infos.map((i) => safe(i, 300)));
    else if (DKIM_RESULTS.has(dkim.result)) methods.push(`dkim=${dkim.result}`);
  }
  const dmarc = find(evidence, 'dmarc');
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
