// The config sections of the state store and what uses it: `store:` (backend,
// bans, never-ban, decision-log retention), `greylist:`, `ratelimits:` and
// `spamtraps:`. Kept apart from schema.ts, which includes them.

import { z } from 'zod';
import { networkSchema, parseListenAddress } from './address.js';

/** `null` (an empty YAML section) means "all defaults", as in the main schema. */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

const network = networkSchema;

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

/** host:port, [v6]:port: where a Redis Sentinel listens. */
const hostPort = z.string().refine((v) => parseListenAddress(v) !== undefined && !v.endsWith(':0'), {
  message: 'expected host:port (or [v6]:port)',
});

const redisUrl = z.string().regex(/^rediss?:\/\/[^\s]+$/, { message: 'expected redis://[:password@]host:port[/db] (or rediss://)' });

export const storeSchema = z
  .strictObject({
    /** sqlite: one file, one host. redis: several hosts sharing bans, greylist and rate limits. */
    backend: z.enum(['sqlite', 'redis']).default('sqlite'),
    /** SQLite file; null = <data_dir>/frontline.db. */
    path: z.string().min(1).nullable().default(null),
    redis: section(
      z.strictObject({
        url: redisUrl.default('redis://127.0.0.1:6379'),
        /** Key prefix, so several installations can share one Redis. */
        prefix: z.string().max(64).default('fl:'),
        /**
         * Redis Sentinel: the primary is found through these sentinels under `name`, and
         * followed when they fail over; `url` then gives only the password, database and TLS.
         */
        sentinel: z
          .strictObject({
            hosts: z.array(hostPort).min(1),
            name: z.string().min(1).max(128).default('mymaster'),
            /** The sentinels' own password (requirepass in sentinel.conf), if any. */
            password: z.string().min(1).optional(),
          })
          .optional(),
        /**
         * A ban or list change is acknowledged only once this many replicas hold it (Redis WAIT),
         * so a fail-over cannot lose it; 0 = acknowledged when the primary has it.
         */
        min_replicas: nonNegInt.max(16).default(0),
        /** How long a change waits for min_replicas before it is reported as not acknowledged (ms). */
        replica_wait_ms: posInt.max(60_000).default(1000),
      }),
    ),
    /** A decision that needs the store while it cannot answer: defer (4xx) or continue without it. */
    on_unavailable: z.enum(['defer', 'continue']).default('defer'),
    /** How often expired bans, list entries, greylist entries and buckets are purged and the decision log pruned. */
    purge_interval_s: posInt.default(300),
    bans: section(
      z.strictObject({
        /** First ban of an address lasts this long (s). */
        base_s: posInt.default(3600),
        /** Each further offence multiplies the length by this. */
        factor: z.number().min(1).default(2),
        /** Cap on a ban's length (s). */
        max_s: posInt.default(30 * 86400),
        /** ± this fraction of random spread, so bans made together do not expire together. */
        jitter: z.number().min(0).lt(1).default(0.1),
        /** The offence count starts again after this long without a ban (s). */
        forget_after_s: posInt.default(90 * 86400),
        /** The widest ban allowed, per family: a shorter prefix is refused, from every source (CLI, spamtraps, log watching). */
        min_prefix: section(
          z.strictObject({
            ipv4: z.number().int().min(8).max(32).default(16),
            ipv6: z.number().int().min(16).max(128).default(32),
          }),
        ),
      }),
    ),
    /** Never banned (also loopback, my_networks and the entries of the `allow` lists). */
    never_ban: z.array(network).default([]),
    events: section(
      z.strictObject({
        /** Decisions older than this are deleted (s); 0 = keep. */
        max_age_s: nonNegInt.default(30 * 86400),
        /** At most this many decisions are kept (the newest); 0 = no cap. */
        max_rows: nonNegInt.default(1_000_000),
        /** SQLite, Linux: the nice value (0–19) of the threads that write the decision log; 19 = yield the CPU to the answers. */
        writer_nice: z.number().int().min(0).max(19).default(19),
      }),
    ),
  })
  .superRefine((s, ctx) => {
    if (s.bans.max_s < s.bans.base_s) ctx.addIssue({ code: 'custom', path: ['bans', 'max_s'], message: `must be ≥ bans.base_s (${s.bans.base_s})` });
  });

export const greylistSchema = z.strictObject({
  /** Greylisting is opt-in: the default policy's greylist rule runs only when this is true. */
  enabled: z.boolean().default(false),
  /** A new (client, sender, recipient) is deferred this long (s). */
  delay_s: posInt.default(300),
  /** A retry must come within this long of the first attempt (s). */
  retry_window_s: posInt.default(2 * 86400),
  /** A triplet that passed is remembered this long after it was last seen (s). */
  pass_ttl_s: posInt.default(36 * 86400),
  /** A client (subnet or SPF domain) passes at once after this many triplets passed; 0 = never. */
  auto_allow_after: nonNegInt.default(5),
  /** The client's subnet in the key. */
  subnet: section(
    z.strictObject({
      v4: z.number().int().min(8).max(32).default(24),
      v6: z.number().int().min(16).max(128).default(64),
    }),
  ),
  /** When SPF passes, key on the SPF-authenticated domain instead of the subnet (a sender's whole pool counts as one). */
  key_on_spf: z.boolean().default(true),
  /** Greylist only clients without forward-confirmed reverse DNS (FCrDNS); others pass untouched. */
  only_untrusted: z.boolean().default(false),
});

export const RATE_KEYS = ['client', 'sender', 'sasl_user', 'rcpt_domain'] as const;

export const rateLimitSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected a name of letters, digits, _ . -' }),
  /** What is counted: per client IP, MAIL FROM address, SASL login, or recipient domain. */
  key: z.enum(RATE_KEYS),
  /** Burst: this many in a row… */
  capacity: posInt,
  /** …and this many again per this many seconds (token bucket: capacity / per_s per second). */
  per_s: z.number().positive(),
  /** defer: counts toward `ratelimit=listed`; log: only recorded in the evidence (watch a limit before enforcing it). */
  action: z.enum(['defer', 'log']).default('defer'),
});

export const rateLimitsSchema = z.preprocess(
  (v) => (v === null ? undefined : v),
  z
    .array(rateLimitSchema)
    .default([])
    .superRefine((limits, ctx) => {
      const seen = new Map<string, number>();
      limits.forEach((l, i) => {
        const first = seen.get(l.name);
        if (first !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rate limit name (also ratelimits[${first}])` });
        else seen.set(l.name, i);
      });
    }),
);

const trapAddress = z
  .string()
  .regex(/^[^\s@<>]+@[^\s@<>]+$/, { message: 'expected an e-mail address (local@domain)' })
  .transform((s) => s.toLowerCase());

export const spamtrapsSchema = z.preprocess((v) => (v === null ? undefined : v), z.array(trapAddress).default([]));

export const storeSection = section(storeSchema);
export const greylistSection = section(greylistSchema);

export type StoreSettings = z.output<typeof storeSchema>;
export type GreylistSettings = z.output<typeof greylistSchema>;
export type RateLimitSettings = z.output<typeof rateLimitSchema>;
