-- create_run: store an agent run with its pending approvals and index it (02 §3, §5.4).
-- KEYS[1] thread   KEYS[2] thread runs zset   KEYS[3] run hash   KEYS[4] run pending
-- KEYS[5] thread agents set   KEYS[6] namespace seq   KEYS[7] agent:<A>
-- KEYS[8] agent-resource:<A>:<R>   KEYS[9] agent names   KEYS[10] run-thread, then
--   approval:<C> per pending approval
-- ARGV[1] thread id   ARGV[2] the thread's resource id the client read   ARGV[3] run id
-- ARGV[4] agent name   ARGV[5] now (epoch ms)   ARGV[6] n, then n run field/value pairs;
--   then per pending approval (KEYS order): tool call id, pending entry JSON; then optionally
--   the run's sequence number (a cluster takes it from its own slot first; KEYS[6] is then
--   not touched)
-- Reply: 1 created, 0 no thread, -1 the thread was re-created since the read (retry).
local t = redis.call('HMGET', KEYS[1], 'resource_id', 'seq', 'updated_at')
if not t[1] then return 0 end
if t[1] ~= ARGV[2] then return -1 end
local now = tonumber(ARGV[5])
local given = ARGV[7 + 2 * tonumber(ARGV[6]) + 2 * (#KEYS - 10)]
local seq = given and tonumber(given) or redis.call('INCR', KEYS[6])
local member = pad(seq, AI_SEQ) .. ':' .. ARGV[3]
redis.call('HSET', KEYS[3], 'seq', seq)
local pos = hset_argv(KEYS[3], '', 7, tonumber(ARGV[6]))
redis.call('ZADD', KEYS[2], now, member)
redis.call('HSET', KEYS[10], ARGV[3], ARGV[1])
for i = 11, #KEYS do
  redis.call('HSET', KEYS[4], ARGV[pos], ARGV[pos + 1])
  redis.call('ZADD', KEYS[i], now, member)
  pos = pos + 2
end
if redis.call('SADD', KEYS[5], ARGV[4]) == 1 then
  local tmember = pad(t[2], AI_SEQ) .. ':' .. ARGV[1]
  redis.call('ZADD', KEYS[7], tonumber(t[3]), tmember)
  redis.call('ZADD', KEYS[8], tonumber(t[3]), tmember)
  redis.call('ZADD', KEYS[9], 0, ARGV[4])
end
redis.call('HINCRBY', KEYS[1], 'rev', 1)
return 1
