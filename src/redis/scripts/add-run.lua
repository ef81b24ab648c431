-- add-run.lua: addRun. Records a new run and its index entries, unless the id is taken.
-- KEYS[1..5], ARGV[1..7]: see lib.lua.
-- ARGV[8]   runId
-- ARGV[9]   terminal TTL in ms, or '' for none
-- ARGV[10]  status
-- ARGV[11]  moduleId
-- ARGV[12]  itemId, or '' for none
-- ARGV[13]  ownerId, or '' for none
-- ARGV[14]  createdAt (the score in every creation-time index)
-- ARGV[15]  end time: completedAt, else updatedAt (used when the run is added terminal)
-- ARGV[16..] field, value, ...: the run's hash
-- Returns 1 when added, 0 when a run with this id exists (nothing changed).
local id = ARGV[8]
local ttl = ttl_arg(ARGV[9])
-- Without a TTL no run of this registry expires: no purge (nor TIME) to pay for. An id being
-- reused is still settled (one ZSCORE), in case a registry with a TTL on this prefix left an
-- expired run of that id behind: its stale index entries must not outlive into the new run.
local now
if ttl then
	now = now_ms()
	purge_expired(now)
end
settle(id)
local key = P_RUN .. id
if redis.call('EXISTS', key) == 1 then return 0 end

local r = { status = ARGV[10], moduleId = ARGV[11], itemId = ARGV[12] ~= '' and ARGV[12], ownerId = ARGV[13] ~= '' and ARGV[13], createdAt = ARGV[14] }
redis.call('HSET', key, unpack(ARGV, 16))
index_run(id, r)
if TERMINAL[r.status] then index_end(id, r, ARGV[15], ttl, now) end
return 1
