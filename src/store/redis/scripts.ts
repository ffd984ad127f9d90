// Lua scripts of the Redis backend. Each runs atomically in Redis, so
// several frontline hosts can ban, list, count and take tokens at the same
// time without losing updates. Times come from the caller's clock (ARGV),
// not Redis's, so tests with a fake clock behave like production.

/**
 * ban — mirrors planBan() in ../bans.ts.
 * KEYS: bans hash, bans expiry zset, offences hash, offences forget zset
 * ARGV: cidr, now, forgetMs, reason, category, source, origin, channel,
 *       fixedMs ('' = none), durationMs for offence 1..K (the last applies beyond)
 * Returns JSON {ban, created, changed}.
 */
export const BAN_LUA = `
local cidr = ARGV[1]
local now = tonumber(ARGV[2])
local forget = tonumber(ARGV[3])
local fixed = tonumber(ARGV[9])
local off = nil
local offRaw = redis.call('HGET', KEYS[3], cidr)
if offRaw then off = cjson.decode(offRaw) end
local function save(b, o)
  local enc = cjson.encode(b)
  redis.call('HSET', KEYS[1], cidr, enc)
  redis.call('ZADD', KEYS[2], b.expiresAt, cidr)
  redis.call('HSET', KEYS[3], cidr, cjson.encode(o))
  redis.call('ZADD', KEYS[4], o.quietSince + forget, cidr)
  redis.call('PUBLISH', ARGV[8], '{"origin":' .. cjson.encode(ARGV[7]) .. ',"change":{"kind":"ban","ban":' .. enc .. '}}')
end
local cur = redis.call('HGET', KEYS[1], cidr)
if cur then
  local b = cjson.decode(cur)
  if b.expiresAt > now then
    local extended = fixed ~= nil and now + fixed > b.expiresAt
    if extended then
      if not off then off = {offences = b.offences, firstSeen = b.firstSeen, quietSince = b.expiresAt} end
      b.expiresAt = now + fixed
      if b.expiresAt > off.quietSince then off.quietSince = b.expiresAt end
      save(b, off)
    end
    return cjson.encode({ban = b, created = false, changed = extended})
  end
end
local n = 1
local first = now
if off and now - off.quietSince < forget then
  n = off.offences + 1
  first = off.firstSeen
end
local ms = fixed
if ms == nil then
  local k = #ARGV - 9
  local i = n
  if i > k then i = k end
  ms = tonumber(ARGV[9 + i])
end
local b = {cidr = cidr, reason = ARGV[4], category = ARGV[5], source = ARGV[6],
  firstSeen = first, createdAt = now, expiresAt = now + ms, offences = n}
save(b, {offences = n, firstSeen = first, quietSince = b.expiresAt})
return cjson.encode({ban = b, created = true, changed = true})
`;

/**
 * unban — the quiet period of the offence record starts now.
 * KEYS: bans, bans expiry, offences, offences forget
 * ARGV: cidr, now, forgetMs, origin, channel
 * Returns 1 when an unexpired ban was lifted.
 */
export const UNBAN_LUA = `
local cidr = ARGV[1]
local now = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[1], cidr)
if not cur then return 0 end
redis.call('HDEL', KEYS[1], cidr)
redis.call('ZREM', KEYS[2], cidr)
local b = cjson.decode(cur)
if b.expiresAt <= now then return 0 end
local offRaw = redis.call('HGET', KEYS[3], cidr)
if offRaw then
  local o = cjson.decode(offRaw)
  if o.quietSince > now then o.quietSince = now end
  redis.call('HSET', KEYS[3], cidr, cjson.encode(o))
  redis.call('ZADD', KEYS[4], o.quietSince + tonumber(ARGV[3]), cidr)
end
redis.call('PUBLISH', ARGV[5], '{"origin":' .. cjson.encode(ARGV[4]) .. ',"change":{"kind":"unban","cidr":' .. cjson.encode(cidr) .. '}}')
return 1
`;

/**
 * list-add — the list's kind is fixed by its first entry.
 * KEYS: lists hash (name → kind), the list's hash (entry → JSON), list expiry zset
 * ARGV: name, kind, entry, entry JSON, expiresAt ('' = never), origin, channel, change JSON
 * Returns "OK", or the existing kind when it differs.
 */
export const LIST_ADD_LUA = `
local k = redis.call('HGET', KEYS[1], ARGV[1])
if k and k ~= ARGV[2] then return k end
if not k then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
local member = ARGV[1] .. '\\n' .. ARGV[3]
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), member)
else
  redis.call('ZREM', KEYS[3], member)
end
redis.call('PUBLISH', ARGV[7], '{"origin":' .. cjson.encode(ARGV[6]) .. ',"change":' .. ARGV[8] .. '}')
return 'OK'
`;

/**
 * list-del. KEYS: the list's hash, list expiry zset. ARGV: name, entry, origin, channel.
 */
export const LIST_DEL_LUA = `
local n = redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1] .. '\\n' .. ARGV[2])
if n > 0 then
  redis.call('PUBLISH', ARGV[4], '{"origin":' .. cjson.encode(ARGV[3]) .. ',"change":{"kind":"list-del","list":' ..
    cjson.encode(ARGV[1]) .. ',"entry":' .. cjson.encode(ARGV[2]) .. '}}')
end
return n
`;

/**
 * Token bucket. KEYS: bucket hash. ARGV: now, capacity, refillPerSecond, cost.
 * Returns {allowed 0/1, tokens left as text}. Idle buckets expire once full.
 */
export const RATE_LUA = `
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = cap
local ts = now
if b[1] then
  tokens = tonumber(b[1])
  local last = tonumber(b[2])
  if now > last then
    tokens = math.min(cap, tokens + (now - last) / 1000 * rate)
  else
    ts = last
  end
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
`;

/**
 * Greylisting attempts on triplets, each atomically: greylist.ts attemptOf()
 * line for line (keep the two in step; the store conformance suite runs the
 * same sequence on both backends). The entry is the JSON that greyPut and
 * greyGet use; an unreadable one counts as none, as greyGet's parse does.
 * One call decides every attempt of a batch (redis/grey-batch.ts), in order,
 * so a triplet twice in a batch is decided as two calls one after the other.
 * KEYS: one triplet key per attempt. ARGV: delay, retry window, passed TTL
 * (seconds), then now and client IP of each attempt. Returns {outcome,
 * seconds} of each attempt, flat.
 */
export const GREY_ATTEMPT_LUA = `
local delaySeconds = tonumber(ARGV[1])
local delay = delaySeconds * 1000
local window = tonumber(ARGV[2]) * 1000
local passedTtl = tonumber(ARGV[3]) * 1000
local out = {}
for i = 1, #KEYS do
  local now = tonumber(ARGV[2 + 2 * i])
  local ip = ARGV[3 + 2 * i]
  local keep = now + passedTtl
  local e = nil
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local ok, v = pcall(cjson.decode, raw)
    if ok and type(v) == 'table' and type(v.expiresAt) == 'number' and type(v.firstSeen) == 'number'
      and type(v.attempts) == 'number' and type(v.passes) == 'number' then
      if v.passedAt == cjson.null then v.passedAt = nil end
      if v.expiresAt > now then e = v end
    end
  end
  local outcome, seconds
  if e and e.passedAt ~= nil then
    outcome = 'known'
    seconds = math.floor((now - e.passedAt) / 1000 + 0.5)
    e.lastSeen = now; e.attempts = e.attempts + 1; e.passes = e.passes + 1; e.clientIp = ip; e.expiresAt = keep
  elseif not e or now - e.firstSeen > window then
    outcome = 'first'
    seconds = delaySeconds
    e = {firstSeen = now, lastSeen = now, attempts = 1, passes = 0, clientIp = ip, expiresAt = now + window}
  elseif now - e.firstSeen < delay then
    outcome = 'early'
    seconds = math.max(1, math.ceil((delay - (now - e.firstSeen)) / 1000))
    e.lastSeen = now; e.attempts = e.attempts + 1; e.clientIp = ip
  else
    outcome = 'retried'
    seconds = math.floor((now - e.firstSeen) / 1000 + 0.5)
    e.lastSeen = now; e.passedAt = now; e.attempts = e.attempts + 1; e.passes = e.passes + 1; e.clientIp = ip; e.expiresAt = keep
  end
  redis.call('SET', KEYS[i], cjson.encode(e), 'PX', math.max(1000, math.ceil(e.expiresAt - now) + 60000))
  out[2 * i - 1] = outcome
  out[2 * i] = seconds
end
return out
`;

/**
 * Auto-allow counter of a greylisting origin.
 * KEYS: counter key. ARGV: now, expiresAt. Returns the new count.
 */
export const GREY_CLIENT_PASS_LUA = `
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local passes = 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local o = cjson.decode(raw)
  if o.expiresAt > now then passes = o.passes end
end
passes = passes + 1
redis.call('SET', KEYS[1], cjson.encode({passes = passes, expiresAt = exp}), 'PX', math.max(1000, exp - now + 60000))
return passes
`;

/**
 * Append a batch of decisions to the capped stream, each ID from its event
 * time (so time ranges are ID ranges); when that would go backwards (clock
 * skew between hosts, or another worker's batch sent first), reuse the
 * stream's last millisecond. After an append the stream's last millisecond
 * is known, so only a batch's first event can be refused: its later ones
 * are raised to it here rather than refused and retried (a refusal costs
 * an error and an XINFO; with two workers a quarter of all appends were).
 * KEYS: stream. ARGV: maxlen, then ts, JSON pairs. Returns how many.
 */
export const EVENTS_ADD_LUA = `
local n = 0
local floor = 0
for i = 2, #ARGV, 2 do
  local ts = tonumber(ARGV[i])
  if ts == nil or ts < floor then ts = floor end
  local ok = pcall(redis.call, 'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-*', ts), 'e', ARGV[i + 1])
  if not ok then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    local last = '0-0'
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then last = info[j + 1] end
    end
    ts = tonumber(string.match(last, '^(%d+)-'))
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-*', ts), 'e', ARGV[i + 1])
  end
  floor = ts
  n = n + 1
end
return n
`;

/**
 * Drop up to ARGV[2] members of a zset scored ≤ ARGV[1] (now), with their hash fields.
 * KEYS: zset, hash. Returns how many.
 */
export const PURGE_ZSET_LUA = `
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, x in ipairs(m) do
  redis.call('HDEL', KEYS[2], x)
  redis.call('ZREM', KEYS[1], x)
end
return #m
`;

/**
 * Drop expired list entries. KEYS: list expiry zset. ARGV: now, limit, key
 * prefix (list hashes are <prefix>list:<name>). Returns how many.
 */
export const PURGE_LISTS_LUA = `
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, x in ipairs(m) do
  local nl = string.find(x, '\\n', 1, true)
  if nl then
    redis.call('HDEL', ARGV[3] .. 'list:' .. string.sub(x, 1, nl - 1), string.sub(x, nl + 1))
  end
  redis.call('ZREM', KEYS[1], x)
end
return #m
`;

/**
 * Count one more message to a correspondent. KEYS: the correspondents hash
 * (key → JSON {k kind, n count, f first seen, l last seen, e expiry}), its
 * expiry zset. ARGV: key, kind, now, expiresAt. A record expired at `now`
 * starts again at 1. Returns the record's JSON.
 */
export const CORRESPONDENT_RECORD_LUA = `
local now = tonumber(ARGV[3])
local exp = tonumber(ARGV[4])
local v = redis.call('HGET', KEYS[1], ARGV[1])
local c = nil
if v then c = cjson.decode(v) end
if (not c) or tonumber(c.e) <= now then c = { n = 0, f = now, e = 0 } end
c.k = ARGV[2]
c.n = c.n + 1
c.l = now
if exp > tonumber(c.e) then c.e = exp end
local s = cjson.encode(c)
redis.call('HSET', KEYS[1], ARGV[1], s)
redis.call('ZADD', KEYS[2], c.e, ARGV[1])
return s
`;

/** Keep at most ARGV[1] correspondents: those that expire first go. KEYS: hash, expiry zset. Returns how many went. */
export const CORRESPONDENT_TRIM_LUA = `
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[1])
if over <= 0 then return 0 end
local m = redis.call('ZRANGE', KEYS[2], 0, over - 1)
for _, x in ipairs(m) do
  redis.call('HDEL', KEYS[1], x)
  redis.call('ZREM', KEYS[2], x)
end
return #m
`;

/**
 * sasl_spread: one message's values for a user, then its counts (sqlite
 * store.ts spreadRecord, the same rules: keep the two in step; the store
 * conformance suite runs both).
 * KEYS: ip, asn, country, rcpt zsets (value scored by last seen), rcpt first-seen zset
 * ARGV: now, windowMs, newWindowMs, knownMs, maxValues, then kind index (1-4), value pairs
 * Returns {ips, asns, countries, newRcpts}.
 */
export const SPREAD_LUA = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local newWindow = tonumber(ARGV[3])
local known = tonumber(ARGV[4])
local max = tonumber(ARGV[5])
local touched = {}
for i = 6, #ARGV, 2 do
  local k = tonumber(ARGV[i])
  local v = ARGV[i + 1]
  if k == 4 then
    local s = redis.call('ZSCORE', KEYS[4], v)
    if not s or tonumber(s) <= now - known then redis.call('ZADD', KEYS[5], now, v) end
  end
  redis.call('ZADD', KEYS[k], now, v)
  touched[k] = true
end
local out = {}
for k = 1, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[k])
  if n > max then
    redis.call('ZREMRANGEBYRANK', KEYS[k], 0, n - max - 1)
    n = max
  end
  if touched[k] then redis.call('PEXPIRE', KEYS[k], window + 1000) end
  out[k] = n
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - known)
local n = redis.call('ZCARD', KEYS[4]) - #gone
if n > max then
  local more = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. (now - known), '+inf', 'LIMIT', 0, n - max)
  for _, v in ipairs(more) do gone[#gone + 1] = v end
end
for i = 1, #gone, 500 do
  local chunk = {}
  for j = i, math.min(i + 499, #gone) do chunk[#chunk + 1] = gone[j] end
  redis.call('ZREM', KEYS[4], unpack(chunk))
  redis.call('ZREM', KEYS[5], unpack(chunk))
end
if touched[4] then
  redis.call('PEXPIRE', KEYS[4], known + 1000)
  redis.call('PEXPIRE', KEYS[5], known + 1000)
end
out[4] = redis.call('ZCOUNT', KEYS[5], '(' .. (now - newWindow), '+inf')
return out
`;

/**
 * A release: forget the user's addresses, networks and countries; its known
 * recipients stay known but none is new any more (first seen → 0).
 * KEYS: ip, asn, country, rcpt first-seen zset, holds hash; ARGV: user
 * Returns the hold JSON lifted, or false.
 */
export const SPREAD_RESET_LUA = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if redis.call('EXISTS', KEYS[4]) == 1 then
  local ttl = redis.call('PTTL', KEYS[4])
  redis.call('ZUNIONSTORE', KEYS[4], 1, KEYS[4], 'WEIGHTS', 0)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[4], ttl) end
end
if KEYS[5] then
  local h = redis.call('HGET', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
  return h
end
return false
`;
