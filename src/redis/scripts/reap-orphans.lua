-- reap-orphans.lua: reapOrphans. For every owner with queued or running runs whose lease key
-- (p:owner:{ownerId}) is gone, marks each of those runs FAILED with an OwnerLostError,
-- completedAt = Redis TIME, indexes updated. Runs without an owner are in no active set: never reaped.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]  terminal TTL in ms, or '' for none
-- Returns the ids of the runs reaped.
local ttl = ttl_arg(ARGV[8])
local now = now_ms()
purge_expired(now)
local reaped = {}
for _, owner in ipairs(redis.call('SMEMBERS', K_OWNERS)) do
	if redis.call('EXISTS', P_LEASE .. owner) == 0 then
		local err = '{"name":"OwnerLostError","message":'
			.. cjson.encode('The lease of owner "' .. owner .. '" expired while this run was active')
			.. '}'
		local completed = int_string(now)
		for _, id in ipairs(redis.call('SMEMBERS', P_ACTIVE .. owner)) do
			local r = read_run(id)
			if r and ACTIVE[r.status] and r.ownerId == owner then
				local updated = r.updatedAt
				if now > tonumber(updated) then updated = int_string(now) end
				redis.call('HSET', P_RUN .. id, 'status', 'failed', 'error', err, 'completedAt', completed, 'updatedAt', updated)
				redis.call('ZREM', P_STATUS .. r.status, id)
				redis.call('ZADD', P_STATUS .. 'failed', r.createdAt, id)
				r.status = 'failed'
				index_end(id, r, completed, ttl, now)
				table.insert(reaped, id)
			end
		end
		redis.call('DEL', P_ACTIVE .. owner)
		redis.call('SREM', K_OWNERS, owner)
	end
end
return reaped
