#!lua
-- (The line above makes Redis 7 treat every script as a flagged one: one that may write is
-- refused as a whole when Redis is out of memory, instead of failing halfway through.)
-- lib.lua: prepended to every other script (scripts.ts joins them), so each script starts with
-- these definitions. It spells no key: keys come in KEYS, key beginnings in ARGV (keys.ts).
--
-- Common KEYS (every script):
--   KEYS[1] p:idx:all          sorted set  every run, scored by createdAt
--   KEYS[2] p:idx:ended        sorted set  terminal runs, scored by end time
--   KEYS[3] p:idx:expiry       sorted set  terminal runs with a TTL, scored by expiry time (ms)
--   KEYS[4] p:idx:expiry-info  hash        runId -> JSON [status, moduleId, itemId|false, ownerId|false]
--   KEYS[5] p:owners           set         owners with queued or running runs
-- Common ARGV (every script), the beginnings of keys completed with an id:
--   ARGV[1] 'p:run:'  ARGV[2] 'p:idx:status:'  ARGV[3] 'p:idx:module:'  ARGV[4] 'p:idx:item:'
--   ARGV[5] 'p:idx:owner:'  ARGV[6] 'p:active:'  ARGV[7] 'p:owner:'
-- Script-specific ARGV start at ARGV[8].
local K_ALL, K_ENDED, K_EXPIRY, K_EXPIRY_INFO, K_OWNERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local P_RUN, P_STATUS, P_MODULE, P_ITEM, P_OWNER, P_ACTIVE, P_LEASE = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

local ACTIVE = { queued = true, running = true }
local TERMINAL = { completed = true, failed = true, cancelled = true }
-- Which statuses each status may move to; a status "moving" to itself keeps it (active runs only).
local LEGAL = {
	queued = { queued = true, running = true, cancelled = true, failed = true },
	running = { running = true, completed = true, failed = true, cancelled = true },
}

-- Redis' own clock, in epoch milliseconds.
local function now_ms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An integral number of milliseconds as a string, without exponent.
local function int_string(n)
	return string.format('%.0f', n)
end

-- Whether a < b byte by byte, as Redis orders sorted-set members (Lua's `<` follows the locale).
local function bytes_less(a, b)
	if a == b then return false end
	local n = math.min(#a, #b)
	for i = 1, n do
		local x, y = string.byte(a, i), string.byte(b, i)
		if x ~= y then return x < y end
	end
	return #a < #b
end

-- The indexed fields of a stored run, or nil when there is none. Absent fields are false.
local function read_run(id)
	local f = redis.call('HMGET', P_RUN .. id, 'status', 'moduleId', 'itemId', 'ownerId', 'createdAt', 'updatedAt', 'completedAt')
	if not f[1] then return nil end
	return { status = f[1], moduleId = f[2], itemId = f[3], ownerId = f[4], createdAt = f[5], updatedAt = f[6], completedAt = f[7] }
end

local function join_active(id, owner)
	redis.call('SADD', P_ACTIVE .. owner, id)
	redis.call('SADD', K_OWNERS, owner)
end

local function leave_active(id, owner)
	redis.call('SREM', P_ACTIVE .. owner, id)
	if redis.call('EXISTS', P_ACTIVE .. owner) == 0 then redis.call('SREM', K_OWNERS, owner) end
end

-- Adds run `id` (fields `r`) to the creation-time indexes and, when active and owned, to its owner's active set.
local function index_run(id, r)
	redis.call('ZADD', K_ALL, r.createdAt, id)
	redis.call('ZADD', P_STATUS .. r.status, r.createdAt, id)
	redis.call('ZADD', P_MODULE .. r.moduleId, r.createdAt, id)
	if r.itemId then redis.call('ZADD', P_ITEM .. r.itemId, r.createdAt, id) end
	if r.ownerId then
		redis.call('ZADD', P_OWNER .. r.ownerId, r.createdAt, id)
		if ACTIVE[r.status] then join_active(id, r.ownerId) end
	end
end

-- Removes every index entry of run `id`, whose indexed fields are `r`.
local function unindex_run(id, r)
	redis.call('ZREM', K_ALL, id)
	redis.call('ZREM', P_STATUS .. r.status, id)
	redis.call('ZREM', P_MODULE .. r.moduleId, id)
	if r.itemId then redis.call('ZREM', P_ITEM .. r.itemId, id) end
	if r.ownerId then
		redis.call('ZREM', P_OWNER .. r.ownerId, id)
		if ACTIVE[r.status] then leave_active(id, r.ownerId) end
	end
	redis.call('ZREM', K_ENDED, id)
	redis.call('ZREM', K_EXPIRY, id)
	redis.call('HDEL', K_EXPIRY_INFO, id)
end

-- Records that run `id` (now terminal, fields `r`) ended at `ended_at` (a score string); with a
-- TTL, has Redis expire the run and remembers its index entries for purge_expired.
local function index_end(id, r, ended_at, ttl, now)
	redis.call('ZADD', K_ENDED, ended_at, id)
	if ttl then
		local expires = int_string(now + ttl)
		redis.call('PEXPIREAT', P_RUN .. id, expires)
		redis.call('ZADD', K_EXPIRY, expires, id)
		redis.call('HSET', K_EXPIRY_INFO, id, cjson.encode({ r.status, r.moduleId, r.itemId or false, r.ownerId or false }))
	end
end

-- Removes run `id`, whose TTL has passed, and its index entries (Redis runs no code on expiry).
local function purge_one(id)
	local info = redis.call('HGET', K_EXPIRY_INFO, id)
	if info then
		local f = cjson.decode(info)
		unindex_run(id, { status = f[1], moduleId = f[2], itemId = f[3], ownerId = f[4] })
	else
		redis.call('ZREM', K_EXPIRY, id)
	end
	redis.call('DEL', P_RUN .. id)
end

-- Purges the runs whose TTL has passed (at most 1,000 per call: the rest go on the next call).
local function purge_expired(now)
	local ids = redis.call('ZRANGEBYSCORE', K_EXPIRY, '-inf', int_string(now), 'LIMIT', 0, 1000)
	for _, id in ipairs(ids) do purge_one(id) end
end

-- Before run `id` is touched: if it expired but its entries are still there, purge them, so
-- that they can never be taken for those of a new run with the same id.
local function settle(id)
	if redis.call('ZSCORE', K_EXPIRY, id) and redis.call('EXISTS', P_RUN .. id) == 0 then purge_one(id) end
end

-- The script-specific terminal TTL argument: a number of ms, or nil for '' (none).
local function ttl_arg(value)
	if value == '' then return nil end
	return tonumber(value)
end
