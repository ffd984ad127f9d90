// SPF macros (RFC 7208 §7): the grammar of macro-strings, domain-specs and
// explanation strings, and their expansion. Parsing is strict and happens
// before evaluation, so a bad macro anywhere in a record is a permerror even
// if evaluation would never reach it (§4.6).

import { SpfSyntaxError } from './errors.js';
import { type ClientIp, macroIp } from './ip.js';

/** Macro letters: `slodiphv` anywhere, `crt` only in explanation text (§7.2). */
export type MacroLetter = 's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'v' | 'c' | 'r' | 't';

const DOMAIN_LETTERS = new Set('slodiphv');
const EXPLANATION_LETTERS = new Set('slodiphvcrt');

export type MacroPart =
  /** Text copied as is. */
  | { kind: 'literal'; text: string }
  /** `%%` → `%`, `%_` → space, `%-` → `%20`. They count as macro-expand in the domain-end rule. */
  | { kind: 'escape'; text: '%' | ' ' | '%20' }
  /** `%{` letter [digits] [r] [delimiters] `}`. */
  | {
      kind: 'macro';
      letter: MacroLetter;
      /** Upper-case letter in the source: URL-escape the expansion (§7.3). */
      urlEscape: boolean;
      /** Keep this many right-hand parts (after reversal); absent = all. */
      keep?: number;
      reverse: boolean;
      /** Characters to split on; empty = `.`. */
      delimiters: string;
    };

/** A parsed macro-string; `text` is the source as written. */
export interface MacroString {
  text: string;
  parts: MacroPart[];
}

interface MacroGrammar {
  /** Explanation text (§6.2): spaces allowed, and the letters c, r, t. */
  explanation: boolean;
}

const MACRO_BODY = /^([a-z])([0-9]*)(r?)([.\-+,/_=]*)$/i;

/** Parse a macro-string (§7.1); throws SpfSyntaxError. */
export function parseMacroString(text: string, grammar: MacroGrammar = { explanation: false }): MacroString {
  const parts: MacroPart[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal) parts.push({ kind: 'literal', text: literal });
    literal = '';
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    const code = ch.charCodeAt(0);
    if (ch !== '%') {
      // macro-literal = %x21-24 / %x26-7E; explanation-string adds SP.
      const ok = (code >= 0x21 && code <= 0x7e) || (grammar.explanation && code === 0x20);
      if (!ok) throw new SpfSyntaxError(`character ${describeChar(ch)} not allowed in "${text}"`);
      literal += ch;
      continue;
    }
    const next = text[i + 1];
    if (next === '%' || next === '_' || next === '-') {
      flush();
      parts.push({ kind: 'escape', text: next === '%' ? '%' : next === '_' ? ' ' : '%20' });
      i++;
      continue;
    }
    if (next !== '{') throw new SpfSyntaxError(`"%" must be followed by "{", "%", "_" or "-" in "${text}"`);
    const close = text.indexOf('}', i + 2);
    if (close < 0) throw new SpfSyntaxError(`unterminated macro in "${text}"`);
    const body = text.slice(i + 2, close);
    const m = MACRO_BODY.exec(body);
    if (!m) throw new SpfSyntaxError(`bad macro "%{${body}}" in "${text}"`);
    const letter = m[1].toLowerCase();
    const allowed = grammar.explanation ? EXPLANATION_LETTERS : DOMAIN_LETTERS;
    if (!allowed.has(letter)) {
      const where = EXPLANATION_LETTERS.has(letter) ? ' (allowed only in explanation text)' : '';
      throw new SpfSyntaxError(`unknown macro letter "${m[1]}"${where} in "${text}"`);
    }
    let keep: number | undefined;
    if (m[2] !== '') {
      keep = Number(m[2]);
      if (keep === 0) throw new SpfSyntaxError(`macro "%{${body}}" keeps zero parts in "${text}"`);
    }
    flush();
    parts.push({
      kind: 'macro',
      letter: letter as MacroLetter,
      urlEscape: m[1] !== letter,
      keep,
      reverse: m[3] !== '',
      delimiters: m[4],
    });
    i = close;
  }
  flush();
  return { text, parts };
}

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
const TOPLABEL = /^(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9])$/i;

/**
 * Parse a domain-spec (§7.1): a non-empty macro-string whose end is a macro
 * or "." toplabel ["."]. Checked as written, never after expansion.
 */
export function parseDomainSpec(text: string): MacroString {
  if (text === '') throw new SpfSyntaxError('empty domain-spec');
  const ms = parseMacroString(text);
  const last = ms.parts[ms.parts.length - 1];
  if (last.kind === 'literal') {
    const tail = last.text.endsWith('.') ? last.text.slice(0, -1) : last.text;
    const dot = tail.lastIndexOf('.');
    const top = tail.slice(dot + 1);
    if (dot < 0 || !TOPLABEL.test(top)) {
      throw new SpfSyntaxError(`domain-spec "${text}" must end in a macro or a valid top-level label, not "${top}"`);
    }
  }
  return ms;
}

/** Parse the TXT text an exp= points at (explanation-string, §6.2). */
export function parseExplanation(text: string): MacroString {
  return parseMacroString(text, { explanation: true });
}

/** What the macro letters stand for during one evaluation. */
export interface MacroValues {
  /** s: the sender, `local@domain` (postmaster@… when there was no local-part). */
  sender: string;
  /** l */
  localPart: string;
  /** o */
  senderDomain: string;
  /** d: the domain whose record is being evaluated. */
  domain: string;
  /** i, c, v */
  ip: ClientIp;
  /** h */
  helo: string;
  /** r (explanation only) */
  receivingHost: string;
  /** t (explanation only), Unix milliseconds. */
  now: number;
  /** p: the validated name of the client (§7.3), looked up only when used. */
  validatedName(): Promise<string>;
}

function valueOf(letter: MacroLetter, v: MacroValues): string | Promise<string> {
  switch (letter) {
    case 's':
      return v.sender;
    case 'l':
      return v.localPart;
    case 'o':
      return v.senderDomain;
    case 'd':
      return v.domain;
    case 'i':
      return macroIp(v.ip);
    case 'p':
      return v.validatedName();
    case 'v':
      return v.ip.family === 4 ? 'in-addr' : 'ip6';
    case 'h':
      return v.helo;
    case 'c':
      return v.ip.text;
    case 'r':
      return v.receivingHost;
    case 't':
      return String(Math.floor(v.now / 1000));
  }
}

/** Split on the delimiters, optionally reverse, keep the right-hand parts, join with dots (§7.3). */
export function transform(value: string, part: { keep?: number; reverse: boolean; delimiters: string }): string {
  const delims = part.delimiters || '.';
  let pieces = value.split(new RegExp(`[${delims.replace(/[-\\\]^/]/g, '\\$&')}]`));
  if (part.reverse) pieces = pieces.reverse();
  if (part.keep !== undefined && part.keep < pieces.length) pieces = pieces.slice(pieces.length - part.keep);
  return pieces.join('.');
}

/** Escape every byte outside RFC 3986 unreserved (ALPHA DIGIT - . _ ~) as %XX. */
export function urlEscape(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Expand a macro-string into text. */
export async function expand(ms: MacroString, values: MacroValues): Promise<string> {
  let out = '';
  for (const part of ms.parts) {
    if (part.kind !== 'macro') {
      out += part.text;
      continue;
    }
    const transformed = transform(await valueOf(part.letter, values), part);
    out += part.urlEscape ? urlEscape(transformed) : transformed;
  }
  return out;
}

const MAX_NAME = 253;

/**
 * Expand a domain-spec into a target name: drop one trailing dot, and if
 * longer than 253 characters drop labels from the left until it fits (§7.3).
 */
export async function expandDomain(ms: MacroString, values: MacroValues): Promise<string> {
  let name = await expand(ms, values);
  if (name.endsWith('.')) name = name.slice(0, -1);
  while (name.length > MAX_NAME) {
    const dot = name.indexOf('.');
    if (dot < 0) break;
    name = name.slice(dot + 1);
  }
  return name;
}

/** Does the macro-string use the `p` letter (a PTR lookup)? */
export function usesPtr(ms: MacroString): boolean {
  return ms.parts.some((p) => p.kind === 'macro' && p.letter === 'p');
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return code >= 0x21 && code <= 0x7e ? `"${ch}"` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
