-- update-run.lua: updateRun. A compare-and-set patch of one run, indexes included.
-- KEYS[1..5], ARGV[1..7]: see lib.lua.
-- ARGV[8]   runId
-- ARGV[9]   terminal TTL in ms, or '' for none (then nothing expires: no purge)
-- ARGV[10]  ifStatus: statuses joined by ',', or '' for no condition
-- ARGV[11]  the patch's status, or '' to keep it
-- ARGV[12]  the patch's ownerId, or '' to keep it
-- ARGV[13..] field, value, ...: the other patched fields of the hash
-- Returns nil when the run is missing or its status is not in ifStatus (nothing changed);
-- {0, from, to} when the change is illegal (nothing changed); else {1, field, value, ...}: the
-- run as stored now, but for the fields of ARGV[13..], which the caller has already.
-- Commands: TIME, HGETALL, one HSET, and only the index moves the change needs.
local id = ARGV[8]
local ttl = ttl_arg(ARGV[9])
local now = now_ms()
if ttl then
	purge_expired(now)
	settle(id)
end

local key = P_RUN .. id
local flat = redis.call('HGETALL', key)
if #flat == 0 then return false end
local h = {}
for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
local from = h.status
if ARGV[10] ~= '' then
	local allowed = {}
	for status in string.gmatch(ARGV[10], '[^,]+') do allowed[status] = true end
	if not allowed[from] then return false end
end
local to = ARGV[11] ~= '' and ARGV[11] or from
if not (LEGAL[from] and LEGAL[from][to]) then return { 0, from, to } end

-- updatedAt never moves back, even when the stored one is ahead of this clock.
local updated = h.updatedAt
if now > tonumber(updated) then updated = int_string(now) end
local was_owner = h.ownerId or false
local owner = was_owner
if ARGV[12] ~= '' then owner = ARGV[12] end

-- One HSET: the patched fields, the status, updatedAt, and ownerId when it changes.
local set = { 'HSET', key, 'status', to, 'updatedAt', updated }
if owner ~= was_owner then
	set[#set + 1] = 'ownerId'
	set[#set + 1] = owner
end
local patched = {}
for i = 13, #ARGV, 2 do
	set[#set + 1] = ARGV[i]
	set[#set + 1] = ARGV[i + 1]
	patched[ARGV[i]] = true
	h[ARGV[i]] = ARGV[i + 1]
end
redis.call(unpack(set))
h.status, h.updatedAt = to, updated
if owner then h.ownerId = owner end

if to ~= from then
	redis.call('ZREM', P_STATUS .. from, id)
	redis.call('ZADD', P_STATUS .. to, h.createdAt, id)
end
if owner ~= was_owner then
	if was_owner then redis.call('ZREM', P_OWNER .. was_owner, id) end
	redis.call('ZADD', P_OWNER .. owner, h.createdAt, id)
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

local reply = { 1 }
for field, value in pairs(h) do
	if not patched[field] then
		reply[#reply + 1] = field
		reply[#reply + 1] = value
	end
end
return reply
