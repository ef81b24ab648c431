-- delete-run.lua: deleteRun. Removes one run and all its index entries.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]  runId
-- Returns 1 when there was a run, else 0.
local id = ARGV[8]
purge_expired(now_ms())
settle(id)
local r = read_run(id)
if not r then return 0 end
unindex_run(id, r)
redis.call('DEL', P_RUN .. id)
return 1
