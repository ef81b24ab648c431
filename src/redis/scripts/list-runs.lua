-- list-runs.lua: listRuns. Runs matching the filters, newest first (createdAt, then runId, both
-- descending), walked from the smallest index that covers the query (merging the status indexes
-- when several statuses are asked for), starting after the cursor position.
-- KEYS[1..4], ARGV[1..7]: see lib.lua.
-- ARGV[8]   limit
-- ARGV[9]   cursor createdAt (a score), or '' for the first page
-- ARGV[10]  cursor runId
-- ARGV[11]  moduleId filter: '' for none, else '=' .. moduleId
-- ARGV[12]  itemId filter: '' for none, else '=' .. itemId
-- ARGV[13]  ownerId filter: '' for none, else '=' .. ownerId
-- ARGV[14]  status filter: statuses joined by ',', or '' for any
-- Returns {more, runId, {field, value, ...}, runId, {...}, ...}: more is 1 when another run matches after the last one returned.
local limit = tonumber(ARGV[8])
purge_expired(now_ms())

local function filter_arg(value)
	if value == '' then return nil end
	return string.sub(value, 2)
end
local module_id, item_id, owner_id = filter_arg(ARGV[11]), filter_arg(ARGV[12]), filter_arg(ARGV[13])
-- The status filter as a set, and the index keys of its statuses.
local statuses, filter_keys = nil, {}
if ARGV[14] ~= '' then
	statuses = {}
	for status in string.gmatch(ARGV[14], '[^,]+') do
		if not statuses[status] then
			statuses[status] = true
			table.insert(filter_keys, status_key(status))
		end
	end
end

-- The smallest set of indexes covering the query; an empty one means nothing matches. Every run
-- is in one status index: without a status filter, the five together cover every run.
local function count(keys)
	local n = 0
	for _, key in ipairs(keys) do n = n + redis.call('ZCARD', key) end
	return n
end
local sources = {}
for _, status in ipairs(STATUSES) do table.insert(sources, status_key(status)) end
local size = count(sources)
local function consider(keys)
	local n = count(keys)
	if n < size then sources, size = keys, n end
	return n > 0
end
if statuses and not consider(filter_keys) then return { 0 } end
if module_id and not consider({ P_MODULE .. module_id }) then return { 0 } end
if item_id and not consider({ P_ITEM .. item_id }) then return { 0 } end
if owner_id and not consider({ P_OWNER .. owner_id }) then return { 0 } end
if size == 0 then return { 0 } end

-- The reverse rank of the first entry after the cursor (score c, member m) in `key`: entries
-- with a higher score, then those of score c with a member byte-wise above m (binary search).
local function seek(key, c, m)
	local rank = redis.call('ZCOUNT', key, '(' .. c, '+inf')
	local ties = redis.call('ZCOUNT', key, c, c)
	local low, high = 0, ties
	while low < high do
		local middle = math.floor((low + high) / 2)
		local member = redis.call('ZREVRANGE', key, rank + middle, rank + middle)[1]
		if member == nil or bytes_less(member, m) then high = middle else low = middle + 1 end
	end
	return rank + low
end

local batch = math.min(math.max(limit + 1, 100), 1000)
local cursors = {}
for _, key in ipairs(sources) do
	local rank = 0
	if ARGV[9] ~= '' then rank = seek(key, ARGV[9], ARGV[10]) end
	table.insert(cursors, { key = key, rank = rank, buffer = {}, at = 1, done = false })
end

-- The entry a cursor is on (member, score), reading the next batch when needed; nil at the end.
local function head(cursor)
	if cursor.at > #cursor.buffer then
		if cursor.done then return nil end
		cursor.buffer = redis.call('ZREVRANGE', cursor.key, cursor.rank, cursor.rank + batch - 1, 'WITHSCORES')
		cursor.rank = cursor.rank + batch
		cursor.at = 1
		if #cursor.buffer < 2 * batch then cursor.done = true end
		if #cursor.buffer == 0 then return nil end
	end
	return cursor.buffer[cursor.at], tonumber(cursor.buffer[cursor.at + 1])
end

local out = { 0 }
local found = 0
while true do
	local best, best_member, best_score = nil, nil, nil
	for _, cursor in ipairs(cursors) do
		local member, score = head(cursor)
		if member and (best == nil or score > best_score or (score == best_score and bytes_less(best_member, member))) then
			best, best_member, best_score = cursor, member, score
		end
	end
	if best == nil then break end
	best.at = best.at + 2
	local f = redis.call('HMGET', P_RUN .. best_member, 'status', 'moduleId', 'itemId', 'ownerId')
	if f[1]
		and (statuses == nil or statuses[f[1]])
		and (module_id == nil or f[2] == module_id)
		and (item_id == nil or f[3] == item_id)
		and (owner_id == nil or f[4] == owner_id)
	then
		if found == limit then
			out[1] = 1
			break
		end
		found = found + 1
		table.insert(out, best_member)
		table.insert(out, redis.call('HGETALL', P_RUN .. best_member))
	end
end
return out
