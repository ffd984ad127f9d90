// The decision log's record shape, shared by both backends: what is kept of
// a decision (compact evidence, bounded text) and how a query matches.

import { domainOf } from '../core/address.js';
import type { Evidence } from '../core/types.js';
import { InvalidEntryError } from './errors.js';
import { parseNetwork, formatNetwork, networkContains } from './ip.js';
import { Lru } from '../core/lru.js';
import type { DecisionEvent, EventDataValue, EventEvidence, EventQuery, EventWouldHave, LoggedDecision } from './types.js';

const DETAIL_MAX = 300;
const FIELD_MAX = 500;
const RCPTS_MAX = 100;
const WOULD_HAVE_MAX = 20;
/** Bounds of the structured data kept per evidence entry (for `frontline replay`'s field conditions). */
const DATA_KEYS_MAX = 16;
const DATA_KEY_MAX = 64;
const DATA_TEXT_MAX = 200;
const DATA_LIST_MAX = 32;

/**
 * Compact copies of frozen evidence and their JSON: the evidence cache hands
 * the same frozen objects to many decisions, so each is compacted and
 * serialised once rather than once per decision. One map, keyed by both the
 * frozen original and its compact copy (a copy is its own compact form):
 * one lookup per evidence entry on the way to the JSON text, where separate
 * maps took four.
 */
interface Compacted {
  compact: EventEvidence;
  json?: string;
}
const compacted = new WeakMap<object, Compacted>();

function compactCopy(e: Evidence | EventEvidence): EventEvidence {
  const out: EventEvidence = { check: e.check, result: e.result };
  if (e.detail) out.detail = e.detail.length > DETAIL_MAX ? `${e.detail.slice(0, DETAIL_MAX - 1)}…` : e.detail;
  if (typeof e.ms === 'number') out.ms = e.ms;
  if (e.data !== undefined && e.data !== null && typeof e.data === 'object') compactData(e.data, out, (e as EventEvidence).dataCut);
  return out;
}

/** Name a key left out; past DATA_KEYS_MAX names, `*` stands for every key not kept. */
function cutKey(cut: string[], k: string): void {
  if (cut.includes(k) || cut[cut.length - 1] === '*') return;
  cut.push(cut.length < DATA_KEYS_MAX - 1 ? k : '*');
}

/**
 * The data a condition can compare (a scalar, or a list of them: see
 * compareField in src/policy/evaluate.ts), bounded; what does not fit is
 * named in `dataCut`, so that a replay says it cannot judge a condition on
 * it rather than guess. Nested objects are never compared by conditions and
 * are left out (named too).
 */
function compactData(data: Record<string, unknown>, out: EventEvidence, cutBefore: string[] | undefined): void {
  let kept: Record<string, EventDataValue> | undefined;
  let cut: string[] | undefined;
  if (cutBefore !== undefined) for (const k of cutBefore) cutKey((cut ??= []), String(k));
  let n = 0;
  for (const key in data) {
    if (!Object.prototype.hasOwnProperty.call(data, key) || key === '__proto__') continue;
    const v = data[key];
    if (v === undefined) continue;
    const k = key.length > DATA_KEY_MAX ? key.slice(0, DATA_KEY_MAX) : key;
    let value: EventDataValue | undefined;
    let whole = true;
    if (typeof v === 'string') {
      whole = v.length <= DATA_TEXT_MAX;
      value = whole ? v : v.slice(0, DATA_TEXT_MAX);
    } else if (typeof v === 'number' || typeof v === 'boolean') {
      value = v;
    } else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean')) {
      whole = v.length <= DATA_LIST_MAX && v.every((x) => typeof x !== 'string' || x.length <= DATA_TEXT_MAX);
      value = whole ? v.slice() : v.slice(0, DATA_LIST_MAX).map((x) => (typeof x === 'string' ? x.slice(0, DATA_TEXT_MAX) : x));
    } else {
      whole = false;
    }
    if (n >= DATA_KEYS_MAX || k !== key) {
      value = undefined;
      whole = false;
    }
    if (value !== undefined) {
      (kept ??= {})[k] = value;
      n++;
    }
    if (!whole) cutKey((cut ??= []), k);
  }
  if (kept !== undefined) out.data = kept;
  if (cut !== undefined && cut.length > 0) out.dataCut = cut;
}

/** The memo of a frozen evidence entry (made on first sight); undefined for one that may still change. */
function memoOf(e: Evidence | EventEvidence): Compacted | undefined {
  const known = compacted.get(e);
  if (known !== undefined || !Object.isFrozen(e)) return known;
  const rec: Compacted = { compact: Object.freeze(compactCopy(e)) };
  compacted.set(e, rec);
  compacted.set(rec.compact, rec);
  return rec;
}

function compactOne(e: Evidence | EventEvidence): EventEvidence {
  return memoOf(e)?.compact ?? compactCopy(e);
}

/** Evidence as the log keeps it: detail cut to 300 characters, structured data bounded (compactData). */
export function compactEvidence(evidence: ReadonlyArray<Evidence | EventEvidence>): EventEvidence[] {
  return evidence.map(compactOne);
}

/**
 * The JSON text of compactEvidence(evidence), as stored: made on the thread
 * that decided, so the decision log's writer thread receives one string per
 * event rather than a structured clone of a dozen objects (which cost both
 * threads more than the insert itself). `pieces`: compactEvidencePieces(evidence),
 * when the caller has made them already.
 */
export function compactEvidenceJson(evidence: ReadonlyArray<Evidence | EventEvidence>, pieces?: string[]): string {
  // Joined, not concatenated: a concatenation is a rope that every reader (the
  // structured clone that posts it to the writer thread) must flatten first,
  // which cost more than the serialising itself. The brackets go into the
  // first and last parts, so that the join's flat string is the result.
  if (evidence.length === 0) return '[]';
  // `pieces` (the caller's, also used for the rollups) is not changed: the brackets go into a copy.
  const parts = pieces ? pieces.slice() : compactEvidencePieces(evidence);
  parts[0] = `[${parts[0]}`;
  parts[parts.length - 1] += ']';
  return parts.join(',');
}

/** The elements of compactEvidenceJson's array, each entry's JSON text (a frozen entry's made once). */
export function compactEvidencePieces(evidence: ReadonlyArray<Evidence | EventEvidence>): string[] {
  const parts = new Array<string>(evidence.length);
  for (let i = 0; i < evidence.length; i++) {
    const rec = memoOf(evidence[i]);
    parts[i] = rec === undefined ? JSON.stringify(compactCopy(evidence[i])) : (rec.json ??= JSON.stringify(rec.compact));
  }
  return parts;
}

function cut(v: string | undefined): string | undefined {
  return v === undefined ? undefined : v.length > FIELD_MAX ? v.slice(0, FIELD_MAX) : v;
}

/**
 * The checks cleanEvent makes before it copies anything: cheap (no copy, no
 * parsing), for a backend that cleans the event later, off the caller's path.
 * Throws InvalidEntryError.
 */
export function checkEvent(e: LoggedDecision): void {
  if (!Number.isFinite(e.ts)) throw new InvalidEntryError('event ts must be a time in ms');
  if (typeof e.clientIp !== 'string') throw new InvalidEntryError('event clientIp must be a string');
  if (typeof e.stage !== 'string') throw new InvalidEntryError('event stage must be a string');
  if (typeof e.action !== 'string') throw new InvalidEntryError('event action must be a string');
  if (typeof e.rule !== 'string') throw new InvalidEntryError('event rule must be a string');
  if (e.rcpts != null && !Array.isArray(e.rcpts)) throw new InvalidEntryError('event rcpts must be an array');
  if (e.evidence != null && !Array.isArray(e.evidence)) throw new InvalidEntryError('event evidence must be an array');
}

/** A copy fit for storage; throws InvalidEntryError when a required field is missing. */
export function cleanEvent(e: LoggedDecision): DecisionEvent {
  const out = cleanFields(e) as DecisionEvent;
  out.evidence = compactEvidence(e.evidence ?? []);
  return out;
}

/**
 * The JSON text of cleanEvent(e), as a backend that stores events as text
 * keeps it: the evidence goes in as compactEvidenceJson's text, serialised
 * once per frozen evidence object rather than once per event.
 */
export function cleanEventJson(e: LoggedDecision, pieces?: string[]): string {
  const head = JSON.stringify(cleanFields(e));
  return `${head.slice(0, -1)},"evidence":${compactEvidenceJson(e.evidence ?? [], pieces)}}`;
}

/** cleanEvent's copy of everything but the evidence. */
function cleanFields(e: LoggedDecision): Omit<DecisionEvent, 'evidence'> {
  checkEvent(e);
  const out: Omit<DecisionEvent, 'evidence'> = {
    ts: Math.round(e.ts),
    clientIp: canonicalOrRaw(cut(e.clientIp) as string),
    rcpts: (e.rcpts ?? []).slice(0, RCPTS_MAX).map((r) => cut(r) as string),
    stage: e.stage,
    action: e.action,
    rule: cut(e.rule) as string,
  };
  if (e.sessionId !== undefined) out.sessionId = cut(e.sessionId);
  if (e.helo !== undefined) out.helo = cut(e.helo);
  if (e.from !== undefined) out.from = cut(e.from);
  if (e.code !== undefined) out.code = e.code;
  if (e.text !== undefined) out.text = cut(e.text);
  if (typeof e.score === 'number' && Number.isFinite(e.score)) out.score = e.score;
  const would = cleanWouldHave(e.wouldHave);
  if (would !== undefined) out.wouldHave = would;
  if (e.clientPtr !== undefined) out.clientPtr = cut(String(e.clientPtr));
  if (e.saslUser !== undefined) out.saslUser = cut(String(e.saslUser));
  if (typeof e.rcptCount === 'number' && Number.isFinite(e.rcptCount)) out.rcptCount = Math.max(0, Math.floor(e.rcptCount));
  return out;
}

/** Test-mode findings fit for storage: at most WOULD_HAVE_MAX, texts cut; undefined when there are none. */
function cleanWouldHave(w: EventWouldHave[] | undefined): EventWouldHave[] | undefined {
  if (!Array.isArray(w) || w.length === 0) return undefined;
  return w.slice(0, WOULD_HAVE_MAX).map((f) => {
    const out: EventWouldHave = { rule: cut(String(f.rule)) as string, action: String(f.action) };
    if (typeof f.code === 'number') out.code = f.code;
    if (f.text !== undefined) out.text = cut(String(f.text));
    return out;
  });
}

/** Clients repeat: their canonical text, remembered (the writer thread cleans every event). */
const canonical = new Lru<string, string>(10_000);

/** The canonical text of an IP (so queries match however it was written), or the text as given. */
export function canonicalOrRaw(ip: string): string {
  let c = canonical.get(ip);
  if (c === undefined) {
    const n = parseNetwork(ip);
    c = n && !ip.includes('/') ? formatNetwork(n).replace(/\/\d+$/, '') : ip;
    canonical.set(ip, c);
  }
  return c;
}

export function rcptDomains(rcpts: string[]): string[] {
  return [...new Set(rcpts.map(domainOf).filter((d): d is string => d !== undefined))];
}

export const DEFAULT_EVENT_LIMIT = 100;
export const MAX_EVENT_LIMIT = 10_000;

export function eventLimit(q: EventQuery): number {
  return Math.min(Math.max(1, Math.floor(q.limit ?? DEFAULT_EVENT_LIMIT)), MAX_EVENT_LIMIT);
}

/** Does the event match the query (for backends that filter in code)? */
export function eventMatches(e: DecisionEvent, q: EventQuery): boolean {
  return eventMatcher(q)(e);
}

/**
 * The query as a test of one event, its network and addresses read once
 * (for backends that filter in code, and for the SQLite conditions an index
 * cannot answer exactly). Throws InvalidEntryError on a malformed `cidr`.
 */
export function eventMatcher(q: EventQuery): (e: DecisionEvent) => boolean {
  const net = q.cidr === undefined ? undefined : parseNetwork(q.cidr.trim());
  if (q.cidr !== undefined && net === undefined) throw new InvalidEntryError(`not an IP network: ${JSON.stringify(q.cidr)}`);
  const from = q.from?.trim().toLowerCase();
  const rcpt = q.rcpt?.trim().toLowerCase();
  const domain = q.domain?.toLowerCase();
  return (e) => {
    if (q.ip !== undefined && e.clientIp !== q.ip) return false;
    if (q.rule !== undefined && e.rule !== q.rule) return false;
    if (q.action !== undefined && e.action !== q.action) return false;
    if (q.wouldHave === true && (e.wouldHave === undefined || e.wouldHave.length === 0)) return false;
    if (q.since !== undefined && e.ts < q.since) return false;
    if (q.until !== undefined && e.ts > q.until) return false;
    if (domain !== undefined && domainOf(e.from) !== domain && !rcptDomains(e.rcpts).includes(domain)) return false;
    if (from !== undefined && (e.from ?? '').toLowerCase() !== from) return false;
    if (rcpt !== undefined && !e.rcpts.some((r) => r.toLowerCase() === rcpt)) return false;
    if (net !== undefined) {
      const ip = parseNetwork(e.clientIp);
      if (ip === undefined || !networkContains(net, ip)) return false;
    }
    return true;
  };
}
