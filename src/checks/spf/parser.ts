// The SPF record grammar (RFC 7208 §4.5–§6, §7.1) as an AST shared by the
// evaluator and the SPF walker. The whole record is checked before anything
// is evaluated: any syntax error anywhere is a permerror (§4.6), even in a
// term evaluation would never reach.

import { SpfSyntaxError } from './errors.js';
import { type MacroString, parseDomainSpec, parseMacroString } from './macro.js';
import { parseIp4, parseIp6 } from './ip.js';

export { SpfSyntaxError } from './errors.js';

/** `+` pass, `-` fail, `~` softfail, `?` neutral; `+` when not written. */
export type Qualifier = '+' | '-' | '~' | '?';

export const QUALIFIER_RESULT = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' } as const;

interface TermBase {
  /** The term exactly as written in the record (`-ip4:192.0.2.0/24`). */
  text: string;
}

interface MechanismBase extends TermBase {
  qualifier: Qualifier;
}

/** `all`: always matches. */
export interface AllMechanism extends MechanismBase {
  type: 'all';
}

/** `include:domain-spec`: matches when check_host() of the target passes. */
export interface IncludeMechanism extends MechanismBase {
  type: 'include';
  domain: MacroString;
}

/** `a` / `mx` [":" domain-spec] [dual-cidr-length]: the addresses of the target (or of its MX hosts). */
export interface AddressMechanism extends MechanismBase {
  type: 'a' | 'mx';
  /** Absent: the current domain. */
  domain?: MacroString;
  /** Prefix length applied to A answers; 32 unless written. */
  cidr4: number;
  /** Prefix length applied to AAAA answers; 128 unless written. */
  cidr6: number;
}

/** `ptr` [":" domain-spec]: a validated PTR name of the client lies in the target. */
export interface PtrMechanism extends MechanismBase {
  type: 'ptr';
  domain?: MacroString;
}

/** `ip4:network[/len]` / `ip6:network[/len]`. */
export interface NetworkMechanism extends MechanismBase {
  type: 'ip4' | 'ip6';
  /** The address as written (validated: strict dotted quad, or RFC 4291 text). */
  address: string;
  /** Prefix length; 32 or 128 unless written. */
  prefix: number;
}

/** `exists:domain-spec`: the target has an A record. */
export interface ExistsMechanism extends MechanismBase {
  type: 'exists';
  domain: MacroString;
}

export type SpfMechanism = AllMechanism | IncludeMechanism | AddressMechanism | PtrMechanism | NetworkMechanism | ExistsMechanism;

/** `name=value`. `redirect` and `exp` have a domain-spec value; unknown modifiers a macro-string, kept and ignored. */
export interface SpfModifier extends TermBase {
  type: 'modifier';
  /** Lower-cased name. */
  name: string;
  value: MacroString;
}

export type SpfTerm = SpfMechanism | SpfModifier;

export interface SpfRecord {
  /** The record as published. */
  text: string;
  /** Every term in the order written: mechanisms and modifiers (including redirect and exp). */
  terms: SpfTerm[];
  /** The redirect= target (§6.1), used only when no mechanism matches. */
  redirect?: MacroString;
  /** The exp= target (§6.2), whose TXT explains a fail. */
  exp?: MacroString;
}

/** Does this TXT string claim to be an SPF record? `v=spf1` in any case, then a space or the end (§4.5). */
export function isSpfRecord(txt: string): boolean {
  return /^v=spf1(?: |$)/i.test(txt);
}

const MODIFIER = /^([A-Za-z][A-Za-z0-9._-]*)=(.*)$/s;
const MECHANISM = /^([+\-~?]?)([A-Za-z][A-Za-z0-9]*)(.*)$/s;
const DUAL_CIDR = /^(?::(.*?))?(?:\/([0-9]+))?(?:\/\/([0-9]+))?$/s;
const NETWORK = /^:([^/]*)(?:\/([0-9]+))?$/s;

/** Parse a whole record; throws SpfSyntaxError naming the first bad term. */
export function parseSpfRecord(text: string): SpfRecord {
  if (!isSpfRecord(text)) throw new SpfSyntaxError('record does not begin with "v=spf1"');
  const record: SpfRecord = { text, terms: [] };
  // Terms are separated by one or more SP; any other whitespace is part of a term, and wrong there.
  for (const word of text.slice('v=spf1'.length).split(' ')) {
    if (word === '') continue;
    const term = parseTerm(word);
    record.terms.push(term);
    if (term.type === 'modifier' && (term.name === 'redirect' || term.name === 'exp')) {
      if (record[term.name]) throw new SpfSyntaxError(`"${term.name}=" appears more than once`);
      record[term.name] = term.value;
    }
  }
  return record;
}

/** Parse one term (mechanism or modifier); throws SpfSyntaxError. */
export function parseTerm(word: string): SpfTerm {
  const mod = MODIFIER.exec(word);
  if (mod) {
    const name = mod[1].toLowerCase();
    const known = name === 'redirect' || name === 'exp';
    const value = known ? inTerm(word, () => parseDomainSpec(mod[2])) : inTerm(word, () => parseMacroString(mod[2]));
    return { type: 'modifier', text: word, name, value };
  }
  const mech = MECHANISM.exec(word);
  if (!mech) throw new SpfSyntaxError(`"${word}" is neither a mechanism nor a modifier`);
  const qualifier = (mech[1] || '+') as Qualifier;
  const name = mech[2].toLowerCase();
  const rest = mech[3];
  const base = { text: word, qualifier };
  switch (name) {
    case 'all':
      if (rest !== '') throw new SpfSyntaxError(`"${word}": all takes no argument`);
      return { ...base, type: 'all' };
    case 'include':
    case 'exists':
      if (!rest.startsWith(':')) throw new SpfSyntaxError(`"${word}": ${name} needs ":domain"`);
      return { ...base, type: name, domain: inTerm(word, () => parseDomainSpec(rest.slice(1))) };
    case 'a':
    case 'mx': {
      const m = DUAL_CIDR.exec(rest);
      if (!m) throw new SpfSyntaxError(`"${word}": expected ${name}[:domain][/len4][//len6]`);
      const domain = m[1] === undefined ? undefined : inTerm(word, () => parseDomainSpec(m[1]));
      return { ...base, type: name, domain, cidr4: cidr(word, m[2], 32), cidr6: cidr(word, m[3], 128) };
    }
    case 'ptr': {
      if (rest !== '' && !rest.startsWith(':')) throw new SpfSyntaxError(`"${word}": expected ptr[:domain]`);
      const domain = rest === '' ? undefined : inTerm(word, () => parseDomainSpec(rest.slice(1)));
      return { ...base, type: 'ptr', domain };
    }
    case 'ip4':
    case 'ip6': {
      const m = NETWORK.exec(rest);
      const max = name === 'ip4' ? 32 : 128;
      if (!m) throw new SpfSyntaxError(`"${word}": expected ${name}:address[/len]`);
      const ok = name === 'ip4' ? parseIp4(m[1]) : parseIp6(m[1]);
      if (!ok) throw new SpfSyntaxError(`"${word}": "${m[1]}" is not an ${name === 'ip4' ? 'IPv4' : 'IPv6'} address`);
      return { ...base, type: name, address: m[1], prefix: cidr(word, m[2], max) };
    }
    default:
      throw new SpfSyntaxError(`unknown mechanism "${mech[2]}" in "${word}"`);
  }
}

/** A prefix length: no leading zeros, within the family's size. */
function cidr(word: string, digits: string | undefined, max: number): number {
  if (digits === undefined) return max;
  const n = Number(digits);
  if (!/^(?:0|[1-9][0-9]*)$/.test(digits) || n > max) {
    throw new SpfSyntaxError(`"${word}": bad prefix length /${digits} (0–${max}, no leading zeros)`);
  }
  return n;
}

/** Run a sub-parser, prefixing its error with the term it came from. */
function inTerm<T>(word: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof SpfSyntaxError) throw new SpfSyntaxError(`"${word}": ${e.message}`);
    throw e;
  }
}

/** The record's mechanisms, in order (for walkers that skip modifiers). */
export function mechanismsOf(record: SpfRecord): SpfMechanism[] {
  return record.terms.filter((t): t is SpfMechanism => t.type !== 'modifier');
}
