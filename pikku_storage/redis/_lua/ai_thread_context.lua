-- The parts of a thread that decide which index keys a write touches (read-only).
-- KEYS[1] thread hash   KEYS[2] the thread's agents set
-- ARGV: none
-- Reply: {} no such thread, else {resource id, rev, agent names...}.
local h = redis.call('HMGET', KEYS[1], 'resource_id', 'rev')
if not h[1] then return {} end
local out = { h[1], h[2] }
for _, a in ipairs(redis.call('SMEMBERS', KEYS[2])) do out[#out + 1] = a end
return out
