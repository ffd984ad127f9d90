// The `logwatch:` section of the config file (`logwatch: section(logwatchSchema)`
// in src/config/schema.ts); `resolveScenarios` merges the configured scenarios
// over the defaults. Durations are seconds (`_s`) or milliseconds (`_ms`), as
// everywhere in the config.

import { z } from 'zod';
import { networkSchema } from '../../config/address.js';
import { DEFAULT_SCENARIOS, type ScenarioSettings } from './defaults.js';
import { customPatternProblems } from './formats/custom.js';
import { BUILTIN_FORMATS, BUILTIN_KINDS, FORMAT_NAMES } from './formats/index.js';
import { matchesKind, type Scenario } from './scenarios.js';

/** An empty YAML key (`scenarios:` with everything commented out) means its default. */
function emptyIsDefault<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema);
}

const NAME = /^[A-Za-z0-9_-]+$/;
const name = z.string().regex(NAME, { message: 'expected a name of letters, digits, _ and -' });

const network = networkSchema;

const format = z.string().min(1).default('auto');
const sourceName = z.string().min(1).optional();

const fileSource = z.strictObject({
  type: z.literal('file'),
  paths: z.array(z.string().min(1)).min(1),
  format,
  name: sourceName,
});

const journalSource = z.strictObject({
  type: z.literal('journal'),
  /** `journalctl -u` filters (the trusted _SYSTEMD_UNIT field); empty = the whole journal. */
  units: emptyIsDefault(z.array(z.string().min(1)).default([])),
  format,
  /** The journalctl program (tests point this at a stand-in). */
  journalctl: z.string().min(1).default('journalctl'),
  name: sourceName,
});

const stdinSource = z.strictObject({ type: z.literal('stdin'), format, name: sourceName });

export const sourceSchema = z.discriminatedUnion('type', [fileSource, journalSource, stdinSource]);

const patternSchema = z
  .strictObject({
    name,
    regex: z.string().min(1),
    flags: z.string().optional(),
    program: z.string().min(1).optional(),
    cut_lines: z.boolean().default(false),
  })
  .superRefine((p, ctx) => {
    for (const problem of customPatternProblems(p)) {
      const [key, ...rest] = problem.split(': ');
      ctx.addIssue({ code: 'custom', path: [key === 'flags' ? 'flags' : 'regex'], message: rest.join(': ') || problem });
    }
  });

const scenarioSchema = z.strictObject({
  enabled: z.boolean().optional(),
  match: z.array(z.string().min(1)).min(1).optional(),
  count: z.number().int().min(1).max(10_000).optional(),
  window_s: z.number().positive().max(30 * 86400).optional(),
  leak_s: z.number().positive().max(86400).optional(),
  distinct: z.boolean().optional(),
  cooldown_s: z.number().nonnegative().max(30 * 86400).optional(),
  category: z.string().regex(/^[a-z0-9-]{1,40}$/, { message: 'expected a category of lower-case letters, digits and -' }).optional(),
});

export type ScenarioConfig = z.output<typeof scenarioSchema>;

export const logwatchSchema = z
  .strictObject({
    /** `frontline serve` watches logs when true. */
    enabled: z.boolean().default(false),
    /** Offsets and journal cursor; null = `<data_dir>/logwatch-state.json`. */
    state_file: z.string().min(1).nullable().default(null),
    poll_interval_ms: z.number().int().min(50).max(3_600_000).default(1000),
    max_line_bytes: z.number().int().min(256).max(1_048_576).default(4096),
    max_tracked: z.number().int().min(100).max(10_000_000).default(100_000),
    ipv6_prefix: z.number().int().min(32).max(128).default(128),
    /** Where a file without a saved offset is first read from. */
    start_at: z.enum(['end', 'start']).default('end'),
    ignore: emptyIsDefault(z.array(network).default(['127.0.0.0/8', '::1/128'])),
    sources: emptyIsDefault(z.array(sourceSchema).default([])),
    patterns: emptyIsDefault(z.array(patternSchema).default([])),
    scenarios: emptyIsDefault(z.record(name, emptyIsDefault(scenarioSchema.default({}))).default({})),
  })
  .superRefine((cfg, ctx) => {
    const patternNames = new Set<string>();
    cfg.patterns.forEach((p, i) => {
      if (patternNames.has(p.name) || p.name in BUILTIN_FORMATS || p.name === 'auto') {
        ctx.addIssue({ code: 'custom', path: ['patterns', i, 'name'], message: 'duplicate name (or the name of a built-in format)' });
      }
      patternNames.add(p.name);
    });
    cfg.sources.forEach((s, i) => {
      if (!(FORMAT_NAMES as readonly string[]).includes(s.format) && !patternNames.has(s.format)) {
        ctx.addIssue({
          code: 'custom',
          path: ['sources', i, 'format'],
          message: `unknown format ${JSON.stringify(s.format)} (expected ${FORMAT_NAMES.join(', ')} or the name of a pattern)`,
        });
      }
    });
    for (const problem of scenarioProblems(cfg.scenarios, [...patternNames])) ctx.addIssue({ code: 'custom', path: ['scenarios', ...problem.path], message: problem.message });
  });

export type LogwatchConfig = z.output<typeof logwatchSchema>;
export type SourceConfig = z.output<typeof sourceSchema>;
export type PatternConfig = z.output<typeof patternSchema>;

/** Every event kind the formats can produce, given the custom pattern names. */
export function knownKinds(patternNames: readonly string[]): string[] {
  return [...BUILTIN_KINDS, ...patternNames.map((n) => `custom.${n}`)];
}

function merged(name: string, override: ScenarioConfig): Partial<ScenarioSettings> {
  const base = DEFAULT_SCENARIOS[name];
  const out: Partial<ScenarioSettings> = { ...base };
  for (const [k, v] of Object.entries(override)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function scenarioProblems(scenarios: Record<string, ScenarioConfig>, patternNames: string[]): Array<{ path: Array<string | number>; message: string }> {
  const kinds = knownKinds(patternNames);
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  for (const [name, override] of Object.entries(scenarios)) {
    const s = merged(name, override);
    if (s.enabled === false) continue;
    const isNew = DEFAULT_SCENARIOS[name] === undefined;
    for (const key of ['match', 'count', 'category'] as const) {
      if (isNew && s[key] === undefined) problems.push({ path: [name, key], message: `required for a new scenario (not one of the defaults: ${Object.keys(DEFAULT_SCENARIOS).join(', ')})` });
    }
    if (isNew && s.window_s === undefined && s.leak_s === undefined) problems.push({ path: [name, 'window_s'], message: 'required for a new scenario (or leak_s for a leaky bucket)' });
    s.match?.forEach((m, i) => {
      if (!kinds.some((k) => matchesKind([m], k))) {
        problems.push({ path: [name, 'match', i], message: `matches no event kind (known: ${kinds.join(', ')}; a trailing * matches a prefix)` });
      }
    });
  }
  return problems;
}

/** The scenarios in force: defaults, overridden key by key, plus new ones; disabled ones left out. */
export function resolveScenarios(scenarios: Record<string, ScenarioConfig> = {}): Scenario[] {
  const names = [...new Set([...Object.keys(DEFAULT_SCENARIOS), ...Object.keys(scenarios)])];
  const out: Scenario[] = [];
  for (const name of names) {
    const s = merged(name, scenarios[name] ?? {});
    if (s.enabled === false || s.match === undefined || s.count === undefined || s.category === undefined) continue;
    out.push({
      name,
      match: s.match,
      count: s.count,
      windowMs: (s.window_s ?? 0) * 1000,
      leakMs: s.leak_s === undefined ? undefined : s.leak_s * 1000,
      distinct: s.distinct ?? false,
      cooldownMs: (s.cooldown_s ?? 600) * 1000,
      category: s.category,
    });
  }
  return out;
}

/** A valid config with every default (for callers that have none). */
export function defaultLogwatchConfig(): LogwatchConfig {
  return logwatchSchema.parse({});
}
