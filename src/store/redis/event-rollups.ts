// The decision log's rollups on Redis (counters defined in ../event-rollups.ts).
//
//   <p>roll:<dim>:<hour>   hash   "<key>\x1f<action>" → n  (dim minute: "<minute>\x1f<key>\x1f<action>")
//   <p>roll:hours          zset   "<dim>:<hour>" scored by the hour (retention)
//
// One hash per dimension and hour: a week is 168 hashes per dimension, read
// in one pipeline. The counts of a batch of events go in one script call,
// sent beside the batch (an event is counted when its batch is sent; a
// failed send loses the batch's events and their counts alike). Each hash
// also carries a Redis TTL (ROLLUP_TTL_MS) in case retention never runs.

import type { Redis } from 'ioredis';
import { bucketOf, HOUR_MS, topRollupRows, type RollupIncrement, type RollupQuery, type RollupRow } from '../event-rollups.js';

/** Redis forgets a rollup hash this long after it was last counted into (32 days). */
export const ROLLUP_TTL_MS = 32 * 86_400_000;

const SEP = '\x1f';

/**
 * Add counts. KEYS[1]: the hours zset. ARGV[1]: the hashes' key prefix
 * (`<p>roll:`), ARGV[2]: TTL in ms, then quadruples (dim, hour, field, n).
 */
export const ROLLUP_ADD_LUA = `
local seen = {}
for i = 3, #ARGV, 4 do
  local id = ARGV[i] .. ':' .. ARGV[i + 1]
  local k = ARGV[1] .. id
  redis.call('HINCRBY', k, ARGV[i + 2], ARGV[i + 3])
  if not seen[k] then
    seen[k] = true
    redis.call('PEXPIRE', k, ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)
  end
end
return 0
`;

/**
 * Drop the hashes of hours before ARGV[2]. KEYS[1]: the hours zset. ARGV[1]:
 * the hashes' key prefix. At most 1,000 per call; returns how many.
 */
export const ROLLUP_PRUNE_LUA = `
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, 1000)
for _, id in ipairs(m) do
  redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #m
`;

/** The script call's arguments for a batch's counts. */
export function rollupArgs(prefix: string, incs: readonly RollupIncrement[]): Array<string | number> {
  const args: Array<string | number> = [`${prefix}roll:`, ROLLUP_TTL_MS];
  for (const i of incs) {
    const hour = Math.floor(i.bucket / HOUR_MS) * HOUR_MS;
    const field = i.dim === 'minute' ? `${i.bucket}${SEP}${i.key}${SEP}${i.action}` : `${i.key}${SEP}${i.action}`;
    args.push(i.dim, hour, field, i.n);
  }
  return args;
}

/** Answer a RollupQuery: HGETALL of each hour's hash in the window, summed here. */
export async function queryRedisRollups(client: Redis, prefix: string, q: RollupQuery): Promise<RollupRow[]> {
  const firstHour = Math.floor(q.since / HOUR_MS) * HOUR_MS;
  const lastHour = q.until === undefined ? '+inf' : Math.floor(q.until / HOUR_MS) * HOUR_MS;
  // The hours that have counters (the zset retention keeps), not every hour of the window.
  const ids = (await client.zrangebyscore(`${prefix}roll:hours`, firstHour, lastHour)).filter((id) => id.startsWith(`${q.dim}:`));
  const pipe = client.pipeline();
  for (const id of ids) pipe.hgetall(`${prefix}roll:${id}`);
  const replies = ids.length === 0 ? [] : ((await pipe.exec()) ?? []);
  const wanted = q.actions === undefined ? undefined : new Set(q.actions);
  if (q.dim === 'minute') {
    const from = bucketOf('minute', q.since);
    const to = q.until === undefined ? Infinity : bucketOf('minute', q.until);
    const out: RollupRow[] = [];
    for (const [err, h] of replies) {
      if (err) throw err;
      for (const [field, n] of Object.entries(h as Record<string, string>)) {
        const [b, key, action] = field.split(SEP);
        const bucket = Number(b);
        if (bucket < from || bucket > to || (wanted !== undefined && !wanted.has(action))) continue;
        out.push({ bucket, key, action, n: Number(n) });
      }
    }
    return out.sort((a, b) => (a.bucket as number) - (b.bucket as number) || cmp(a.key, b.key) || cmp(a.action, b.action));
  }
  const rows: Array<{ key: string; action: string; n: number }> = [];
  for (const [err, h] of replies) {
    if (err) throw err;
    for (const [field, n] of Object.entries(h as Record<string, string>)) {
      const cut = field.lastIndexOf(SEP);
      rows.push({ key: field.slice(0, cut), action: field.slice(cut + 1), n: Number(n) });
    }
  }
  return topRollupRows(rows, q);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
