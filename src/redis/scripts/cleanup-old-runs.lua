-- cleanup-old-runs.lua: cleanupOldRuns. Removes terminal runs that ended more than maxAgeMs ago
-- (by Redis' clock), at most `batch` per call; the caller repeats while a call takes a full batch.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]  maxAgeMs
-- ARGV[9]  batch: most index entries to take in this call
-- Returns {taken, removed}: index entries taken, runs removed.
local now = now_ms()
purge_expired(now)
local cutoff = now - tonumber(ARGV[8])
local ids = redis.call('ZRANGEBYSCORE', K_ENDED, '-inf', '(' .. string.format('%.17g', cutoff), 'LIMIT', 0, tonumber(ARGV[9]))
local removed = 0
for _, id in ipairs(ids) do
	local r = read_run(id)
	if r and TERMINAL[r.status] then
		unindex_run(id, r)
		redis.call('DEL', P_RUN .. id)
		removed = removed + 1
	else
		redis.call('ZREM', K_ENDED, id)
	end
end
return { #ids, removed }
