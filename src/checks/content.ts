// Header and body rules, as Postfix's header_checks and body_checks but with
// the policy's actions: a regular expression on a named header (RFC 2047
// decoded) or on the decoded text of the body, the first matching rule in
// order wins. Bad patterns are kept from stalling the gate twice over:
// shapes known to backtrack exponentially are refused when the rules are
// compiled, and matching runs in a worker thread with a deadline per message.

import type { Action, Envelope, Evidence } from '../core/types.js';
import type { ContentLimits, ContentRuleSpec } from './content-match.js';
import { ContentWorkerPool } from './content-pool.js';
import { timed } from './evidence.js';
import { backtrackingRisks } from './regex-safety.js';
import type { CheckContext } from './types.js';

/** A rule as written in the config. */
export interface ContentRule {
  name: string;
  /** Header to match (case-insensitive); every field of that name is tried. */
  header?: string;
  /** Match the decoded body text instead of a header. */
  body?: boolean;
  /** JavaScript regular expression source. */
  pattern: string;
  /** Any of `i`, `m`, `s`, `u`. */
  flags?: string;
  action: Action;
  /** Reply text for reject/defer, or the tag for `tag`. */
  text?: string;
}

export interface CompiledContentRule {
  name: string;
  /** Lower-cased header name, or undefined for a body rule. */
  header?: string;
  pattern: string;
  flags: string;
  action: Action;
  text?: string;
}

export interface ContentCheckOptions extends ContentLimits {
  rules: CompiledContentRule[];
  /** Deadline for matching one message, from when a worker starts on it (default 2000 ms). */
  timeoutMs?: number;
  /** The worker pool (default: one shared pool for the process). */
  pool?: ContentWorkerPool;
}

export const DEFAULT_CONTENT_TIMEOUT_MS = 2000;
const MAX_PATTERN_LENGTH = 4096;
const ACTIONS: readonly Action[] = ['accept', 'reject', 'defer', 'tag', 'tarpit', 'continue'];
const ALLOWED_FLAGS = /^[imsu]*$/;
const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Check rules and compile them. Every problem is reported (with the rule's
 * name and position), not only the first; rules with problems are left out.
 */
export function compileContentRules(rules: ContentRule[]): { rules: CompiledContentRule[]; errors: string[] } {
  const errors: string[] = [];
  const compiled: CompiledContentRule[] = [];
  const names = new Set<string>();
  rules.forEach((rule, i) => {
    const label = `content rule ${i + 1}${rule?.name ? ` "${rule.name}"` : ''}`;
    const problems: string[] = [];
    if (typeof rule?.name !== 'string' || rule.name.trim() === '') problems.push('needs a name');
    else if (names.has(rule.name)) problems.push('has the name of an earlier rule');
    const hasHeader = rule?.header !== undefined;
    if (hasHeader === (rule?.body === true)) problems.push('needs exactly one of `header: <name>` or `body: true`');
    if (rule?.body !== undefined && rule.body !== true) problems.push('has `body` other than true');
    if (hasHeader && (typeof rule.header !== 'string' || !HEADER_NAME.test(rule.header))) problems.push(`has an invalid header name ${JSON.stringify(rule.header)}`);
    if (!ACTIONS.includes(rule?.action)) problems.push(`has action ${JSON.stringify(rule?.action)}; expected one of ${ACTIONS.join(', ')}`);
    if (rule?.text !== undefined && typeof rule.text !== 'string') problems.push('has a text that is not a string');
    const flags = rule?.flags ?? '';
    if (typeof flags !== 'string' || !ALLOWED_FLAGS.test(flags)) problems.push(`has flags ${JSON.stringify(flags)}; allowed: i, m, s, u`);
    if (typeof rule?.pattern !== 'string' || rule.pattern === '') problems.push('needs a pattern');
    else if (rule.pattern.length > MAX_PATTERN_LENGTH) problems.push(`has a pattern longer than ${MAX_PATTERN_LENGTH} characters`);
    else if (typeof flags === 'string' && ALLOWED_FLAGS.test(flags)) {
      try {
        new RegExp(rule.pattern, flags);
        for (const risk of backtrackingRisks(rule.pattern, flags)) problems.push(`pattern ${JSON.stringify(rule.pattern)} is refused: ${risk}`);
      } catch (e) {
        problems.push(`has an invalid pattern: ${(e as Error).message}`);
      }
    }
    if (typeof rule?.name === 'string') names.add(rule.name);
    if (problems.length > 0) {
      errors.push(...problems.map((p) => `${label} ${p}`));
      return;
    }
    compiled.push({
      name: rule.name,
      ...(hasHeader ? { header: (rule.header as string).toLowerCase() } : {}),
      pattern: rule.pattern,
      flags,
      action: rule.action,
      ...(rule.text !== undefined ? { text: rule.text } : {}),
    });
  });
  return { rules: compiled, errors };
}

let sharedPool: ContentWorkerPool | undefined;

/** The process-wide pool checkContent uses unless given one. */
export function contentWorkerPool(): ContentWorkerPool {
  sharedPool ??= new ContentWorkerPool();
  return sharedPool;
}

/** Stop the shared pool's workers (shutdown, tests). */
export async function closeContentWorkers(): Promise<void> {
  const pool = sharedPool;
  sharedPool = undefined;
  await pool?.close();
}

function specOf(rule: CompiledContentRule): ContentRuleSpec {
  return { name: rule.name, ...(rule.header !== undefined ? { header: rule.header } : {}), source: rule.pattern, flags: rule.flags };
}

export function checkContent(env: Envelope, _ctx: CheckContext, opts: ContentCheckOptions): Promise<Evidence> {
  return timed('content', async () => {
    if (!env.message) return { result: 'none', detail: 'message not seen' };
    if (opts.rules.length === 0) return { result: 'nomatch', detail: 'no content rules configured', data: { rules: 0 } };
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONTENT_TIMEOUT_MS;
    const limits: ContentLimits = { maxMessageBytes: opts.maxMessageBytes, maxTextChars: opts.maxTextChars, maxHeaders: opts.maxHeaders };
    const pool = opts.pool ?? contentWorkerPool();
    const outcome = await pool.run(env.message, opts.rules.map(specOf), limits, timeoutMs);
    if (outcome.kind === 'timeout') {
      return { result: 'temperror', detail: `content rules timed out (no answer within ${timeoutMs} ms)`, data: { timeoutMs } };
    }
    if (outcome.kind === 'error') return { result: 'temperror', detail: outcome.error };
    const { match, truncated } = outcome.result;
    const note = truncated ? ' (message partly scanned: limits reached)' : '';
    if (!match) return { result: 'nomatch', detail: `no content rule matched (${opts.rules.length} rules)${note}`, data: { rules: opts.rules.length, truncated } };
    const rule = opts.rules[match.index];
    const data: Record<string, unknown> = { rule: rule.name, action: rule.action, where: match.where, matched: match.matched, truncated };
    if (rule.text !== undefined) data.text = rule.text;
    const where = match.where === 'body' ? 'the body' : match.where.slice('header:'.length);
    return { result: 'match', detail: `content rule "${rule.name}" matched ${where}: ${JSON.stringify(match.matched.slice(0, 80))}${note}`, data };
  });
}
