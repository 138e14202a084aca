-- update_workflow_version_status: set the status of a stored version, graph and source kept
-- (05 D12, §3.6). The stored JSON ends with `,"status":"<s>"}` (layout 2) or, written by
-- layout 1, with `"created_at":<ms>}`; only that tail is rewritten, the graph text never.
-- KEYS[1] version key
-- ARGV[1] status
-- Reply: 1 done, 0 no such version.
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local head = string.match(stored, '^(.*),"status":"[a-z]+"}$') or string.sub(stored, 1, -2)
redis.call('SET', KEYS[1], head .. ',"status":"' .. ARGV[1] .. '"}')
return 1
