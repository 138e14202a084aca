-- set_branch_taken: record the branch on the live step (01 §3.6).
-- KEYS[1] steps
-- ARGV[1] step id   ARGV[2] branch key   ARGV[3] now (epoch ms)
-- Reply: 1 done, 0 step missing.
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], id .. ':attempt') == 0 then return 0 end
redis.call('HSET', KEYS[1], id .. ':branch', ARGV[2], id .. ':updated_at', ARGV[3])
return 1
