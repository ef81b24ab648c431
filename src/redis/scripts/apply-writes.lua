-- apply-writes.lua: applyWrites. A batch of adds and compare-and-set updates, applied in order,
-- each exactly as add-run.lua or update-run.lua would apply it on its own (lib.lua's add_run and
-- update_run), for one round trip. The batch is not a transaction: each write stands alone.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]   terminal TTL in ms, or '' for none
-- ARGV[9..] the writes, one after the other, each a kind, a count n, then n arguments:
--           'a', n, the arguments of add-run.lua from its runId on (its ARGV[9..])
--           'u', n, the arguments of update-run.lua from its runId on (its ARGV[11..])
-- Returns one reply per write, in order: 1 applied; 0 an add whose id is taken, or an update that
-- missed (no run, or its status not ifStatus); {from, to} an illegal update. Only those three:
-- the caller has the rest.
-- Commands: once per batch TIME (when it holds an update, or with a TTL) and, without a TTL, ZCARD
-- of p:idx:expiry (when it holds an add); per write EXISTS and HSET for an add, HMGET and HSET for
-- an update (what the single scripts run, but HMGET in place of update-run.lua's HGETALL, and no
-- ZSCORE settling an added id while p:idx:expiry is empty: no run of the prefix can have expired);
-- then, at the end, the index changes of the whole batch with one ZADD / ZREM / SADD / SREM per
-- key touched (lib.lua's begin_batch and end_batch), an owner added to p:owners once, and each
-- owner a run left checked once for having no active run left.
local ttl = ttl_arg(ARGV[8])
-- One clock reading for the whole batch: its writes happen at one instant anyway.
local now
-- Whether a run of the prefix may have expired, which an add must settle: without a TTL, nothing
-- this batch does adds to p:idx:expiry, so one look (at the first add) holds for all of it.
local expiring
if ttl then
	now = now_ms()
	purge_expired(now)
	expiring = true
end
begin_batch()

local replies, n_replies = {}, 0
local function apply_all()
	local at = 9
	while at <= #ARGV do
		local kind, n = ARGV[at], tonumber(ARGV[at + 1])
		local first, last = at + 2, at + 1 + n
		if kind == 'a' then
			if expiring == nil then expiring = redis.call('ZCARD', K_EXPIRY) > 0 end
			n_replies = n_replies + 1
			replies[n_replies] = add_run(ARGV, first, last, ttl, now, expiring)
		else
			now = now or now_ms()
			local applied, from, to = update_run(ARGV, first, last, ttl, now, false)
			n_replies = n_replies + 1
			if applied == nil then
				replies[n_replies] = 0
			elseif applied == 0 then
				replies[n_replies] = { from, to }
			else
				replies[n_replies] = 1
			end
		end
		at = last + 1
	end
end
-- Should a command fail (a foreign key of the wrong type where a run must be, say), the writes
-- done before it keep their index entries: what was collected is sent, then the error raised.
local ok, failure = pcall(apply_all)
end_batch()
if not ok then error(failure) end
return replies
