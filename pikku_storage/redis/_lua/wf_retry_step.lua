-- create_retry_attempt: start attempt n + 1 as pending or running, clearing the outcome and
-- stamps of the live step and appending its history entry (01 §3.5).
-- KEYS[1] run hash   KEYS[2] steps   KEYS[3] attempts   KEYS[4] history
-- ARGV[1] step id   ARGV[2] status   ARGV[3] now (epoch ms)   ARGV[4..] fields to return
-- Reply: {1, field, value, ...} the new live state, {-1} step missing.
local id = ARGV[1]
local n = redis.call('HGET', KEYS[2], id .. ':attempt')
if not n then return { -1 } end
local next_n = tonumber(n) + 1
local attempt_seq = redis.call('HINCRBY', KEYS[1], 'attempt_seq', 1)
local sp = id .. ':'
local ap = id .. ':' .. next_n .. ':'
redis.call('HDEL', KEYS[2], sp .. 'result', sp .. 'error', sp .. 'running_at',
  sp .. 'scheduled_at', sp .. 'succeeded_at', sp .. 'failed_at')
redis.call('HSET', KEYS[2], sp .. 'attempt', next_n, sp .. 'status', ARGV[2],
  sp .. 'updated_at', ARGV[3])
redis.call('HSET', KEYS[3], ap .. 'status', ARGV[2], ap .. 'created_at', ARGV[3],
  ap .. 'updated_at', ARGV[3])
if ARGV[2] == 'running' then
  redis.call('HSET', KEYS[2], sp .. 'running_at', ARGV[3])
  redis.call('HSET', KEYS[3], ap .. 'running_at', ARGV[3])
end
redis.call('ZADD', KEYS[4], tonumber(ARGV[3]), pad(attempt_seq, 20) .. ':' .. id .. ':' .. next_n)
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
return present_pairs(KEYS[2], sp, fields, { 1 })
