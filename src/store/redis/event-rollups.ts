// The decision log's rollups on Redis (counters defined in ../event-rollups.ts).
//
//   <p>roll:<dim>:<hour>   hash   "<key>\x1f<action>" → n  (dim minute: "<minute>\x1f<key>\x1f<action>")
//   <p>roll:<dim>@<level>:<bucket>  hash  "<key>\x1f<action>" → n: the coarser counters
//                          (minute@hour, client@day, domain@day), one hash per bucket
//   <p>roll:hours          zset   "<dim>:<hour>", "<dim>@<level>:<bucket>" scored by the bucket (retention)
//   <p>roll:coarse-since   string the time the coarser counters began (set when a store first
//                          opens the database): buckets before it are read from the finer ones
//
// One hash per dimension and hour: a week is 168 hashes per dimension, read
// in one pipeline. The counts of a batch of events go in one script call,
// sent beside the batch (an event is counted when its batch is sent; a
// failed send loses the batch's events and their counts alike). Each hash
// also carries a Redis TTL (ROLLUP_TTL_MS) in case retention never runs.

import type { Redis } from 'ioredis';
import { HOUR_MS, MINUTE_MS, rollupSpans, storedBucketMs, topRollupRows, type RollupIncrement, type RollupQuery, type RollupRow, type RollupSpan } from '../event-rollups.js';

/** Key (after the prefix) of the time the coarser counters began. */
export const COARSE_SINCE_KEY = 'roll:coarse-since';

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
    // Minute counters go in one hash per hour; every other counter in one hash per its own bucket.
    const hash = i.dim === 'minute' ? Math.floor(i.bucket / HOUR_MS) * HOUR_MS : i.bucket;
    const field = i.dim === 'minute' ? `${i.bucket}${SEP}${i.key}${SEP}${i.action}` : `${i.key}${SEP}${i.action}`;
    args.push(i.dim, hash, field, i.n);
  }
  return args;
}

/** Length of the bucket one hash of a stored dimension holds. */
function hashMs(stored: string): number {
  return stored === 'minute' ? HOUR_MS : storedBucketMs(stored);
}

/**
 * Answer a RollupQuery: HGETALL of each hash of the window's spans (the
 * coarsest counters that cover it: rollupSpans), summed here.
 */
export async function queryRedisRollups(client: Redis, prefix: string, q: RollupQuery): Promise<RollupRow[]> {
  const zset = `${prefix}roll:hours`;
  const [oldest, since] = await Promise.all([client.zrangebyscore(zset, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1), client.get(`${prefix}${COARSE_SINCE_KEY}`)]);
  // Coarse buckets are whole from the oldest bucket retention left, and from the time they began to be counted.
  const floor = Math.max(oldest.length === 2 ? Number(oldest[1]) : Infinity, since === null ? Infinity : Number(since));
  const spans = rollupSpans(q.dim, q.since, q.until, floor, q.dim === 'minute' ? (q.maxBucketMs ?? MINUTE_MS) : Infinity);
  if (spans.length === 0) return [];
  const lo = Math.floor(spans[0].from / HOUR_MS) * HOUR_MS;
  const hi = spans[spans.length - 1].to;
  // The hashes that exist (the zset retention keeps), not every bucket of the window.
  const members = await client.zrangebyscore(zset, String(lo), hi === Infinity ? '+inf' : `(${hi}`, 'WITHSCORES');
  const picked: Array<{ id: string; bucket: number; span: RollupSpan }> = [];
  for (let i = 0; i + 1 < members.length; i += 2) {
    const id = members[i];
    const bucket = Number(members[i + 1]);
    const span = spans.find((s) => id.startsWith(`${s.stored}:`) && bucket + hashMs(s.stored) > s.from && bucket < s.to);
    if (span !== undefined) picked.push({ id, bucket, span });
  }
  const pipe = client.pipeline();
  for (const p of picked) pipe.hgetall(`${prefix}roll:${p.id}`);
  const replies = picked.length === 0 ? [] : ((await pipe.exec()) ?? []);
  const wanted = q.actions === undefined ? undefined : new Set(q.actions);
  if (q.dim === 'minute') {
    const out: RollupRow[] = [];
    replies.forEach(([err, h], i) => {
      if (err) throw err;
      const { bucket: hashBucket, span } = picked[i];
      for (const [field, n] of Object.entries(h as Record<string, string>)) {
        const parts = field.split(SEP);
        // Minute hashes name each field's minute; a coarser hash is one bucket.
        const [bucket, key, action] = parts.length === 3 ? [Number(parts[0]), parts[1], parts[2]] : [hashBucket, parts[0], parts[1]];
        if (bucket < span.from || bucket >= span.to || (wanted !== undefined && !wanted.has(action))) continue;
        out.push({ bucket, key, action, n: Number(n) });
      }
    });
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
