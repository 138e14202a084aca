-- create_retry_attempt: start attempt n + 1 as pending or running, clearing the outcome and
-- stamps of the live step and appending its history entry (01 §3.5), with markers (05 §4).
-- KEYS[1] run hash   KEYS[2] steps   KEYS[3] attempts   KEYS[4] history   KEYS[5] idle
-- KEYS[6] undispatched
-- ARGV[1] step id   ARGV[2] status   ARGV[3] now (epoch ms)   ARGV[4] run id
-- ARGV[5..] fields to return
-- Reply: {1, field, value, ...} the new live state, {-1} step missing.
local id = ARGV[1]
local cur = redis.call('HMGET', KEYS[2], id .. ':attempt', id .. ':status')
if not cur[1] then return { -1 } end
new_attempt(KEYS[1], KEYS[2], KEYS[3], KEYS[4], id, cur[1], ARGV[2], ARGV[3])
step_markers(KEYS[1], KEYS[5], KEYS[6], ARGV[4], id, cur[2], ARGV[2], tonumber(ARGV[3]))
return present_pairs(KEYS[2], id .. ':', argv_from(5), { 1 })
