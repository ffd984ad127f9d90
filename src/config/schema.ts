// The whole config file as a zod schema: every key, its default, what it
// accepts. Objects are strict (an unknown key is an error: a misspelt key
// silently ignored is a policy silently not applied). Sections may be left
// empty (`checks:` with everything commented out) and mean their defaults.

import { reportSchema } from '../report/config.js';
import os from 'node:os';
import { z } from 'zod';
import { STAGES } from '../core/types.js';
import { networkSchema, parseListenAddress } from './address.js';
import { parseServer } from '../dns/servers.js';
import { parseZoneSpec } from '../checks/dnsbl.js';
import { DomainList } from '../checks/lists.js';
import { readExactNetwork } from '../core/cidr.js';
import { ConditionError, parseCondition } from '../policy/condition.js';
import { templateErrors } from '../policy/template.js';
import { gateSchema } from '../gate/config.js';
import { greylistSection, rateLimitsSchema, spamtrapsSchema, storeSection } from './store-schema.js';
import { enforceSection } from './enforce-schema.js';
import { batvSchema } from './batv-schema.js';
import { saslSpreadSchema } from './outbound-schema.js';
import { milterSchema } from './milter-schema.js';
import { logwatchSchema } from '../intel/logwatch/config.js';
import { intelSchema } from '../intel/config.js';
import { webSchema } from '../report/web/config.js';
import { zoneSchema } from '../enforce/zone/config.js';

/** `null` (an empty YAML section) means "all defaults". */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

const listenAddress = z.string().refine((s) => parseListenAddress(s) !== undefined, {
  message: 'expected host:port (e.g. 127.0.0.1:10040 or [::1]:10040)',
});

/** The DNS client parses servers with the same function, so what loads is what runs. */
export const dnsServer = z.string().superRefine((s, ctx) => {
  try {
    parseServer(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

const network = networkSchema;

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

/** postscreen's syntax `zone[=filter][*weight]`, parsed by the DNSBL check's own parser. */
const zoneSpec = z.string().superRefine((s, ctx) => {
  try {
    parseZoneSpec(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `${(e as Error).message} (expected zone[=127.0.0.[2..11]][*weight])` });
  }
});

const HEADER_NAME_RE = /^[!-9;-~]+$/;
const headerName = z.string().regex(HEADER_NAME_RE, { message: 'expected a header field name (printable ASCII, no colon or space)' });

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const listSchema = z
  .strictObject({
    type: z.enum(['ip', 'domain']),
    /** What the list is matched against; default client for ip lists, sender for domain lists. */
    match: z.enum(['client', 'sender', 'helo', 'rcpt']).optional(),
    entries: z.array(z.string().min(1)).default([]),
    /** Files of entries, one per line, `#` comments. */
    files: z.array(z.string().min(1)).default([]),
  })
  .superRefine((list, ctx) => {
    list.entries.forEach((e, i) => {
      if (list.type === 'ip') {
        // Typed by a person: strict, host bits included (list files clear them, as published lists mean them).
        const r = readExactNetwork(e);
        if (!r.ok) ctx.addIssue({ code: 'custom', path: ['entries', i], message: `expected an IP address or CIDR (e.g. 192.0.2.0/24, 2001:db8::/32): ${r.why}` });
        return;
      }
      try {
        new DomainList().add(e);
      } catch {
        ctx.addIssue({ code: 'custom', path: ['entries', i], message: 'expected a domain (example.com) or a parent domain (.example.com)' });
      }
    });
  });

const dnsblSchema = z.strictObject({
  zones: z.array(zoneSpec).default([]),
  threshold: z.number().int().default(1),
  timeout_ms: posInt.default(1500),
  /** RFC 5782 health probe interval; 0 = no probes. */
  probe_interval_s: nonNegInt.default(600),
});
const dnswlSchema = z.strictObject({
  zones: z.array(zoneSpec).default([]),
  threshold: z.number().int().default(1),
  timeout_ms: posInt.default(1500),
  probe_interval_s: nonNegInt.default(600),
});

export const ACTIONS = ['accept', 'reject', 'defer', 'tag', 'tarpit', 'continue'] as const;

const STATUS_RE = /^[245]\.\d{1,3}\.\d{1,3}$/;

/** Parsed here only to report errors at load; the policy parses it again into its AST. */
const condition = z.unknown().superRefine((v, ctx) => {
  if (v === undefined) {
    ctx.addIssue({ code: 'custom', message: 'required: the condition of the rule' });
    return;
  }
  try {
    parseCondition(v);
  } catch (e) {
    if (!(e instanceof ConditionError)) throw e;
    ctx.addIssue({ code: 'custom', path: e.path, message: e.message });
  }
});

const template = z.string().superRefine((t, ctx) => {
  for (const message of templateErrors(t)) ctx.addIssue({ code: 'custom', message });
});

export const ruleSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, _ . -' }),
    stage: z.enum(STAGES).optional(),
    if: condition,
    action: z.enum(ACTIONS).optional(),
    code: z.number().int().min(200).max(599).optional(),
    status: z.string().regex(STATUS_RE, { message: 'expected an enhanced status code like 5.7.1' }).optional(),
    text: template.optional(),
    remedy: template.optional(),
    mode: z.enum(['enforce', 'test']).default('enforce'),
    score: z.number().optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.action === undefined && rule.score === undefined) {
      ctx.addIssue({ code: 'custom', path: ['action'], message: `required (one of ${ACTIONS.join('|')}) unless the rule has a score` });
    }
    if (rule.score !== undefined && rule.action !== undefined && rule.action !== 'continue') {
      ctx.addIssue({ code: 'custom', path: ['score'], message: 'a score rule adds to the score and continues; drop action or use action: continue' });
    }
    const cls = rule.code === undefined ? undefined : Math.floor(rule.code / 100);
    if (cls !== undefined) {
      if (rule.action === 'reject' && cls !== 5) ctx.addIssue({ code: 'custom', path: ['code'], message: 'a reject needs a 5xx code' });
      if ((rule.action === 'defer' || rule.action === 'tarpit') && cls !== 4) {
        ctx.addIssue({ code: 'custom', path: ['code'], message: `a ${rule.action} needs a 4xx code` });
      }
      if (rule.action !== 'reject' && rule.action !== 'defer' && rule.action !== 'tarpit') {
        ctx.addIssue({ code: 'custom', path: ['code'], message: `an ${rule.action ?? 'score'} rule sends no reply code` });
      }
    }
    if (rule.status !== undefined) {
      const want = cls ?? (rule.action === 'reject' ? 5 : rule.action === 'defer' || rule.action === 'tarpit' ? 4 : undefined);
      if (want !== undefined && Number(rule.status[0]) !== want) {
        ctx.addIssue({ code: 'custom', path: ['status'], message: `status class must match the reply code (${want}.x.x)` });
      }
    }
  });

export const configSchema = z.strictObject({
  listen: section(
    z.strictObject({
      policy: listenAddress.default('127.0.0.1:10040'),
      policy_socket: z.string().min(1).nullable().default(null),
    }),
  ),
  data_dir: z.string().min(1).default(defaultDataDir),
  /** Group of the data directory, its files and the policy socket (a name or gid; null = the process's own). Modes: 0750 / 0640 / 0660. */
  file_group: z.union([z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$|^\d+$/, { message: 'expected a group name or number' }), z.number().int().nonnegative()]).nullable().default(null),
  /** `frontline serve` processes (src/cli/cluster.ts): a number, or auto = one per CPU. */
  workers: z.union([posInt, z.literal('auto')], { message: 'expected a whole number >= 1 or "auto"' }).default(1),
  log: section(
    z.strictObject({
      level: logLevel.default('info'),
      file: z.string().min(1).nullable().default(null),
    }),
  ),
  dns: section(
    z.strictObject({
      servers: z.array(dnsServer).default([]),
      timeout_ms: posInt.default(2000),
      retries: nonNegInt.default(2),
      cache: section(
        z.strictObject({
          min_ttl: nonNegInt.default(5),
          max_ttl: nonNegInt.default(3600),
          negative_ttl: nonNegInt.default(60),
          max_entries: nonNegInt.default(100000),
        }),
      ),
    }),
  ),
  my_networks: z.array(network).default(['127.0.0.0/8', '::1/128']),
  lists: z.preprocess((v) => (v === null ? undefined : v), z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), listSchema).default({})),
  checks: section(
    z.strictObject({
      mx: section(z.strictObject({ max_names: posInt.default(10) })),
      fcrdns: section(z.strictObject({ max_names: posInt.default(10) })),
      dnsbl: section(dnsblSchema),
      dnswl: section(dnswlSchema),
    }),
  ),
  headers: section(
    z.strictObject({
      /** The authserv-id of Authentication-Results; null = this host's name. */
      authserv_id: z.string().min(1).nullable().default(null),
      authentication_results: z.boolean().default(true),
      /** Per-check result headers: check name → header name. */
      checks: z
        .record(z.string(), headerName)
        .default({ spf: 'X-Frontline-SPF', mx: 'X-Frontline-MX', fcrdns: 'X-Frontline-FCrDNS', dkim: 'X-Frontline-DKIM' }),
      /** Header a `tag` verdict adds, with the rule's text. */
      tag: headerName.default('X-Frontline-Tag'),
    }),
  ),
  postfix: section(
    z.strictObject({
      accept_reply: z.enum(['DUNNO', 'OK']).default('DUNNO'),
      on_fault: z.enum(['defer', 'dunno']).default('defer'),
      max_request_bytes: posInt.default(16384),
      idle_timeout_s: posInt.default(300),
    }),
  ),
  gate: section(gateSchema),
  /** The Sendmail milter frontend for Postfix smtpd_milters (docs/milter.md). */
  milter: section(milterSchema),
  store: storeSection,
  greylist: greylistSection,
  ratelimits: rateLimitsSchema,
  spamtraps: spamtrapsSchema,
  /** Log watching (docs/logwatch.md): bans from sshd, Postfix, Dovecot, web server logs. */
  logwatch: section(logwatchSchema),
  /** Large-sender whitelist, learned correspondents, imported lists (docs/spfwalk.md, correspondents.md, lists-import.md). */
  intel: intelSchema,
  /** Hacked accounts: how far each SASL user's mail spreads; a user over a limit is held (docs/outbound.md). */
  sasl_spread: section(saslSpreadSchema),
  /** BATV: signed envelope senders, bounces without our tag refused (docs/batv.md). */
  batv: section(batvSchema),
  /** Carrying bans out of frontline: firewall sets (docs/enforce.md). */
  enforce: enforceSection,
  /** frontline's own DNSBL and DNSWL zone (docs/enforce.md); off until zone.listen is set. */
  zone: section(zoneSchema),
  /** IP → AS number table for AS lists (`frontline list add NAME AS64496`; docs/store.md, "AS lists"). */
  asn: section(
    z.strictObject({
      /** An iptoasn.com TSV (ip2asn-combined.tsv, .gz too); null = no table, and AS lists match nothing. */
      table: z.string().min(1).nullable().default(null),
      /** How often the file's modification time is checked; a changed file is loaded again. */
      check_interval_s: posInt.default(300),
    }),
  ),
  /** The dashboard and /metrics (docs/dashboard.md, docs/metrics.md). */
  web: section(webSchema),
  /** The daily report, mailed (docs/report.md). */
  report: section(reportSchema),
  policy: section(
    z.strictObject({
      on_fault: z.enum(['defer', 'continue']).default('defer'),
      /**
       * Longest a decision may wait for evidence, ms: what is unfinished then counts as a fault
       * (451, or continue with on_fault: continue). Below Postfix's policy timeout; 0 = no deadline.
       */
      deadline_ms: nonNegInt.default(8000),
      /** Evidence shared between transactions (src/policy/evidence-cache.ts); 0 in either key turns it off. */
      evidence_cache: section(
        z.strictObject({
          ttl_s: nonNegInt.default(60),
          max_entries: nonNegInt.default(50000),
        }),
      ),
      /** Absent = the shipped default policy. */
      rules: z
        .array(ruleSchema)
        .optional()
        .superRefine((rules, ctx) => {
          const seen = new Map<string, number>();
          rules?.forEach((r, i) => {
            const first = seen.get(r.name);
            if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name (also rules[${first}])` });
            else seen.set(r.name, i);
          });
        }),
    }),
  ),
});

export type Config = z.output<typeof configSchema>;
export type RuleConfig = z.output<typeof ruleSchema>;
export type ListConfig = z.output<typeof listSchema>;

/** Where state lives when data_dir is not set: /var/lib/frontline as root (the systemd StateDirectory), else ./data. */
export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/frontline' : './data';
}

/** The authserv-id to use when the config leaves it null. */
export function defaultAuthservId(): string {
  return os.hostname();
}
