-- set_step_child_run_id: the child run of the current attempt, on the live step and its
-- history entry in one write, both updated_at moved (05 D9, §3.2), with markers (05 §4).
-- KEYS[1] steps   KEYS[2] attempts   KEYS[3] run hash   KEYS[4] idle   KEYS[5] undispatched
-- ARGV[1] step id   ARGV[2] child run id   ARGV[3] now (epoch ms)   ARGV[4] run id
-- Reply: 1 done, 0 step missing.
local id = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], id .. ':status', id .. ':attempt')
if not cur[1] then return 0 end
local sp, ap = id .. ':', id .. ':' .. cur[2] .. ':'
redis.call('HSET', KEYS[1], sp .. 'child_run_id', ARGV[2], sp .. 'updated_at', ARGV[3])
redis.call('HSET', KEYS[2], ap .. 'child_run_id', ARGV[2], ap .. 'updated_at', ARGV[3])
step_markers(KEYS[3], KEYS[4], KEYS[5], ARGV[4], id, cur[1], cur[1], tonumber(ARGV[3]))
return 1
