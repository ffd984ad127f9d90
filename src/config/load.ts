// Loads the YAML config, validates it, and reports every problem at once as
// `file:line:col: key.path: what was expected, got what`. Flags beat
// environment beat file; no file means the embedded defaults.

import { readFileSync } from 'node:fs';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, dnsServer, type Config } from './schema.js';
import { parseListenAddress } from './address.js';
import { readResolvConf } from '../dns/servers.js';
import { suggest } from '../policy/condition.js';
import { WEB_OFF } from '../report/web/config.js';

export type { Config } from './schema.js';

export class ConfigError extends Error {
  constructor(
    /** One line per problem, each naming file:line:col and the key. */
    public readonly problems: string[],
  ) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export interface ConfigOverrides {
  /** `--policy-listen`. */
  policyListen?: string;
  /** `--dns`, already split at commas. */
  dns?: string[];
  /** `--web-listen`: host:port or off. */
  webListen?: string;
}

export const ENV_POLICY_LISTEN = 'FRONTLINE_POLICY_LISTEN';
export const ENV_DNS = 'FRONTLINE_DNS';
export const ENV_WEB_LISTEN = 'FRONTLINE_WEB_LISTEN';

/**
 * Load and validate a config file (no path = embedded defaults), then apply
 * FRONTLINE_POLICY_LISTEN / FRONTLINE_DNS and the flags. Empty `dns.servers`
 * become the nameservers of /etc/resolv.conf. Throws ConfigError.
 */
export function loadConfig(path?: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  let text = '';
  if (path !== undefined) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new ConfigError([`${path}: cannot read: ${(e as Error).message}`]);
    }
  }
  const cfg = parseConfig(text, path ?? '(defaults)');
  applyOverrides(cfg, overrides, env);
  if (cfg.dns.servers.length === 0) cfg.dns.servers = systemDnsServers();
  return cfg;
}

/** Parse and validate config text; `file` only names it in errors. No overrides, no resolv.conf. */
export function parseConfig(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${Math.max(line, 1)}:${Math.max(col, 1)}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${at(e.pos[0])}: YAML syntax: ${firstLine(e.message)}`));
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new ConfigError([`${file}:1:1: YAML: ${(e as Error).message}`]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([`${file}:1:1: expected a mapping of keys (listen:, dns:, policy:, …) at the top level`]);
  }
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;

  const problems: Array<{ offset: number; text: string }> = [];
  for (const issue of result.error.issues) {
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(configSchema, path);
      for (const key of issue.keys) {
        const node = keyNode(doc, [...path, key]);
        const hint = known ? `${suggest(key, known)} (expected one of: ${known.join(', ')})` : '';
        problems.push({ offset: offsetOf(node, doc), text: `${formatPath([...path, key])}: unknown key${hint}` });
      }
      continue;
    }
    const node = nodeAt(doc, path);
    problems.push({ offset: offsetOf(node, doc), text: `${formatPath(path)}: ${describeIssue(issue, valueAt(raw, path))}` });
  }
  problems.sort((a, b) => a.offset - b.offset);
  throw new ConfigError(problems.map((p) => `${at(p.offset)}: ${p.text}`));
}

function applyOverrides(cfg: Config, overrides: ConfigOverrides, env: NodeJS.ProcessEnv): void {
  const problems: string[] = [];
  const listen = overrides.policyListen ?? env[ENV_POLICY_LISTEN];
  const listenSource = overrides.policyListen !== undefined ? '--policy-listen' : ENV_POLICY_LISTEN;
  if (listen !== undefined && listen !== '') {
    if (parseListenAddress(listen) === undefined) {
      problems.push(`${listenSource}: expected host:port (e.g. 127.0.0.1:10040 or [::1]:10040), got ${JSON.stringify(listen)}`);
    } else {
      cfg.listen.policy = listen;
    }
  }
  const web = overrides.webListen ?? env[ENV_WEB_LISTEN];
  if (web !== undefined && web !== '') {
    if (web !== WEB_OFF && parseListenAddress(web) === undefined) {
      problems.push(`${overrides.webListen !== undefined ? '--web-listen' : ENV_WEB_LISTEN}: expected host:port (e.g. 127.0.0.1:8025) or off, got ${JSON.stringify(web)}`);
    } else {
      cfg.web.listen = web;
    }
  }
  const envDns = env[ENV_DNS];
  const dns = overrides.dns ?? (envDns ? envDns.split(',') : undefined);
  const dnsSource = overrides.dns !== undefined ? '--dns' : ENV_DNS;
  if (dns !== undefined) {
    const servers = dns.map((s) => s.trim()).filter((s) => s !== '');
    for (const s of servers) {
      const r = dnsServer.safeParse(s);
      if (!r.success) problems.push(`${dnsSource}: ${r.error.issues[0].message}`);
    }
    if (servers.length > 0) cfg.dns.servers = servers;
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** `nameserver` lines of resolv.conf; 127.0.0.1 when there are none. */
export function systemDnsServers(path?: string): string[] {
  const servers = readResolvConf(path);
  return servers.length > 0 ? servers : ['127.0.0.1'];
}

// --- mapping issues back to the YAML -------------------------------------------------

type Segment = string | number;

function formatPath(path: Segment[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out === '' ? '(top level)' : out;
}

function resolveNode(doc: Document, n: unknown): unknown {
  return isAlias(n) ? n.resolve(doc) : n;
}

/** The deepest node along `path` (the parent map when a key is missing). */
function nodeAt(doc: Document, path: Segment[]): Node | undefined {
  let node = resolveNode(doc, doc.contents);
  let last = node;
  for (const seg of path) {
    let next: unknown;
    if (isMap(node)) {
      next = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg))?.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    next = resolveNode(doc, next);
    if (next === undefined || next === null) break;
    node = next;
    last = node;
  }
  return last as Node | undefined;
}

function keyNode(doc: Document, path: Segment[]): Node | undefined {
  const parent = nodeAt(doc, path.slice(0, -1));
  const key = path[path.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key));
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return parent;
}

function offsetOf(node: Node | undefined, doc: Document): number {
  return node?.range?.[0] ?? (doc.contents as Node | null)?.range?.[0] ?? 0;
}

function valueAt(raw: unknown, path: Segment[]): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping of keys',
  record: 'a mapping of keys',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const got = `got ${describeValue(value)}`;
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return `required (expected ${TYPE_WORDS[issue.expected] ?? issue.expected})`;
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}, ${got}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map(String).join('|')}, ${got}`;
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'string') return `expected a non-empty string, ${got}`;
      if (issue.origin === 'array') return `expected at least ${min} item(s)`;
      return `expected a number ${issue.inclusive ? '>=' : '>'} ${min}, ${got}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'string') return `expected at most ${max} characters`;
      if (issue.origin === 'array') return `expected at most ${max} item(s)`;
      return `expected a number ${issue.inclusive ? '<=' : '<'} ${max}, ${got}`;
    }
    case 'invalid_format':
    case 'custom':
      return issue.message.startsWith('expected') && value !== undefined && !/\bgot\b/.test(issue.message)
        ? `${issue.message}, ${got}`
        : issue.message;
    case 'invalid_key':
      return `bad key: ${issue.issues.map((i) => i.message).join('; ')}`;
    default:
      return issue.message;
  }
}

/** The keys an object schema at `path` accepts, for "unknown key" hints. */
function keysAt(schema: z.core.$ZodType, path: Segment[]): string[] | undefined {
  let s: z.core.$ZodType | undefined = unwrap(schema);
  for (const seg of path) {
    if (!s) return undefined;
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'object') s = (def.shape as Record<string, z.core.$ZodType>)[String(seg)];
    else if (def.type === 'array') s = def.element as z.core.$ZodType;
    else if (def.type === 'record') s = def.valueType as z.core.$ZodType;
    else return undefined;
    s = s ? unwrap(s) : undefined;
  }
  const def = s?._zod.def as unknown as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
}

function unwrap(s: z.core.$ZodType): z.core.$ZodType {
  for (;;) {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(def.type)) {
      s = def.innerType as z.core.$ZodType;
    } else if (def.type === 'pipe') {
      s = def.out as z.core.$ZodType;
    } else {
      return s;
    }
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}
