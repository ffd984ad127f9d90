// Rate limits: token buckets in the store (atomic there, so several hosts on
// one Redis share one budget), keyed by client IP, sender, SASL user or
// recipient domain.
//
// Two checks: `ratelimit_message` takes one token per message from the
// client, sender and SASL-user buckets (it is memoised per transaction), and
// `ratelimit` — what rules name — takes one token per recipient from the
// recipient-domain buckets and adds the message's result. `listed` when a
// limit with action `defer` is over; limits with action `log` are counted
// and reported in the evidence but never make it listed.

import type { Envelope, Evidence } from '../core/types.js';
import type { RateResult, Store } from '../store/types.js';
import { domainOf, timed } from './evidence.js';
import { NO_STORE, storeFault, type OnUnavailable } from './store-fault.js';
import type { CheckContext } from './types.js';

export type RateKey = 'client' | 'sender' | 'sasl_user' | 'rcpt_domain';

export interface RateLimit {
  name: string;
  key: RateKey;
  /** Burst size. */
  capacity: number;
  /** `capacity` tokens come back over this many seconds. */
  perSeconds: number;
  action: 'defer' | 'log';
}

export interface RateLimitCheckOptions {
  limits: RateLimit[];
  onUnavailable: OnUnavailable;
}

/** The value a limit counts for this envelope, or undefined when it does not apply (no SASL login, null sender…). */
export function rateKeyValue(key: RateKey, env: Envelope): string | undefined {
  switch (key) {
    case 'client':
      return env.clientIp;
    case 'sender':
      return env.from ? env.from.toLowerCase() : undefined;
    case 'sasl_user':
      return env.saslUser || undefined;
    case 'rcpt_domain':
      return domainOf(env.rcpts[env.rcpts.length - 1]);
  }
}

interface Taken {
  limit: RateLimit;
  value: string;
  r: RateResult;
}

async function take(store: Store, env: Envelope, limits: RateLimit[]): Promise<Taken[]> {
  const jobs: Array<Promise<Taken>> = [];
  for (const limit of limits) {
    const value = rateKeyValue(limit.key, env);
    if (value === undefined) continue;
    const req = { capacity: limit.capacity, refillPerSecond: limit.capacity / limit.perSeconds };
    jobs.push(store.rateTake(`rl:${limit.name}:${value}`, req).then((r) => ({ limit, value, r })));
  }
  return Promise.all(jobs);
}

/** Evidence from the buckets taken (merged with the message's unlisted result, for `ratelimit`). */
function verdictOf(taken: Taken[], earlier?: Evidence): Omit<Evidence, 'check' | 'ms'> {
  const over = taken.filter((t) => !t.r.allowed);
  const enforced = over.filter((t) => t.limit.action === 'defer');
  const logged = over.filter((t) => t.limit.action === 'log').map((t) => t.limit.name);
  const prev = earlier?.data ?? {};
  const prevOver = Array.isArray(prev.over) ? (prev.over as string[]) : [];
  const prevLogged = Array.isArray(prev.logged) ? (prev.logged as string[]) : [];
  const data: Record<string, unknown> = {
    over: [...prevOver, ...enforced.map((t) => t.limit.name)],
    logged: [...prevLogged, ...logged],
    counted: [...(Array.isArray(prev.counted) ? (prev.counted as string[]) : []), ...taken.map((t) => t.limit.name)],
  };
  const first = enforced[0];
  if (first) {
    const retry = Math.max(1, Math.ceil(Math.max(...enforced.map((t) => t.r.retryAfterSeconds))));
    Object.assign(data, { limit: first.limit.name, key: `${first.limit.key} ${first.value}`, retryAfterSeconds: retry });
    const names = enforced.map((t) => `${t.limit.name} (${t.limit.key} ${t.value}: ${t.limit.capacity} per ${t.limit.perSeconds} s)`);
    return { result: 'listed', detail: `over rate limit ${names.join(', ')}; next token in ${retry} s`, data };
  }
  const counted = data.counted as string[];
  if (counted.length === 0) return { result: 'unlisted', detail: 'no rate limit applies', data };
  const note = (data.logged as string[]).length > 0 ? `; over (log only): ${(data.logged as string[]).join(', ')}` : '';
  return { result: 'unlisted', detail: `within rate limits ${counted.join(', ')}${note}`, data };
}

/** One token per message from the client, sender and SASL-user limits. */
export function checkRateLimitMessage(env: Envelope, ctx: CheckContext, opts: RateLimitCheckOptions): Promise<Evidence> {
  return timed('ratelimit_message', async () => {
    if (!ctx.store) return NO_STORE;
    const limits = opts.limits.filter((l) => l.key !== 'rcpt_domain');
    try {
      return verdictOf(await take(ctx.store, env, limits));
    } catch (e) {
      return storeFault(e, opts.onUnavailable, 'rate limiting');
    }
  });
}

/** One token per recipient from the recipient-domain limits, merged with `ratelimit_message`. */
export function checkRateLimit(env: Envelope, ctx: CheckContext, opts: RateLimitCheckOptions): Promise<Evidence> {
  return timed('ratelimit', async () => {
    if (!ctx.store) return NO_STORE;
    const message = await ctx.evidence('ratelimit_message');
    // Over per message (the message is deferred anyway: spend no recipient tokens), or a fault: that is the answer.
    if (message.result !== 'unlisted') return { result: message.result, detail: message.detail, data: message.data };
    const limits = opts.limits.filter((l) => l.key === 'rcpt_domain');
    try {
      return verdictOf(await take(ctx.store, env, limits), message);
    } catch (e) {
      return storeFault(e, opts.onUnavailable, 'rate limiting');
    }
  });
}
