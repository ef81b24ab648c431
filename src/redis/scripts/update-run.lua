-- update-run.lua: updateRun. A compare-and-set patch of one run, indexes included.
-- KEYS[1..5], ARGV[1..7]: see lib.lua.
-- ARGV[8]   runId
-- ARGV[9]   terminal TTL in ms, or '' for none
-- ARGV[10]  ifStatus: statuses joined by ',', or '' for no condition
-- ARGV[11]  the patch's status, or '' to keep it
-- ARGV[12]  the patch's ownerId, or '' to keep it
-- ARGV[13]  the patch's completedAt, or '' (it is also among the fields below)
-- ARGV[14..] field, value, ...: the other patched fields of the hash
-- Returns nil when the run is missing or its status is not in ifStatus (nothing changed);
-- {0, from, to} when the change is illegal (nothing changed); else {1, field, value, ...}, the run as stored.
local id = ARGV[8]
local ttl = ttl_arg(ARGV[9])
local now = now_ms()
purge_expired(now)
settle(id)

local r = read_run(id)
if not r then return false end
if ARGV[10] ~= '' then
	local allowed = {}
	for status in string.gmatch(ARGV[10], '[^,]+') do allowed[status] = true end
	if not allowed[r.status] then return false end
end
local from = r.status
local to = ARGV[11] ~= '' and ARGV[11] or from
if not (LEGAL[from] and LEGAL[from][to]) then return { 0, from, to } end

local key = P_RUN .. id
if #ARGV >= 14 then redis.call('HSET', key, unpack(ARGV, 14)) end
-- updatedAt never moves back, even when the stored one is ahead of this clock.
local updated = r.updatedAt
if now > tonumber(updated) then updated = int_string(now) end
local owner = r.ownerId
if ARGV[12] ~= '' then owner = ARGV[12] end
if owner then
	redis.call('HSET', key, 'status', to, 'updatedAt', updated, 'ownerId', owner)
else
	redis.call('HSET', key, 'status', to, 'updatedAt', updated)
end

if to ~= from then
	redis.call('ZREM', P_STATUS .. from, id)
	redis.call('ZADD', P_STATUS .. to, r.createdAt, id)
end
if owner ~= r.ownerId then
	if r.ownerId then redis.call('ZREM', P_OWNER .. r.ownerId, id) end
	redis.call('ZADD', P_OWNER .. owner, r.createdAt, id)
end
local was_active_of = (ACTIVE[from] and r.ownerId) or false
local is_active_of = (ACTIVE[to] and owner) or false
if was_active_of ~= is_active_of then
	if was_active_of then leave_active(id, was_active_of) end
	if is_active_of then join_active(id, is_active_of) end
end
if TERMINAL[to] then
	local completed = ARGV[13] ~= '' and ARGV[13] or r.completedAt
	index_end(id, { status = to, moduleId = r.moduleId, itemId = r.itemId, ownerId = owner }, completed or updated, ttl, now)
end

local stored = redis.call('HGETALL', key)
table.insert(stored, 1, 1)
return stored
