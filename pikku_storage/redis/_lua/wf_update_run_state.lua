-- update_run_state: set one state key and the run's updated_at (01 §3.2, §5.3); raises
-- activity_at and the idle entry (05 §4).
-- KEYS[1] run hash   KEYS[2] state hash   KEYS[3] updated:<status the client read>   KEYS[4] idle
-- ARGV[1] run id   ARGV[2] rev the client read   ARGV[3] now (epoch ms)   ARGV[4] state name
-- ARGV[5] value JSON
-- Reply: 1 done, 0 run missing, -1 rev changed since the client read it (retry).
local cur = redis.call('HMGET', KEYS[1], 'rev', 'seq', 'status', 'active_steps', 'activity_at')
if not cur[1] then return 0 end
if cur[1] ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
local at = math.max(tonumber(cur[5] or '0'), tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3], 'activity_at', at)
if cur[3] == 'running' and tonumber(cur[4] or '0') == 0 then
  redis.call('ZADD', KEYS[4], at, ARGV[1])
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), pad(cur[2], WF_SEQ) .. ':' .. ARGV[1])
return 1
