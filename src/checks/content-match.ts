// Matching content rules against one message: the part that may run long,
// kept free of anything but the message and the rules so the worker thread
// (content-worker.ts) can run it and be terminated mid-match.

import { decodeEncodedWords, bodyText, DEFAULT_MAX_TEXT_CHARS } from './mime-text.js';
import { messageHeader } from './message.js';

/** A rule as it crosses to the worker: plain data, no RegExp. */
export interface ContentRuleSpec {
  name: string;
  /** Lower-cased header name; absent for a body rule. */
  header?: string;
  source: string;
  flags: string;
}

export interface ContentLimits {
  /** Bytes of the raw message looked at (default 10 MiB). */
  maxMessageBytes?: number;
  /** Characters of decoded body text matched (default 1 MiB). */
  maxTextChars?: number;
  /** Header fields matched (default 1000). */
  maxHeaders?: number;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_HEADERS = 1000;

export interface ContentMatch {
  /** Index of the rule in the list given. */
  index: number;
  /** `header:<Name>` or `body`. */
  where: string;
  /** The matched text, cut to 200 characters. */
  matched: string;
}

export interface ContentMatchResult {
  match?: ContentMatch;
  /** Part of the message was not looked at (limits). */
  truncated: boolean;
}

const MATCHED_CHARS = 200;

/** Compiled regexes by `flags/source`, so a worker compiles each pattern once. */
export type RegexCache = Map<string, RegExp>;

function regexOf(rule: ContentRuleSpec, cache: RegexCache): RegExp {
  const key = `${rule.flags}/${rule.source}`;
  let re = cache.get(key);
  if (!re) {
    re = new RegExp(rule.source, rule.flags);
    cache.set(key, re);
  }
  return re;
}

/** The first rule, in order, whose pattern matches its header or the decoded body text. */
export function matchContent(message: Uint8Array, rules: ContentRuleSpec[], limits: ContentLimits = {}, cache: RegexCache = new Map()): ContentMatchResult {
  const maxBytes = limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const buf = Buffer.from(message.buffer, message.byteOffset, Math.min(message.byteLength, maxBytes));
  let truncated = message.byteLength > maxBytes;
  const header = messageHeader(buf, { maxFields: limits.maxHeaders ?? DEFAULT_MAX_HEADERS });
  truncated ||= header.truncated;
  const decoded = new Map<number, string>();
  let body: string | undefined;

  for (let index = 0; index < rules.length; index++) {
    const rule = rules[index];
    const re = regexOf(rule, cache);
    if (rule.header !== undefined) {
      for (let f = 0; f < header.fields.length; f++) {
        const field = header.fields[f];
        if (field.key !== rule.header) continue;
        let value = decoded.get(f);
        if (value === undefined) {
          value = decodeEncodedWords(field.value);
          decoded.set(f, value);
        }
        const m = re.exec(value);
        if (m) return { match: { index, where: `header:${field.name}`, matched: m[0].slice(0, MATCHED_CHARS) }, truncated };
      }
      continue;
    }
    if (body === undefined) {
      const t = bodyText(buf, { maxTextChars: limits.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS });
      body = t.text;
      truncated ||= t.truncated;
    }
    const m = re.exec(body);
    if (m) return { match: { index, where: 'body', matched: m[0].slice(0, MATCHED_CHARS) }, truncated };
  }
  return { truncated };
}
