-- update_run_state: set one state key and the run's updated_at (01 §3.2, §5.3).
-- KEYS[1] run hash   KEYS[2] state hash   KEYS[3] updated:<status the client read>
-- ARGV[1] run id   ARGV[2] rev the client read   ARGV[3] now (epoch ms)   ARGV[4] state name
-- ARGV[5] value JSON
-- Reply: 1 done, 0 run missing, -1 rev changed since the client read it (retry).
local cur = redis.call('HMGET', KEYS[1], 'rev', 'seq')
if not cur[1] then return 0 end
if cur[1] ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), pad(cur[2], 20) .. ':' .. ARGV[1])
return 1
