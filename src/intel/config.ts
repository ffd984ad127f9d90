// The `intel:` section of the config: the large-sender whitelist walked from
// SPF, learning correspondents, and imported lists. Strict like the rest of
// the config (an unknown key is an error); an empty section means defaults.

import { z } from 'zod';
import { isValidHostname } from '../checks/hostname.js';
import { DEFAULT_SENDER_DOMAINS } from './spfwalk/default-senders.js';
import { DEFAULT_FREE_MAIL } from './correspondents/free-mail.js';
import { DEFAULT_CORRESPONDENT_TTL_S } from './correspondents/learn.js';
import type { ImportSource } from './lists-import/import.js';
import { parseZoneSpec } from '../checks/dnsbl.js';
import { isIP } from 'node:net';

/** `null` (an empty YAML section) means "all defaults". */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

const DAY = 86400;
const posInt = z.number().int().positive();

/** The store's list-name rule. */
const listName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { message: "expected a list name: letters, digits, '_', '.', '-' (at most 64)" });

const domain = z
  .string()
  .refine((s) => isValidHostname(s) && s.includes('.'), { message: 'expected a domain name (e.g. example.com)' })
  .transform((s) => s.replace(/\.$/, '').toLowerCase());

/** A free-mail entry: a domain, or `label.*` for that label under any public suffix. */
const freeMailEntry = z.string().refine((s) => (s.endsWith('.*') ? /^[a-z0-9-]+\.\*$/i.test(s) : isValidHostname(s) && s.includes('.')), {
  message: 'expected a domain (gmail.com) or label.* (yahoo.*)',
});

const spfWhitelistSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** The list the walked networks go into. */
  list: listName.default('spf-walked'),
  /** Domains whose SPF is walked; default: the shipped list of large providers (src/intel/spfwalk/default-senders.ts). */
  domains: z.array(domain).default(() => [...DEFAULT_SENDER_DOMAINS]),
  /** Added to `domains` (keeps the shipped defaults while adding your own). */
  extra_domains: z.array(domain).default([]),
  /** Seconds between walks; entries expire after twice this. */
  interval_s: posInt.min(60).default(DAY),
  max_lookups: posInt.default(50),
  concurrency: posInt.max(256).default(16),
});

const correspondentsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** The list the correspondents' walked networks go into. */
  list: listName.default('correspondents'),
  /** Seconds a correspondent is remembered after the last message to it. */
  ttl_s: posInt.default(DEFAULT_CORRESPONDENT_TTL_S),
  /** Messages before a correspondent counts (for the check and the walk). */
  min_count: posInt.default(1),
  /** Learned per address, not per domain; replaces the shipped list. */
  free_mail: z.array(freeMailEntry).default(() => [...DEFAULT_FREE_MAIL]),
  /** Our own domains: never learned. */
  ignore_domains: z.array(domain).default([]),
  /** From the mail log: count only mail received from SASL-authenticated clients. */
  require_auth: z.boolean().default(true),
  /** From the mail log: also count locally submitted mail (Postfix pickup). */
  include_local: z.boolean().default(false),
  /** Seconds between walks of the learned domains' SPF. */
  walk_interval_s: posInt.min(60).default(DAY),
  /** Correspondents kept at most (least recently seen forgotten first). */
  max_entries: posInt.default(100_000),
});

const importSchema = z
  .strictObject({
    name: listName,
    url: z
      .string()
      .refine((s) => /^https?:\/\/[^\s/]+/i.test(s), { message: 'expected an http:// or https:// URL' })
      .optional(),
    file: z.string().min(1).optional(),
    interval_s: posInt.min(60).default(DAY),
    /** Entries expire this long after the fetch that wrote them; default 3 × interval_s. */
    expire_s: posInt.optional(),
    /** Hold back a copy smaller than this fraction of the last good one. */
    max_shrink: z.number().min(0).max(1).default(0.5),
    /** Hold back a copy larger than this multiple of the last good one. */
    max_grow: z.number().min(1).default(3),
    /** Seconds to wait for a URL. */
    timeout_s: posInt.default(30),
  })
  .refine((i) => (i.url === undefined) !== (i.file === undefined), { message: 'give exactly one of url or file' });

/** postscreen's `zone[=filter][*weight]`, as checks.dnsbl.zones. */
const zoneSpec = z.string().superRefine((s, ctx) => {
  try {
    parseZoneSpec(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

/** Our own outgoing addresses against the DNSBLs, on a schedule (docs/outbound.md). */
const selfCheckSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** The addresses our mail leaves from (IPv4 or IPv6). */
    addresses: z
      .array(z.string().refine((s) => isIP(s) !== 0, { message: 'expected an IP address' }))
      .max(64)
      .default([]),
    /** Zones asked; null = checks.dnsbl.zones. */
    zones: z.array(zoneSpec).max(64).nullable().default(null),
    /** Seconds between checks. */
    interval_s: posInt.min(60).default(3600),
    /** Per-zone timeout, ms. */
    timeout_ms: posInt.max(30_000).default(3000),
  })
  .refine((c) => !c.enabled || c.addresses.length > 0, { message: 'intel.self_check.enabled needs the addresses to check', path: ['addresses'] });

export const intelSchema = section(
  z
    .strictObject({
      spf_whitelist: section(spfWhitelistSchema),
      correspondents: section(correspondentsSchema),
      imports: z.preprocess((v) => (v === null ? undefined : v), z.array(importSchema).default([])),
      self_check: section(selfCheckSchema),
    })
    .superRefine((cfg, ctx) => {
      const seen = new Map<string, string>();
      const claim = (name: string, who: string, path: (string | number)[]) => {
        const had = seen.get(name);
        if (had) ctx.addIssue({ code: 'custom', path, message: `list "${name}" is already written by ${had}` });
        else seen.set(name, who);
      };
      if (cfg.spf_whitelist.enabled) claim(cfg.spf_whitelist.list, 'spf_whitelist', ['spf_whitelist', 'list']);
      if (cfg.correspondents.enabled) claim(cfg.correspondents.list, 'correspondents', ['correspondents', 'list']);
      cfg.imports.forEach((imp, i) => claim(imp.name, `imports[${i}]`, ['imports', i, 'name']));
    }),
);

export type IntelConfig = z.output<typeof intelSchema>;

/** The domains the whitelist walks: `domains` plus `extra_domains`, once each. */
export function whitelistDomains(cfg: IntelConfig): string[] {
  return [...new Set([...cfg.spf_whitelist.domains, ...cfg.spf_whitelist.extra_domains])];
}

/** The import sources in the shape runImportOnce takes. */
export function importSources(cfg: IntelConfig): ImportSource[] {
  return cfg.imports.map((i) => ({
    name: i.name,
    location: i.url !== undefined ? { url: i.url } : { file: i.file! },
    intervalS: i.interval_s,
    expireS: i.expire_s,
    maxShrink: i.max_shrink,
    maxGrow: i.max_grow,
    timeoutS: i.timeout_s,
  }));
}
