// The condition language of rules, parsed to an AST once at load.
//
//   leaf:  spf=pass   spf!=pass   spf=fail|softfail   helo.fqdn=false
//          dnsbl.score>=3   list:deny=listed   score>=5   auth   my_networks
//          true   false
//   node:  {any: [...]}   {all: [...]}   {not: <cond>}   [a, b] (= all)
//
// Parse errors carry the path inside the condition so the config loader can
// point at the YAML line of the offending leaf.

import { CHECKS, LIST_NAME_RE, LIST_PREFIX, RESULT_WORDS } from './catalog.js';

export type CompareOp = '=' | '!=' | '>=' | '<=' | '>' | '<';
export type FieldValue = string | number | boolean;

export type Condition =
  | { kind: 'const'; value: boolean; text: string }
  /** `check=word|word` / `check!=word`; `check` may be `list:NAME`. */
  | { kind: 'result'; check: string; negate: boolean; results: string[]; text: string }
  /** `check.field OP value`: compares a field of the evidence's `data`. */
  | { kind: 'field'; check: string; field: string; op: CompareOp; value: FieldValue; text: string }
  /** `score OP n`: the sum of the score rules walked so far. */
  | { kind: 'score'; op: CompareOp; value: number; text: string }
  | { kind: 'any' | 'all'; items: Condition[] }
  | { kind: 'not'; item: Condition };

export type ConditionPath = Array<string | number>;

export class ConditionError extends Error {
  constructor(
    message: string,
    /** Where in the condition (relative to the rule's `if`) the problem is. */
    public readonly path: ConditionPath,
  ) {
    super(message);
    this.name = 'ConditionError';
  }
}

/** Bare leaves that stand for a check result. */
const BARE: Record<string, { check: string; result: string }> = {
  auth: { check: 'auth', result: 'pass' },
  my_networks: { check: 'my_networks', result: 'match' },
};

const LEAF_RE = /^([A-Za-z_][A-Za-z0-9_]*(?::[^\s=!<>.]*)?)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*(!=|>=|<=|=|>|<)\s*(.*)$/;
const NUMBER_RE = /^-?\d+(?:\.\d+)?$/;

export function parseCondition(raw: unknown): Condition {
  return parseNode(raw, []);
}

function parseNode(raw: unknown, path: ConditionPath): Condition {
  if (typeof raw === 'boolean') return { kind: 'const', value: raw, text: String(raw) };
  if (typeof raw === 'string') return parseLeaf(raw, path);
  if (Array.isArray(raw)) return { kind: 'all', items: parseList(raw, path) };
  if (raw !== null && typeof raw === 'object') {
    const keys = Object.keys(raw);
    if (keys.length !== 1 || !['any', 'all', 'not'].includes(keys[0])) {
      const bad = keys.find((k) => !['any', 'all', 'not'].includes(k));
      throw new ConditionError(
        bad !== undefined
          ? `unknown operator "${bad}" (expected any, all or not)`
          : 'expected exactly one of any, all, not',
        bad !== undefined ? [...path, bad] : path,
      );
    }
    const op = keys[0] as 'any' | 'all' | 'not';
    const inner = (raw as Record<string, unknown>)[op];
    if (op === 'not') return { kind: 'not', item: parseNode(inner, [...path, op]) };
    if (!Array.isArray(inner)) throw new ConditionError(`${op}: expected a list of conditions`, [...path, op]);
    return { kind: op, items: parseList(inner, [...path, op]) };
  }
  throw new ConditionError(`expected a condition (string, list, or {any|all|not}), got ${describe(raw)}`, path);
}

function parseList(items: unknown[], path: ConditionPath): Condition[] {
  if (items.length === 0) throw new ConditionError('expected a non-empty list of conditions', path);
  return items.map((c, i) => parseNode(c, [...path, i]));
}

function parseLeaf(rawText: string, path: ConditionPath): Condition {
  const text = rawText.trim();
  if (text === 'true' || text === 'false') return { kind: 'const', value: text === 'true', text };
  const bare = BARE[text];
  if (bare) return { kind: 'result', check: bare.check, negate: false, results: [bare.result], text };
  const m = LEAF_RE.exec(text);
  if (!m) {
    throw new ConditionError(
      `cannot parse condition "${text}" (expected e.g. spf=pass, helo.fqdn=false, score>=5, list:NAME=listed, auth)`,
      path,
    );
  }
  const [, lhs, field, op, rhsRaw] = m as unknown as [string, string, string | undefined, CompareOp, string];
  const rhs = rhsRaw.trim();
  if (rhs === '') throw new ConditionError(`"${text}": missing value after ${op}`, path);

  if (lhs === 'score' && field === undefined) {
    if (!NUMBER_RE.test(rhs)) throw new ConditionError(`"${text}": score compares with a number, got "${rhs}"`, path);
    return { kind: 'score', op, value: Number(rhs), text };
  }

  const check = lhs;
  if (check.startsWith(LIST_PREFIX)) {
    const name = check.slice(LIST_PREFIX.length);
    if (!LIST_NAME_RE.test(name)) throw new ConditionError(`"${text}": bad list name "${name}"`, path);
  } else if (!(check in CHECKS)) {
    throw new ConditionError(
      `"${text}": unknown check "${check}"${suggest(check, Object.keys(CHECKS))} (known: ${Object.keys(CHECKS).join(', ')}, list:NAME, score)`,
      path,
    );
  }

  if (field !== undefined) {
    const value: FieldValue = NUMBER_RE.test(rhs) ? Number(rhs) : rhs === 'true' ? true : rhs === 'false' ? false : rhs;
    if (op !== '=' && op !== '!=' && typeof value !== 'number') {
      throw new ConditionError(`"${text}": ${op} compares with a number, got "${rhs}"`, path);
    }
    return { kind: 'field', check, field, op, value, text };
  }

  if (op !== '=' && op !== '!=') {
    throw new ConditionError(`"${text}": a result is compared with = or !=; use ${check}.FIELD${op}N for numbers`, path);
  }
  const results = rhs.split('|').map((w) => w.trim());
  for (const w of results) {
    if (!(RESULT_WORDS as readonly string[]).includes(w)) {
      throw new ConditionError(
        `"${text}": unknown result "${w}"${suggest(w, RESULT_WORDS)} (expected one of ${RESULT_WORDS.join('|')})`,
        path,
      );
    }
  }
  return { kind: 'result', check, negate: op === '!=', results, text };
}

/** Every check name a condition mentions (lists as `list:NAME`). */
export function checksOf(c: Condition): string[] {
  const out = new Set<string>();
  const walk = (n: Condition): void => {
    if (n.kind === 'result' || n.kind === 'field') out.add(n.check);
    else if (n.kind === 'any' || n.kind === 'all') n.items.forEach(walk);
    else if (n.kind === 'not') walk(n.item);
  };
  walk(c);
  return [...out];
}

/** Condition back to text, for logs. */
export function conditionText(c: Condition): string {
  switch (c.kind) {
    case 'const':
    case 'result':
    case 'field':
    case 'score':
      return c.text;
    case 'not':
      return `not(${conditionText(c.item)})`;
    default:
      return `${c.kind}(${c.items.map(conditionText).join(', ')})`;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/** ` (did you mean "x"?)` for a near miss, else ''. */
export function suggest(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}
