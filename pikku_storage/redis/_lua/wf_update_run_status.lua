-- update_run_status: overwrite status, output and error and move the run between the
-- status-keyed indexes (01 §3.1, §5.3).
-- KEYS[1] run hash   KEYS[2] status:<old>   KEYS[3] wfstatus:<old>:<w>   KEYS[4] updated:<old>
-- KEYS[5] status:<new>   KEYS[6] wfstatus:<new>:<w>   KEYS[7] updated:<new>   KEYS[8] steps
-- KEYS[9] idle   KEYS[10] undispatched (the run's markers re-derived from its steps, 05 §4)
-- ARGV[1] run id   ARGV[2] rev the client read   ARGV[3] new status   ARGV[4] now (epoch ms)
-- ARGV[5] output JSON ("" = none)   ARGV[6] error JSON ("" = none)
-- Reply: 1 done, 0 run missing, -1 rev changed since the client read it (retry).
local cur = redis.call('HMGET', KEYS[1], 'rev', 'seq', 'created_at')
if not cur[1] then return 0 end
if cur[1] ~= ARGV[2] then return -1 end
local member = pad(cur[2], WF_SEQ) .. ':' .. ARGV[1]
for i = 2, 4 do redis.call('ZREM', KEYS[i], member) end
redis.call('ZADD', KEYS[5], tonumber(cur[3]), member)
redis.call('ZADD', KEYS[6], tonumber(cur[3]), member)
redis.call('ZADD', KEYS[7], tonumber(ARGV[4]), member)
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[4])
if ARGV[5] == '' then redis.call('HDEL', KEYS[1], 'output')
else redis.call('HSET', KEYS[1], 'output', ARGV[5]) end
if ARGV[6] == '' then redis.call('HDEL', KEYS[1], 'error')
else redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
run_markers(KEYS[1], KEYS[8], KEYS[9], KEYS[10], ARGV[1], tonumber(ARGV[4]))
return 1
