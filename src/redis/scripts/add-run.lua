-- add-run.lua: addRun. Records a new run and its index entries, unless the id is taken.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]   terminal TTL in ms, or '' for none
-- ARGV[9]   runId
-- ARGV[10]  status
-- ARGV[11]  moduleId
-- ARGV[12]  itemId, or '' for none
-- ARGV[13]  ownerId, or '' for none
-- ARGV[14]  createdAt (the score in every creation-time index)
-- ARGV[15]  end time: completedAt, else updatedAt (used when the run is added terminal)
-- ARGV[16..] field, value, ...: the run's hash
-- Returns 1 when added, 0 when a run with this id exists (nothing changed).
-- Commands without a TTL: ZSCORE (settle), EXISTS, HSET, and one ZADD or SADD per index entry.
local ttl = ttl_arg(ARGV[8])
-- Without a TTL no run of this registry expires: no purge (nor TIME) to pay for.
local now
if ttl then
	now = now_ms()
	purge_expired(now)
end
-- The id is settled all the same (one ZSCORE): see add_run.
return add_run(ARGV, 9, #ARGV, ttl, now, true)
