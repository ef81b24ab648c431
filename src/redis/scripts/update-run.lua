-- update-run.lua: updateRun (and updateRunAndPublish). A compare-and-set patch of one run,
-- indexes included, optionally publishing a message when it applies.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]   terminal TTL in ms, or '' for none (then nothing expires: no purge)
-- ARGV[9]   pub/sub channel to PUBLISH ARGV[10] on when the patch applies, or '' for none
-- ARGV[10]  the message to publish ('' without a channel)
-- ARGV[11]  runId
-- ARGV[12]  ifStatus: statuses joined by ',', or '' for no condition
-- ARGV[13]  the patch's status, or '' to keep it
-- ARGV[14]  the patch's ownerId, or '' to keep it
-- ARGV[15..] field, value, ...: the other patched fields of the hash
-- Returns nil when the run is missing or its status is not in ifStatus (nothing changed, nothing
-- published); {0, from, to} when the change is illegal (likewise); else {1, field, value, ...}:
-- the run as stored now, but for the fields of ARGV[15..], which the caller has already.
-- Commands: TIME, HGETALL, [PUBLISH,] one HSET, and only the index moves the change needs.
local ttl = ttl_arg(ARGV[8])
local now = now_ms()
if ttl then purge_expired(now) end
local channel = ARGV[9] ~= '' and ARGV[9] or nil

local outcome, h, patched = update_run(ARGV, 11, #ARGV, ttl, now, true, channel, ARGV[10])
if outcome == nil then return false end
-- Illegal: the two values are then the statuses from and to.
if outcome == 0 then return { 0, h, patched } end
local reply = { 1 }
for field, value in pairs(h) do
	if not patched[field] then
		reply[#reply + 1] = field
		reply[#reply + 1] = value
	end
end
return reply
