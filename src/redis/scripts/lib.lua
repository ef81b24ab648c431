#!lua
-- (The line above makes Redis 7 treat every script as a flagged one: one that may write is
-- refused as a whole when Redis is out of memory, instead of failing halfway through.)
-- lib.lua: the definitions every other script is written against. scripts.ts packages them two
-- ways: as one Redis Functions library (this file once, then each script as a function of it,
-- loaded with FUNCTION LOAD and called with FCALL, so that these definitions are made once per
-- server instead of once per call), and, for a server that refuses functions, as EVAL scripts
-- (this file prepended to each script). Either way a call starts with begin_call(KEYS, ARGV),
-- which sets the per-call state below: in a library, the definitions outlive a call, so nothing a
-- call leaves in them may reach the next one. It spells no key: keys come in KEYS, key beginnings
-- in ARGV (keys.ts).
--
-- Common KEYS (every script):
--   KEYS[1] p:idx:ended        sorted set  terminal runs, scored by end time
--   KEYS[2] p:idx:expiry       sorted set  terminal runs with a TTL, scored by expiry time (ms)
--   KEYS[3] p:idx:expiry-info  hash        runId -> JSON [status, moduleId, itemId|false, ownerId|false]
--   KEYS[4] p:owners           set         owners with queued or running runs
-- There is no index of all runs: every run is in exactly one status index, and listing without
-- a status filter merges the five.
-- Common ARGV (every script), the beginnings of keys completed with an id:
--   ARGV[1] 'p:run:'  ARGV[2] 'p:idx:status:'  ARGV[3] 'p:idx:module:'  ARGV[4] 'p:idx:item:'
--   ARGV[5] 'p:idx:owner:'  ARGV[6] 'p:active:'  ARGV[7] 'p:owner:'
-- Script-specific ARGV start at ARGV[8].
-- Per call (begin_call).
local K_ENDED, K_EXPIRY, K_EXPIRY_INFO, K_OWNERS
local P_RUN, P_STATUS, P_MODULE, P_ITEM, P_OWNER, P_ACTIVE, P_LEASE

local STATUSES = { 'queued', 'running', 'completed', 'failed', 'cancelled' }

-- The status index key of `status`, spelled once per script call on first use rather than once
-- per write (a batch moves many runs between the same few), and never by a call that needs none.
-- Per call (begin_call): the prefix comes with the call.
local status_keys = {}
local function status_key(status)
	local key = status_keys[status]
	if not key then
		key = P_STATUS .. status
		status_keys[status] = key
	end
	return key
end

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
-- The last `now` update_run formatted, and its text: a batch's updates all share one `now`.
local now_string, now_string_of = nil, nil

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

-- Index changes (sorted sets and active sets) are sent one by one, except in a batch
-- (apply-writes.lua, between begin_batch and end_batch): there they are collected per key, the
-- last change of each member winning as it would in Redis, and sent at the end with one command
-- per key and kind, which saves Redis most of its per-call cost. Nothing a write reads is
-- collected: run hashes, p:idx:expiry and p:idx:expiry-info are always written at once.
-- key -> { zset = whether a sorted set, changes = { member -> score (added) | true (added to a set) | false (removed) } }
-- Per call (begin_call): a call that failed inside a batch must not leave the next one batching.
local batch = nil

local function change(key, zset, member, value)
	local entry = batch[key]
	if not entry then
		entry = { zset = zset, changes = {} }
		batch[key] = entry
	end
	entry.changes[member] = value
end

local function zadd(key, score, member)
	if batch then change(key, true, member, score) else redis.call('ZADD', key, score, member) end
end

local function zrem(key, member)
	if batch then change(key, true, member, false) else redis.call('ZREM', key, member) end
end

local function sadd(key, member)
	if batch then change(key, false, member, true) else redis.call('SADD', key, member) end
end

local function srem(key, member)
	if batch then change(key, false, member, false) else redis.call('SREM', key, member) end
end

-- Owners known to be in K_OWNERS in this call: adding one again would change nothing. Per call
-- (begin_call): another call may have removed one since.
local listed_owners = {}
-- In a batch: the owners whose active set a run left, checked once each by end_batch. Per call.
local left_owners = {}

local function join_active(id, owner)
	sadd(P_ACTIVE .. owner, id)
	if not listed_owners[owner] then
		redis.call('SADD', K_OWNERS, owner)
		listed_owners[owner] = true
	end
end

local function leave_active(id, owner)
	srem(P_ACTIVE .. owner, id)
	if batch then
		left_owners[owner] = true
	elseif redis.call('EXISTS', P_ACTIVE .. owner) == 0 then
		redis.call('SREM', K_OWNERS, owner)
		listed_owners[owner] = nil
	end
end

local function begin_batch()
	batch = {}
end

-- `command key args...`, at most 1,000 of `args` per call (unpack has a limit; pairs stay whole).
local function send(command, key, args)
	for i = 1, #args, 1000 do
		redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
	end
end

-- Sends what the batch collected, then drops from K_OWNERS each owner left with no active run.
-- A script that calls begin_batch must call this before it returns.
local function end_batch()
	local collected = batch
	batch = nil
	for key, entry in pairs(collected) do
		-- Counted by hand: `#t` is a search in Lua 5.1.
		local added, removed, n_added, n_removed = {}, {}, 0, 0
		local zset = entry.zset
		for member, value in pairs(entry.changes) do
			if value == false then
				n_removed = n_removed + 1
				removed[n_removed] = member
			elseif zset then
				added[n_added + 1], added[n_added + 2] = value, member
				n_added = n_added + 2
			else
				n_added = n_added + 1
				added[n_added] = member
			end
		end
		send(entry.zset and 'ZREM' or 'SREM', key, removed)
		send(entry.zset and 'ZADD' or 'SADD', key, added)
	end
	for owner in pairs(left_owners) do
		if redis.call('EXISTS', P_ACTIVE .. owner) == 0 then
			redis.call('SREM', K_OWNERS, owner)
			listed_owners[owner] = nil
		end
	end
	left_owners = {}
end

-- Adds run `id` (fields `r`) to the creation-time indexes and, when active and owned, to its owner's active set.
local function index_run(id, r)
	zadd(status_key(r.status), r.createdAt, id)
	zadd(P_MODULE .. r.moduleId, r.createdAt, id)
	if r.itemId then zadd(P_ITEM .. r.itemId, r.createdAt, id) end
	if r.ownerId then
		zadd(P_OWNER .. r.ownerId, r.createdAt, id)
		if ACTIVE[r.status] then join_active(id, r.ownerId) end
	end
end

-- Removes every index entry of run `id`, whose indexed fields are `r`.
local function unindex_run(id, r)
	zrem(status_key(r.status), id)
	zrem(P_MODULE .. r.moduleId, id)
	if r.itemId then zrem(P_ITEM .. r.itemId, id) end
	if r.ownerId then
		zrem(P_OWNER .. r.ownerId, id)
		if ACTIVE[r.status] then leave_active(id, r.ownerId) end
	end
	zrem(K_ENDED, id)
	redis.call('ZREM', K_EXPIRY, id)
	redis.call('HDEL', K_EXPIRY_INFO, id)
end

-- Records that run `id` (now terminal, fields `r`) ended at `ended_at` (a score string); with a
-- TTL, has Redis expire the run and remembers its index entries for purge_expired.
local function index_end(id, r, ended_at, ttl, now)
	zadd(K_ENDED, ended_at, id)
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

-- Adds a run unless its id is taken: the body of add-run.lua, and of each add in apply-writes.lua.
-- args[at..last] are the add's arguments: runId, status, moduleId, itemId|'', ownerId|'',
-- createdAt (the score in every creation-time index), end time (completedAt, else updatedAt: the
-- score in p:idx:ended when the run is added terminal), then field, value, ...: the rest of the
-- run's hash (the fields before it are stored too, not sent twice).
-- `now` may be nil without a TTL. `expiring`: whether any run of the prefix may have expired (then
-- the id is settled first). Returns 1 when added (or when the run under this id holds the same
-- `addToken` field: this very add, sent twice), 0 when another run with this id exists (nothing changed).
local function add_run(args, at, last, ttl, now, expiring)
	local id = args[at]
	-- Even without a TTL: a registry with one on this prefix may have left an expired run of this
	-- id behind, whose stale index entries must not outlive into the new run.
	if expiring then settle(id) end
	local key = P_RUN .. id
	if redis.call('EXISTS', key) == 1 then
		-- An add sent twice (a client re-sending after a reconnect) finds its own token: done already.
		for i = at + 7, last - 1, 2 do
			if args[i] == 'addToken' then
				if redis.call('HGET', key, 'addToken') == args[i + 1] then return 1 end
				break
			end
		end
		return 0
	end
	local r = {
		status = args[at + 1],
		moduleId = args[at + 2],
		itemId = args[at + 3] ~= '' and args[at + 3],
		ownerId = args[at + 4] ~= '' and args[at + 4],
		createdAt = args[at + 5],
	}
	if r.itemId or r.ownerId then
		local set, n = { 'HSET', key, 'moduleId', r.moduleId, 'status', r.status, 'createdAt', r.createdAt }, 8
		-- (n moves in its own statement: Lua leaves the order of a multiple assignment undefined.)
		if r.itemId then
			set[n + 1], set[n + 2] = 'itemId', r.itemId
			n = n + 2
		end
		if r.ownerId then
			set[n + 1], set[n + 2] = 'ownerId', r.ownerId
			n = n + 2
		end
		for i = at + 7, last do
			n = n + 1
			set[n] = args[i]
		end
		redis.call(unpack(set))
	else
		redis.call('HSET', key, 'moduleId', r.moduleId, 'status', r.status, 'createdAt', r.createdAt, unpack(args, at + 7, last))
	end
	index_run(id, r)
	if TERMINAL[r.status] then index_end(id, r, args[at + 6], ttl, now) end
	return 1
end

-- A compare-and-set patch of one run, indexes included: the body of update-run.lua, and of each
-- update in apply-writes.lua. args[at..last] are the update's arguments: runId, ifStatus
-- (statuses joined by ',', or '' for no condition), the patch's status or '' to keep it, its
-- ownerId or '' to keep it, then field, value, ...: the other patched fields of the hash.
-- `full`: read the whole hash (HGETALL), for a caller that replies with the run; else only the
-- indexed fields (HMGET). With `channel`, PUBLISHes `message` on it once the change is known to
-- apply, before writing, so that a refused PUBLISH (an ACL) fails the call with nothing changed;
-- subscribers get the message only after the script, so never before the change is visible.
-- Returns nil when the run is missing or its status is not in ifStatus (nothing changed);
-- 0, from, to when the change is illegal (nothing changed); else 1, the run's fields as stored
-- now (only the indexed ones unless `full`), and (when `full`) the set of the fields patched from args.
-- Commands: HGETALL or HMGET, one HSET, and only the index moves the change needs.
local function update_run(args, at, last, ttl, now, full, channel, message)
	local id = args[at]
	if ttl then settle(id) end
	local key = P_RUN .. id
	local h
	if full then
		local flat = redis.call('HGETALL', key)
		if #flat == 0 then return nil end
		h = {}
		for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
	else
		h = read_run(id)
		if not h then return nil end
	end
	local from = h.status
	local if_status = args[at + 1]
	-- One status (a batch's updates, most single ones) needs no splitting.
	if if_status ~= '' and if_status ~= from then
		local allowed = false
		if string.find(if_status, ',', 1, true) then
			for status in string.gmatch(if_status, '[^,]+') do
				if status == from then allowed = true end
			end
		end
		if not allowed then return nil end
	end
	local to = args[at + 2] ~= '' and args[at + 2] or from
	if not (LEGAL[from] and LEGAL[from][to]) then return 0, from, to end
	if channel then redis.call('PUBLISH', channel, message) end

	-- updatedAt never moves back, even when the stored one is ahead of this clock.
	local updated = h.updatedAt
	if now > tonumber(updated) then
		if now ~= now_string_of then now_string, now_string_of = int_string(now), now end
		updated = now_string
	end
	local was_owner = h.ownerId or false
	local owner = was_owner
	if args[at + 3] ~= '' then owner = args[at + 3] end

	-- One HSET: the patched fields, the status, updatedAt, and ownerId when it changes.
	if owner ~= was_owner then
		redis.call('HSET', key, 'status', to, 'updatedAt', updated, 'ownerId', owner, unpack(args, at + 4, last))
	else
		redis.call('HSET', key, 'status', to, 'updatedAt', updated, unpack(args, at + 4, last))
	end
	-- Only a caller that replies with the run (`full`) needs the patched fields noted.
	local patched = full and {} or nil
	for i = at + 4, last, 2 do
		local field, value = args[i], args[i + 1]
		if full then
			patched[field] = true
			h[field] = value
		elseif field == 'completedAt' then
			h.completedAt = value
		end
	end
	h.status, h.updatedAt = to, updated
	if owner then h.ownerId = owner end

	if to ~= from then
		zrem(status_key(from), id)
		zadd(status_key(to), h.createdAt, id)
	end
	if owner ~= was_owner then
		if was_owner then zrem(P_OWNER .. was_owner, id) end
		zadd(P_OWNER .. owner, h.createdAt, id)
	end
	local was_active_of = (ACTIVE[from] and was_owner) or false
	local is_active_of = (ACTIVE[to] and owner) or false
	if was_active_of ~= is_active_of then
		if was_active_of then leave_active(id, was_active_of) end
		if is_active_of then join_active(id, is_active_of) end
	end
	if TERMINAL[to] then
		index_end(id, { status = to, moduleId = h.moduleId, itemId = h.itemId or false, ownerId = owner }, h.completedAt or updated, ttl, now)
	end
	return 1, h, patched
end

-- Starts a call: its keys and key beginnings, and fresh per-call state. Every script's first step.
local function begin_call(keys, argv)
	K_ENDED, K_EXPIRY, K_EXPIRY_INFO, K_OWNERS = keys[1], keys[2], keys[3], keys[4]
	P_RUN, P_STATUS, P_MODULE, P_ITEM, P_OWNER, P_ACTIVE, P_LEASE = argv[1], argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]
	status_keys, listed_owners, left_owners, batch = {}, {}, {}, nil
end
