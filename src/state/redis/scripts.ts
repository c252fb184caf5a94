/**
 * The Lua scripts of the Redis state store. Each store operation is ONE script call, so it is
 * atomic (Redis runs a script to the end before any other command) and costs one round trip.
 *
 * Conventions shared by all scripts:
 * - times are epoch milliseconds passed as ARGV (`now` comes from the caller, never from the
 *   Redis clock, so every backend agrees with the same logical clock);
 * - every key whose content can expire also gets PEXPIREAT at the moment it becomes logically
 *   dead plus GC_GRACE_MS: Redis expiry only collects garbage, decisions compare against `now`.
 *   The grace keeps a gateway whose clock runs behind the Redis clock (or a slow caller) from
 *   losing a live reservation to Redis expiry, and lets cleanup(now) still see, and count, what
 *   expired logically;
 * - numbers handed to redis.call are Lua numbers (Redis formats them with %.17g, exact for
 *   epoch ms); numbers returned become integer replies.
 */

/** How long after its logical expiry Redis itself deletes a key (garbage collection only). */
export const GC_GRACE_MS = 5000;

/** A script as ioredis `defineCommand` takes it (`numberOfKeys` unset: the first argument). */
export interface ScriptDefinition {
  readonly lua: string;
  readonly numberOfKeys?: number;
}

/**
 * gate: checks every op in order, returns the first blocker, applies all ops only when none
 * blocks (and not in a dry run).
 *
 * KEYS: per dedup/idempotency op its hash (holder, done, expires_at, stored); per throttle op
 * one sorted set per limit (score = accepted time).
 * ARGV: now, dryRun ('1' | '0'), member (unique per call, names this call in throttle sets),
 * then per op: 'd' | 'i', ttlMs, actionId — or — 't', n, limit1, windowMs1, …, limitN, windowMsN.
 * Returns 1 when every op passes, else {index, 'd' | 'i', inFlight (1 | 0), holder, stored | nil}
 * or {index, 't', retryAfterMs, limit, windowMs}.
 */
const GATE = `
local now = tonumber(ARGV[1])
local n = #ARGV
local stale
local a, k, index = 4, 1, 0
while a <= n do
  local kind = ARGV[a]
  if kind == 't' then
    local count = tonumber(ARGV[a + 1])
    local retry, blimit, bwindow
    for j = 0, count - 1 do
      local key = KEYS[k + j]
      local limit = tonumber(ARGV[a + 2 + 2 * j])
      local window = tonumber(ARGV[a + 3 + 2 * j])
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      local used = redis.call('ZCARD', key)
      if used >= limit then
        -- The call passes once the (used - limit)th oldest entry leaves the window.
        local r = window
        if limit > 0 then
          local oldest = redis.call('ZRANGE', key, used - limit, used - limit, 'WITHSCORES')
          r = math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
        end
        if retry == nil or r > retry then retry, blimit, bwindow = r, limit, window end
      end
    end
    if retry ~= nil then return {index, 't', retry, blimit, bwindow} end
    a = a + 2 + 2 * count
    k = k + count
  else
    local h = redis.call('HMGET', KEYS[k], 'holder', 'done', 'expires_at', 'stored')
    if h[1] then
      if tonumber(h[3]) > now then
        local inflight = 1
        if h[2] == '1' then inflight = 0 end
        return {index, kind, inflight, h[1], h[4]}
      end
      if h[4] then
        stale = stale or {}
        stale[k] = true
      end
    end
    a = a + 3
    k = k + 1
  end
  index = index + 1
end
if ARGV[2] == '1' then return 1 end
local member = ARGV[3]
a, k = 4, 1
while a <= n do
  if ARGV[a] == 't' then
    local count = tonumber(ARGV[a + 1])
    for j = 0, count - 1 do
      local key = KEYS[k + j]
      local window = tonumber(ARGV[a + 3 + 2 * j])
      -- Limits sharing a key and window share one set: the same member counts once.
      redis.call('ZADD', key, now, member)
      local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      redis.call('PEXPIREAT', key, tonumber(last[2]) + window + ${GC_GRACE_MS})
    end
    a = a + 2 + 2 * count
    k = k + count
  else
    local expires = now + tonumber(ARGV[a + 1])
    if stale and stale[k] then redis.call('HDEL', KEYS[k], 'stored') end
    redis.call('HSET', KEYS[k], 'holder', ARGV[a + 2], 'done', '0', 'expires_at', expires)
    redis.call('PEXPIREAT', KEYS[k], expires + ${GC_GRACE_MS})
    a = a + 3
    k = k + 1
  end
end
return 1
`;

/**
 * settle: commit or release reservations, each only while its action still holds the key.
 * KEYS: one hash per op. ARGV per op: 'c' | 'r', actionId, hasOutcome ('1' | '0'), outcome.
 */
const SETTLE = `
for i = 1, #KEYS do
  local b = (i - 1) * 4
  local key = KEYS[i]
  if redis.call('HGET', key, 'holder') == ARGV[b + 2] then
    if ARGV[b + 1] == 'r' then
      redis.call('DEL', key)
    elseif ARGV[b + 3] == '1' then
      redis.call('HSET', key, 'done', '1', 'stored', ARGV[b + 4])
    else
      redis.call('HSET', key, 'done', '1')
      redis.call('HDEL', key, 'stored')
    end
  end
end
return 0
`;

/**
 * kvSet: KEYS: the value hash (v, ver, exp). ARGV: value, now, ttlMs ('' = none),
 * ifVersion ('' = none). Returns the new version, or nil when the condition failed.
 */
const KV_SET = `
local now = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'ver', 'exp')
local current = 0
if h[1] and (h[2] == false or h[2] == '' or tonumber(h[2]) > now) then current = tonumber(h[1]) end
if ARGV[4] ~= '' and current ~= tonumber(ARGV[4]) then return false end
local version = current + 1
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', version, 'exp', '')
  redis.call('PERSIST', KEYS[1])
else
  local expires = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', version, 'exp', expires)
  redis.call('PEXPIREAT', KEYS[1], expires + ${GC_GRACE_MS})
end
return version
`;

/** kvDelete: KEYS: the value hash. ARGV: now, ifVersion ('' = none). Returns 1 when deleted. */
const KV_DELETE = `
local h = redis.call('HMGET', KEYS[1], 'ver', 'exp')
if not h[1] then return 0 end
if h[2] and h[2] ~= '' and tonumber(h[2]) <= tonumber(ARGV[1]) then return 0 end
if ARGV[2] ~= '' and tonumber(h[1]) ~= tonumber(ARGV[2]) then return 0 end
return redis.call('DEL', KEYS[1])
`;

/**
 * leaseAcquire: KEYS: the lease hash (holder, token, expires_at), the token counter (never
 * expires, so tokens stay monotonic after a release or expiry). ARGV: holder, ttlMs, now.
 * Returns the fencing token, or nil when someone else holds the lease.
 */
const LEASE_ACQUIRE = `
local now = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'holder', 'token', 'expires_at')
local live = h[1] and tonumber(h[3]) > now
if live and h[1] ~= ARGV[1] then return false end
local token
if live then token = tonumber(h[2]) else token = redis.call('INCR', KEYS[2]) end
local expires = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token, 'expires_at', expires)
redis.call('PEXPIREAT', KEYS[1], expires + ${GC_GRACE_MS})
return token
`;

/** leaseRenew: KEYS: the lease hash. ARGV: holder, token, ttlMs, now. Returns 1 when renewed. */
const LEASE_RENEW = `
local now = tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'holder', 'token', 'expires_at')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] or tonumber(h[3]) <= now then return 0 end
local expires = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expires_at', expires)
redis.call('PEXPIREAT', KEYS[1], expires + ${GC_GRACE_MS})
return 1
`;

/** leaseRelease: KEYS: the lease hash. ARGV: holder, token. Returns 1 when released. */
const LEASE_RELEASE = `
local h = redis.call('HMGET', KEYS[1], 'holder', 'token')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] then return 0 end
return redis.call('DEL', KEYS[1])
`;

/*
 * Due items of one queue: KEYS = ready (sorted set, score = dueAt), claimed (sorted set,
 * score = claim expiry), items (hash: p:<id> payload, d:<id> dueAt, a:<id> attempts,
 * h:<id> holder). An item is in exactly one of the two sets.
 */

/** duePut: ARGV: id, dueAt, payload. Adds or replaces; replacing clears any claim. */
const DUE_PUT = `
local id = ARGV[1]
redis.call('ZREM', KEYS[2], id)
redis.call('ZADD', KEYS[1], ARGV[2], id)
redis.call('HSET', KEYS[3], 'p:' .. id, ARGV[3], 'd:' .. id, ARGV[2], 'a:' .. id, 0)
redis.call('HDEL', KEYS[3], 'h:' .. id)
return 1
`;

/**
 * dueClaim: ARGV: now, limit, holder, leaseMs. Expired claims first go back to the ready set at
 * their due time, then the oldest due items (by dueAt, then id) are claimed.
 * Returns a flat list: id, dueAt, payload, attempts, id, …
 */
const DUE_CLAIM = `
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #expired do
  local id = expired[i]
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], 'd:' .. id), id)
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
if limit <= 0 then return {} end
local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local claimedUntil = now + tonumber(ARGV[4])
local out = {}
for i = 1, #ready, 2 do
  local id = ready[i]
  redis.call('ZADD', KEYS[2], claimedUntil, id)
  redis.call('HSET', KEYS[3], 'h:' .. id, ARGV[3])
  out[#out + 1] = id
  out[#out + 1] = ready[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], 'p:' .. id) or ''
  out[#out + 1] = redis.call('HINCRBY', KEYS[3], 'a:' .. id, 1)
end
if #ready > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #ready / 2 - 1) end
return out
`;

/** dueAck: ARGV: id, holder. Removes the item when `holder` holds it; returns 1 then. */
const DUE_ACK = `
local id = ARGV[1]
if redis.call('HGET', KEYS[3], 'h:' .. id) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], 'p:' .. id, 'd:' .. id, 'a:' .. id, 'h:' .. id)
return 1
`;

/**
 * dueReschedule: ARGV: id, holder, dueAt, hasPayload ('1' | '0'), payload. Moves the item and
 * releases its claim when `holder` holds it; returns 1 then.
 */
const DUE_RESCHEDULE = `
local id = ARGV[1]
if redis.call('HGET', KEYS[3], 'h:' .. id) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], id)
redis.call('ZADD', KEYS[1], ARGV[3], id)
redis.call('HSET', KEYS[3], 'd:' .. id, ARGV[3])
if ARGV[4] == '1' then redis.call('HSET', KEYS[3], 'p:' .. id, ARGV[5]) end
redis.call('HDEL', KEYS[3], 'h:' .. id)
return 1
`;

/**
 * dueList: ARGV: limit, hasAfter ('1' | '0'), afterDueAt, afterId. The items of the queue after
 * (afterDueAt, afterId), ordered by (dueAt, id), at most `limit`: a page of the ready set, found
 * by rank (ZCOUNT past the earlier due times, then a binary search among the ties on afterDueAt),
 * merged with the claimed items after the same point (the claimed set is scored by claim expiry,
 * so all of it is read: it holds only the items being worked on). Ids are compared by their
 * bytes, as Redis orders set members that tie on score (Lua's `<` on strings follows the locale).
 * Returns a flat list: id, dueAt, payload, attempts, id, …
 */
const DUE_LIST = `
local limit = tonumber(ARGV[1])
local after = ARGV[2] == '1'
local adue = tonumber(ARGV[3])
local aid = ARGV[4]
local function less(x, y)
  if x == y then return false end
  for i = 1, math.min(#x, #y) do
    local a, b = string.byte(x, i), string.byte(y, i)
    if a ~= b then return a < b end
  end
  return #x < #y
end
if limit <= 0 then return {} end
local start = 0
if after then
  local lo = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[3])
  local hi = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[3])
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if less(aid, redis.call('ZRANGE', KEYS[1], mid, mid)[1]) then hi = mid else lo = mid + 1 end
  end
  start = lo
end
local ready = redis.call('ZRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')
local claimed = {}
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
for i = 1, #members do
  local id = members[i]
  local d = redis.call('HGET', KEYS[3], 'd:' .. id)
  if d then
    local due = tonumber(d)
    if not after or due > adue or (due == adue and less(aid, id)) then
      claimed[#claimed + 1] = {due, id, d}
    end
  end
end
table.sort(claimed, function(x, y)
  if x[1] ~= y[1] then return x[1] < y[1] end
  return less(x[2], y[2])
end)
local out = {}
local r, c, n = 1, 1, 0
while n < limit do
  local id, d
  local nextReady = r < #ready
  local nextClaimed = c <= #claimed
  if not nextReady and not nextClaimed then break end
  if nextReady and nextClaimed then
    local rdue, cl = tonumber(ready[r + 1]), claimed[c]
    nextClaimed = cl[1] < rdue or (cl[1] == rdue and less(cl[2], ready[r]))
  end
  if nextClaimed then
    id, d = claimed[c][2], claimed[c][3]
    c = c + 1
  else
    id, d = ready[r], ready[r + 1]
    r = r + 2
  end
  local h = redis.call('HMGET', KEYS[3], 'p:' .. id, 'a:' .. id)
  out[#out + 1] = id
  out[#out + 1] = d
  out[#out + 1] = h[1] or ''
  out[#out + 1] = h[2] or '0'
  n = n + 1
end
return out
`;

/**
 * dueRemove: ARGV: id. Removes the item whatever its claim (a holder's later ack or reschedule
 * finds no claim); returns 1 when it existed (it is in exactly one of the two sets).
 */
const DUE_REMOVE = `
local id = ARGV[1]
local n = redis.call('ZREM', KEYS[1], id) + redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], 'p:' .. id, 'd:' .. id, 'a:' .. id, 'h:' .. id)
if n > 0 then return 1 end
return 0
`;

/** dueCount: every item of the queue, ready or claimed (each is in exactly one set). */
const DUE_COUNT = `
return redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
`;

/**
 * cleanup: KEYS: candidate keys (from SCAN). ARGV: now. Every expiring key's Redis expiry is
 * its logical expiry plus GC_GRACE_MS, so a key whose logical expiry is at or before `now` is
 * dead: delete it.
 * Uses PEXPIRETIME (Redis 7), else derives the expiry time from TIME + PTTL.
 */
const CLEANUP = `
local now = tonumber(ARGV[1])
local removed = 0
local exact = true
for i = 1, #KEYS do
  local at = -1
  if exact then
    local r = redis.pcall('PEXPIRETIME', KEYS[i])
    if type(r) == 'number' then at = r else exact = false end
  end
  if not exact then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl >= 0 then
      local t = redis.call('TIME')
      at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl
    end
  end
  if at > 0 and at - ${GC_GRACE_MS} <= now then
    redis.call('DEL', KEYS[i])
    removed = removed + 1
  end
end
return removed
`;

export const SCRIPTS = {
  syGate: { lua: GATE },
  sySettle: { lua: SETTLE },
  syKvSet: { lua: KV_SET, numberOfKeys: 1 },
  syKvDelete: { lua: KV_DELETE, numberOfKeys: 1 },
  syLeaseAcquire: { lua: LEASE_ACQUIRE, numberOfKeys: 2 },
  syLeaseRenew: { lua: LEASE_RENEW, numberOfKeys: 1 },
  syLeaseRelease: { lua: LEASE_RELEASE, numberOfKeys: 1 },
  syDuePut: { lua: DUE_PUT, numberOfKeys: 3 },
  syDueClaim: { lua: DUE_CLAIM, numberOfKeys: 3 },
  syDueAck: { lua: DUE_ACK, numberOfKeys: 3 },
  syDueReschedule: { lua: DUE_RESCHEDULE, numberOfKeys: 3 },
  syDueList: { lua: DUE_LIST, numberOfKeys: 3 },
  syDueRemove: { lua: DUE_REMOVE, numberOfKeys: 3 },
  syDueCount: { lua: DUE_COUNT, numberOfKeys: 3 },
  syCleanup: { lua: CLEANUP },
} as const satisfies Record<string, ScriptDefinition>;

export type ScriptName = keyof typeof SCRIPTS;
