-- set_branch_taken: record the branch on the live step (01 §3.6), with markers (05 §4).
-- KEYS[1] steps   KEYS[2] run hash   KEYS[3] idle   KEYS[4] undispatched
-- ARGV[1] step id   ARGV[2] branch key   ARGV[3] now (epoch ms)   ARGV[4] run id
-- Reply: 1 done, 0 step missing.
local id = ARGV[1]
local status = redis.call('HGET', KEYS[1], id .. ':status')
if not status then return 0 end
redis.call('HSET', KEYS[1], id .. ':branch', ARGV[2], id .. ':updated_at', ARGV[3])
step_markers(KEYS[2], KEYS[3], KEYS[4], ARGV[4], id, status, status, tonumber(ARGV[3]))
return 1
